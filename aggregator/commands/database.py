"""``db``: create, upgrade or show the database schema."""

from __future__ import annotations

import argparse

from aggregator.config import db_url_from_args
from aggregator.store import schema_state, upgrade
from aggregator.store.queue import ensure_queue_schema, queue_available


def cmd_db(args: argparse.Namespace) -> int:
    return _db_action(args.action, db_url_from_args(args))


def _db_action(action: str, url: str) -> int:
    if action == "upgrade":
        before, after = upgrade(url)
        if before.state == "current":
            print(f"Database already at schema {after.head}: nothing to do")
        elif before.state == "empty":
            print(f"Database created at schema {after.head}")
        else:
            print(f"Database upgraded from schema {before.describe()} to {after.head}")
        if queue_available():
            queue = ensure_queue_schema(url, upgrade=True)
            if queue.created:
                print("Task queue tables (procrastinate, for `balanced-news worker`) created")
            elif queue.applied:
                print(
                    f"Task queue tables (procrastinate) upgraded: {len(queue.applied)} "
                    f"migrations applied ({', '.join(queue.applied)})"
                )
        return 0
    found = schema_state(url)
    print(f"schema: {found.describe()}; this version: {found.head}; state: {found.state}")
    return 0 if found.state == "current" else 1
