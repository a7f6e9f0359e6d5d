"""The task queue's tables (aggregator/store/queue.py) on the real PostgreSQL: `db upgrade`
brings tables an older procrastinate made up to the installed one, and a worker refuses
tables that are behind in one line.

tests/fixtures/db/procrastinate-3.3.0-schema.sql is procrastinate 3.3.0's own schema script
(MIT licence), as that version's `procrastinate schema --apply` ran it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, create_engine, text

from aggregator.cli import main
from aggregator.migrations import SchemaError
from tests.conftest import FIXTURES, require_worker_mode

require_worker_mode()

from aggregator.store.queue import (  # noqa: E402 - after the skip
    MIGRATIONS_TABLE,
    QUEUE_SCHEMA,
    ensure_queue_schema,
    queue_migrations,
)

OLD_SCHEMA = FIXTURES / "db" / "procrastinate-3.3.0-schema.sql"


def _script(conn: Connection, schema: str, sql: str) -> None:
    conn.execute(text(f"CREATE SCHEMA {schema}"))
    conn.execute(text(f"SET LOCAL search_path TO {schema}"))
    conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def shape(conn: Connection, schema: str) -> dict[str, list[tuple[str, ...]]]:
    """What a queue schema is made of: its tables' columns, its functions' signatures and
    bodies, its triggers, indexes, and enum types' values (our own record table left out)."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, "
        "coalesce(column_default, '') FROM information_schema.columns "
        "WHERE table_schema = :s AND table_name <> :mine",
        "functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid), "
        "pg_get_function_result(p.oid), regexp_replace(p.prosrc, '\\s+', ' ', 'g') "
        "FROM pg_proc p WHERE p.pronamespace = CAST(:s AS regnamespace)",
        "triggers": "SELECT tgname, c.relname FROM pg_trigger t JOIN pg_class c "
        "ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = CAST(:s AS regnamespace) AND NOT t.tgisinternal",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = :s AND tablename <> :mine",
        "enums": "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t "
        "ON t.oid = e.enumtypid WHERE t.typnamespace = CAST(:s AS regnamespace)",
    }
    return {  # the schema's own name left out, where PostgreSQL spells it
        what: sorted(
            tuple(str(v).replace(f"{schema}.", "") for v in row)
            for row in conn.execute(text(sql), {"s": schema, "mine": MIGRATIONS_TABLE})
        )
        for what, sql in queries.items()
    }


def test_db_upgrade_applies_procrastinates_pending_migrations(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Queue tables as procrastinate 3.3.0 made them, with a task waiting, and no record of
    their migrations (as every version of ours before the record): a worker refuses them in
    one line; `db upgrade` applies the later migrations once, and the tables then match, to
    the function bodies, what the installed procrastinate makes afresh; the task is kept."""
    assert main(["db", "upgrade", "--db", pg_url]) == 0
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {QUEUE_SCHEMA} CASCADE"))
            _script(conn, QUEUE_SCHEMA, OLD_SCHEMA.read_text(encoding="utf-8"))
            conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args) "
                    "VALUES ('process', 'balanced_news.publish', '{}')"
                )
            )
        with pytest.raises(SchemaError) as refused:
            ensure_queue_schema(pg_url)
        assert "lack 3 migrations" in str(refused.value) and "db upgrade" in str(refused.value)
        assert len(str(refused.value).splitlines()) == 1
        capsys.readouterr()

        assert main(["db", "upgrade", "--db", pg_url]) == 0
        out = capsys.readouterr().out
        assert "Task queue tables (procrastinate) upgraded: 3 migrations applied" in out
        later = [name for name in queue_migrations() if name > "03.03"]
        assert later == [
            "03.03.00_01_pre_priority_lock_fetch_job",
            "03.04.00_01_pre_add_retry_failed_job_procedure",
            "03.04.00_50_post_add_retry_failed_job_procedure",
        ]
        assert all(name in out for name in later)

        with engine.begin() as conn:  # the installed procrastinate's schema, made afresh
            from procrastinate.schema import SchemaManager

            _script(conn, "fresh", SchemaManager.get_schema())
        with engine.connect() as conn:
            upgraded, fresh = shape(conn, QUEUE_SCHEMA), shape(conn, "fresh")
            for what in fresh:
                assert upgraded[what] == fresh[what], what
            assert (
                conn.execute(
                    text(f"SELECT count(*) FROM {QUEUE_SCHEMA}.procrastinate_jobs")
                ).scalar()
                == 1
            )
            recorded = conn.execute(
                text(f"SELECT count(*) FROM {QUEUE_SCHEMA}.{MIGRATIONS_TABLE}")
            ).scalar()
            assert recorded == len(queue_migrations())

        assert main(["db", "upgrade", "--db", pg_url]) == 0  # once only
        assert "Task queue" not in capsys.readouterr().out
        assert ensure_queue_schema(pg_url).applied == ()
    finally:
        engine.dispose()
