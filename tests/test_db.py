"""Storage: the same cycle on the embedded SQLite default and on a real PostgreSQL server.
Schema upgrades are in test_migrations.py."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select, text

from aggregator import db
from aggregator.config import Config
from aggregator.db import EntryRow, StoryRow, connect
from aggregator.pipeline import Pipeline
from aggregator.rewrite import rewrite_story
from tests.stories import story_articles


def test_sqlite_default_uses_wal(config: Config) -> None:
    engine = connect(config.db_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


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


def test_a_stored_rewrite_reads_back_equal_with_every_claims_citations() -> None:
    """Common Ground sentences carry (outlet, title, link) of every article stating them."""
    result = rewrite_story(story_articles("fares"))
    assert any(len(s.reported_by) > 1 for s in result.common_ground)
    assert db.rewrite_from_json(db.rewrite_to_json(result)) == result
