"""Schema migrations (Alembic), shipped inside the package so an installed copy finds them.

A database is in one of four states:

- **empty** (none of our tables): created at the newest revision (head) on first use, by
  every command, so a fresh install, the demo and ``run --once`` need no extra step;
- **current**: at head;
- **old**: at an earlier revision, or made before migrations existed (tables, no
  ``alembic_version``): every command refuses with :class:`SchemaError`, which names
  ``balanced-news db upgrade``;
- **newer**: at a revision this version does not know (a newer balanced-news upgraded it):
  refused too, since this version would misread it.

Upgrades hold a lock for their whole run (PostgreSQL: an advisory lock; SQLite: ``BEGIN
IMMEDIATE``, with transactional DDL), so processes starting together create or upgrade a
database once, and a crash mid-upgrade leaves the previous revision (PostgreSQL and SQLite
both roll back DDL).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from aggregator.errors import SchemaError as SchemaError

UPGRADE_COMMAND = "balanced-news db upgrade"
HERE = Path(__file__).parent
_PG_LOCK = 0x62616C6E65777321  # pg_advisory_xact_lock key: one upgrade at a time per server


@dataclass(frozen=True)
class Status:
    """Where a database stands: ``state`` is empty, current, old or newer."""

    state: str
    revisions: tuple[str, ...]  # what alembic_version holds; () when it does not exist
    head: str

    def describe(self) -> str:
        if self.revisions:
            return ", ".join(self.revisions)
        return "none (empty database)" if self.state == "empty" else "none (made before migrations)"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """Alembic's configuration without an ini file: the scripts here, on ``connection``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(HERE).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision: what this version's models are."""
    heads = _script().get_heads()
    if len(heads) != 1:  # two migrations claim the same parent: a merge was forgotten
        raise RuntimeError(f"migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def status(connection: Connection, metadata: MetaData) -> Status:
    """The state of the database behind ``connection`` (see the module docstring)."""
    tables = set(inspect(connection).get_table_names())
    top = head()
    if "alembic_version" not in tables:
        state = "old" if tables & set(metadata.tables) else "empty"
        return Status(state, (), top)
    revisions = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    if revisions == (top,):
        return Status("current", revisions, top)
    if not revisions:
        return Status("old" if tables & set(metadata.tables) else "empty", revisions, top)
    known = all(_known(r) for r in revisions)
    return Status("old" if known else "newer", revisions, top)


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # alembic raises its own lookup errors for unknown ids
        return False


def migration_engine(url: str) -> Engine:
    """An engine for migrating: one connection, transactional DDL on SQLite (``BEGIN
    IMMEDIATE``, so two processes never migrate at once), foreign keys not enforced while a
    migration copies a table."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, poolclass=NullPool)
    if not _in_memory(url):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say when transactions begin
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def lock(connection: Connection) -> None:
    """Hold the migration lock until the transaction ends (SQLite: its BEGIN IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})


def upgrade(url: str, metadata: MetaData) -> tuple[Status, Status]:
    """Bring the database at ``url`` to head in one transaction; the status before and after.

    An empty database is made from ``metadata`` and stamped (Alembic's recipe for a new
    database: the same tables as running every migration, which the tests check); any other
    runs the migrations it lacks. A database from a newer version raises :class:`SchemaError`.
    """
    engine = migration_engine(url)
    try:
        return _upgrade(engine, url, metadata)
    finally:
        engine.dispose()


def _upgrade(engine: Engine, url: str, metadata: MetaData) -> tuple[Status, Status]:
    with engine.begin() as connection:
        lock(connection)
        before = status(connection, metadata)
        if before.state == "newer":
            raise SchemaError(message(url, before))
        config = alembic_config(connection)
        if before.state == "empty":
            metadata.create_all(connection)
            command.stamp(config, "head")
        elif before.state == "old":
            command.upgrade(config, "head")
        after = status(connection, metadata)
    return before, after


def ensure_current(engine: Engine, url: str, metadata: MetaData) -> None:
    """Let ``engine`` be used: create an empty database at head; refuse any other not at head."""
    with engine.connect() as connection:
        found = status(connection, metadata)
    if found.state == "empty" and _in_memory(url):  # only this engine's connection sees it
        found = _upgrade(engine, url, metadata)[1]
    elif found.state == "empty":
        found = upgrade(url, metadata)[1]  # under the lock: another process may be at it too
    if found.state != "current":
        raise SchemaError(message(url, found))


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def message(url: str, found: Status) -> str:
    where = make_url(url).render_as_string(hide_password=True)
    if found.state == "newer":
        return (
            f"database {where} is at schema {found.describe()}, which this version does not "
            f"know (it knows up to {found.head}): a newer balanced-news upgraded it; run that"
        )
    return (
        f"database {where} is at schema {found.describe()}, this version needs {found.head}: "
        f"run `{UPGRADE_COMMAND}`"
    )
