"""The task queue's own tables (procrastinate) beside ours, on PostgreSQL only.

procrastinate ships its schema as one SQL script; it is applied once, under the same advisory
lock as our migrations, so workers and ``db upgrade`` starting together apply it once.
"""

from __future__ import annotations

from sqlalchemy import inspect

from aggregator import migrations

QUEUE_TABLE = "procrastinate_jobs"


def queue_available() -> bool:
    """Whether procrastinate is installed (the ``postgres`` extra)."""
    try:
        import procrastinate  # noqa: F401
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
            if inspect(conn).has_table(QUEUE_TABLE):
                return False
            # Its script holds "%" in PL/pgSQL: run on the driver's connection, no parameters.
            conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
        return True
    finally:
        engine.dispose()
