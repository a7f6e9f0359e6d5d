"""Storage: the same cycle on the embedded SQLite default and on a real PostgreSQL server, and
older databases gaining the columns added since."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from aggregator import db
from aggregator.config import Config
from aggregator.db import EntryRow, StoryRow, connect
from aggregator.pipeline import Pipeline
from aggregator.rewrite import rewrite_story
from tests.stories import story_articles

PG_ADMIN = os.environ.get(
    "BALANCED_NEWS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def test_sqlite_default_uses_wal(config: Config) -> None:
    engine = connect(config.db_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    pytest.importorskip(
        "psycopg", reason="PostgreSQL driver not installed (pip install -e '.[postgres]')"
    )
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bn_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server here: say so rather than fail
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {str(exc).splitlines()[0]}")
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_cycle_on_postgresql_matches_sqlite(config: Config, pg_url: str) -> None:
    lite = Pipeline(config).run_cycle()
    pg_config = replace(config, db_url=pg_url, out_dir=config.out_dir.parent / "pg-feeds")
    pg = Pipeline(pg_config)
    report = pg.run_cycle()
    assert report.failed == [] and report.stories == lite.stories == 3
    again = pg.run_cycle()  # conditional polls: nothing new, nothing twice
    assert again.new_entries == 0
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(EntryRow)) == lite.new_entries
        assert s.scalar(select(func.count()).where(StoryRow.content_html.is_(None))) == 0
    pg.engine.dispose()


def test_a_database_from_an_earlier_version_gains_the_new_columns(config: Config) -> None:
    """An install made before story identity (no copy_of, merged_into, attribution) upgrades."""
    from sqlalchemy import MetaData, Table

    from aggregator.db import Base

    added = {"copy_of", "merged_into", "first_source_id", "outlets_json", "blindspot"}
    added |= {"count_left", "count_center", "count_right"}
    older = MetaData()
    for table in Base.metadata.sorted_tables:
        Table(table.name, older, *(c._copy() for c in table.columns if c.name not in added))
    older.create_all(create_engine(config.db_url))
    engine = connect(config.db_url)
    columns = {c["name"] for c in inspect(engine).get_columns("stories")}
    columns |= {c["name"] for c in inspect(engine).get_columns("entries")}
    assert added <= columns
    report = Pipeline(config, engine).run_cycle()
    assert report.failed == [] and report.stories == 3
    with Pipeline(config, engine).session() as s:
        assert s.scalar(select(func.count()).where(StoryRow.first_source_id.is_not(None))) == 3


def test_older_database_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE sources (id VARCHAR(100) PRIMARY KEY, name VARCHAR(300), "
            "lean VARCHAR(20), kind VARCHAR(20), status VARCHAR(20))"
        )
        conn.execute("INSERT INTO sources VALUES ('old', 'Old News', 'center', 'news', 'ok')")
    engine = db.connect(f"sqlite:///{path}")
    columns = {c["name"] for c in inspect(engine).get_columns("sources")}
    assert {"consecutive_errors", "retry_until", "mean_response_ms", "next_poll_at"} <= columns
    with db.session_factory(engine)() as s:
        row = s.scalars(select(db.SourceRow)).one()
        assert (row.name, row.status, row.consecutive_errors) == ("Old News", "ok", 0)
    db.connect(f"sqlite:///{path}")  # a second start changes nothing and does not fail


def test_a_stored_rewrite_reads_back_equal_with_every_claims_citations() -> None:
    """Common Ground sentences carry (outlet, title, link) of every article stating them."""
    result = rewrite_story(story_articles("fares"))
    assert any(len(s.reported_by) > 1 for s in result.common_ground)
    assert db.rewrite_from_json(db.rewrite_to_json(result)) == result
