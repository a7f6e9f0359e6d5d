"""The task queue's own tables (procrastinate) beside ours, on PostgreSQL only.

procrastinate ships its schema as one SQL script, and its changes as SQL migrations; the script
makes new tables, the migrations bring older ones up to the installed procrastinate (``db
upgrade``), and the migrations applied are recorded in a table beside them. Both run under the
same advisory lock as our migrations, so workers and ``db upgrade`` starting together apply
them once. They go into a PostgreSQL schema of their own (``QUEUE_SCHEMA``), so that our
tables' schema stays exactly what our migrations made (``db status`` and Alembic compare only
that); the workers' queue connections put it on their search path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from aggregator import migrations

QUEUE_SCHEMA = "procrastinate"
QUEUE_TABLE = "procrastinate_jobs"
MIGRATIONS_TABLE = "balanced_news_queue_migrations"  # in QUEUE_SCHEMA: procrastinate's applied


def backend_name(url: str) -> str:
    """The database kind of a SQLAlchemy URL: sqlite, postgresql, ..."""
    return make_url(url).get_backend_name()


def queue_conninfo(db_url: str) -> str:
    """libpq's form of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` becomes
    ``postgresql://``), for procrastinate's own connections."""
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def queue_available() -> bool:
    """Whether procrastinate and psycopg are installed (the ``postgres`` extra)."""
    try:
        import procrastinate  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class QueueUpgrade:
    """What :func:`ensure_queue_schema` did: made the tables, or applied these migrations."""

    created: bool = False
    applied: tuple[str, ...] = ()


# Queue tables made before their migrations were recorded here: the newest procrastinate
# migration that each probe proves applied, newest first (one per 3.x schema change that
# left a trace; 03.03.00_01 left none, and reapplying it is harmless: it replaces a function).
_PROBES = (
    (
        "03.04.00_50",
        "SELECT 1 FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'procrastinate_job_event_type' AND e.enumlabel = 'retried' "
        f"AND t.typnamespace = '{QUEUE_SCHEMA}'::regnamespace",
    ),
    (
        "03.02.00_50",
        "SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_defer_jobs_v1' "
        f"AND pronamespace = '{QUEUE_SCHEMA}'::regnamespace",
    ),
    (
        "03.01.00_50",
        "SELECT 1 FROM information_schema.tables "
        f"WHERE table_schema = '{QUEUE_SCHEMA}' AND table_name = 'procrastinate_workers'",
    ),
    (
        "03.00.00_50",
        "SELECT 1 FROM information_schema.columns WHERE table_schema = "
        f"'{QUEUE_SCHEMA}' AND table_name = '{QUEUE_TABLE}' AND column_name = 'abort_requested'",
    ),
)


def queue_migrations() -> dict[str, Path]:
    """The installed procrastinate's SQL migrations by name (its file name without .sql),
    in the order they apply."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    return {path.stem: path for path in sorted(folder.glob("*.sql"))}


def ensure_queue_schema(url: str, *, upgrade: bool = False) -> QueueUpgrade:
    """Create procrastinate's tables in the PostgreSQL database at ``url`` unless they exist,
    else bring them up to the installed procrastinate (``upgrade``: ``db upgrade``) or, when
    they lack migrations, raise :class:`SchemaError` naming ``db upgrade`` (a worker starting:
    the same rule as our own tables). The migrations applied are recorded beside the tables
    (``MIGRATIONS_TABLE``), all in one transaction. Nothing happens on other databases."""
    engine = migrations.migration_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            return QueueUpgrade()
        from procrastinate.schema import SchemaManager

        known = queue_migrations()
        with engine.begin() as conn:
            migrations.lock(conn)
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}"))
            conn.execute(text(f"SET LOCAL search_path TO {QUEUE_SCHEMA}"))
            tables = inspect(conn)
            if not tables.has_table(QUEUE_TABLE, schema=QUEUE_SCHEMA):
                _run_script(conn, SchemaManager.get_schema())
                _record(conn, known)
                return QueueUpgrade(created=True)
            if not tables.has_table(MIGRATIONS_TABLE, schema=QUEUE_SCHEMA):
                newest = _baseline(conn)  # a version and step: "03.04.00_50"
                _record(conn, [name for name in known if name[: len(newest)] <= newest])
            done = set(conn.execute(text(f"SELECT name FROM {MIGRATIONS_TABLE}")).scalars())
            pending = [name for name in known if name not in done]
            if pending and not upgrade:
                raise migrations.SchemaError(
                    f"the task queue's tables (procrastinate) lack {len(pending)} migrations "
                    f"of procrastinate {version('procrastinate')}: run `balanced-news db upgrade`"
                )
            for name in pending:
                _run_script(conn, known[name].read_text(encoding="utf-8"))
                _record(conn, [name])
            return QueueUpgrade(applied=tuple(pending))
    finally:
        engine.dispose()


def _run_script(conn: Connection, script: str) -> None:
    """Run one of procrastinate's SQL scripts: on the driver's connection, no parameters
    (its PL/pgSQL holds "%")."""
    conn.connection.driver_connection.execute(script)  # type: ignore[union-attr]


def _record(conn: Connection, names: Iterable[str]) -> None:
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    for name in names:
        conn.execute(text(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (:name)"), {"name": name})


def _baseline(conn: Connection) -> str:
    """The newest migration that queue tables made before migrations were recorded have,
    by the traces each 3.x schema change left."""
    for name, probe in _PROBES:
        if conn.execute(text(probe)).first() is not None:
            return name
    raise migrations.SchemaError(
        "the task queue's tables (procrastinate) predate procrastinate 3.0: stop the workers, "
        f"drop the schema {QUEUE_SCHEMA} and run `balanced-news db upgrade`"
    )
