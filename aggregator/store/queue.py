"""The task queue's own tables (procrastinate) beside ours, on PostgreSQL only.

procrastinate ships its schema as one SQL script; it is applied once, under the same advisory
lock as our migrations, so workers and ``db upgrade`` starting together apply it once. It goes
into a PostgreSQL schema of its own (``QUEUE_SCHEMA``), so that our tables' schema stays
exactly what our migrations made (``db status`` and Alembic compare only that); the workers'
queue connections put it on their search path.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from aggregator import migrations

QUEUE_SCHEMA = "procrastinate"
QUEUE_TABLE = "procrastinate_jobs"


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


def ensure_queue_schema(url: str) -> bool:
    """Create procrastinate's tables in the PostgreSQL database at ``url`` unless they exist;
    True when they were created now. Nothing happens on other databases."""
    engine = migrations.migration_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            return False
        from procrastinate.schema import SchemaManager

        with engine.begin() as conn:
            migrations.lock(conn)
            if inspect(conn).has_table(QUEUE_TABLE, schema=QUEUE_SCHEMA):
                return False
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}"))
            conn.execute(text(f"SET LOCAL search_path TO {QUEUE_SCHEMA}"))
            # Its script holds "%" in PL/pgSQL: run on the driver's connection, no parameters.
            conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
        return True
    finally:
        engine.dispose()
