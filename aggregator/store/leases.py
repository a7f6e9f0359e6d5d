"""Leases on sources, for workers sharing one PostgreSQL (``balanced-news worker``).

A dispatcher claims the due sources with ``FOR UPDATE SKIP LOCKED`` (two dispatchers never
claim the same source) and pushes their ``next_poll_at`` forward by the lease: the poll that
follows sets the real next poll time, and a source whose worker died mid-poll falls due again
once the lease ends. The claim hands back the source's ``last_poll_at`` as a token: a poll task
whose source was polled since it was queued (a slow poll that outlived its lease) skips it.
The queue's own tables (procrastinate's) are read here too, for the dispatcher's backpressure.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import or_, select, text, update

from aggregator.store._base import StoreBase
from aggregator.store.queue import QUEUE_SCHEMA
from aggregator.store.schema import SourceRow


def token_of(last_poll_at: datetime | None) -> str:
    """A source's poll token: its last poll time as text ('' before its first poll)."""
    return last_poll_at.isoformat() if last_poll_at is not None else ""


class LeasesMixin(StoreBase):
    def claim_due_sources(
        self, among: Collection[str], now: datetime, lease: timedelta, limit: int = 10_000
    ) -> list[tuple[str, str]]:
        if not among:
            return []
        with self.session.begin() as s:
            due = s.execute(
                select(SourceRow.id, SourceRow.last_poll_at)
                .where(
                    SourceRow.id.in_(list(among)),
                    or_(SourceRow.next_poll_at.is_(None), SourceRow.next_poll_at <= now),
                )
                .order_by(SourceRow.next_poll_at.nulls_first(), SourceRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if due:
                s.execute(
                    update(SourceRow)
                    .where(SourceRow.id.in_([row.id for row in due]))
                    .values(next_poll_at=now + lease)
                )
        return [(row.id, token_of(row.last_poll_at)) for row in due]

    def poll_tokens(self, source_ids: Collection[str]) -> dict[str, str]:
        with self.session() as s:
            rows = s.execute(
                select(SourceRow.id, SourceRow.last_poll_at).where(
                    SourceRow.id.in_(list(source_ids))
                )
            ).all()
        return {row.id: token_of(row.last_poll_at) for row in rows}

    def release_claims(self, claims: Collection[tuple[str, str]], now: datetime) -> int:
        """Hand back claimed sources that were not polled (their token still stands): due
        again ``now`` rather than when their lease ends. How many were handed back."""
        wanted = dict(claims)
        if not wanted:
            return 0
        with self.session.begin() as s:
            rows = s.execute(
                select(SourceRow.id, SourceRow.last_poll_at)
                .where(SourceRow.id.in_(list(wanted)))
                .with_for_update()
            ).all()
            unpolled = [row.id for row in rows if token_of(row.last_poll_at) == wanted[row.id]]
            if unpolled:
                s.execute(
                    update(SourceRow).where(SourceRow.id.in_(unpolled)).values(next_poll_at=now)
                )
        return len(unpolled)

    def oldest_queued_seconds(self, task_name: str) -> float | None:
        with self.session() as s:
            age = s.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM now() - min(e.at)) "
                    f"FROM {QUEUE_SCHEMA}.procrastinate_jobs j "
                    f"JOIN {QUEUE_SCHEMA}.procrastinate_events e "
                    "ON e.job_id = j.id AND e.type = 'deferred' "
                    "WHERE j.status = 'todo' AND j.task_name = :task"
                ),
                {"task": task_name},
            ).scalar()
        return None if age is None else float(age)
