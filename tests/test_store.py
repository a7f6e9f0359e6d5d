"""The store: the same cycle on the embedded SQLite default and on a real PostgreSQL server,
and the store's operations on each. Schema upgrades are in test_migrations.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from aggregator.config import Config, Source
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.rewrite import rewrite_story
from aggregator.store import Store
from aggregator.store import schema as db
from aggregator.store.schema import EntryRow, StoryRow, connect, utcnow
from tests.conftest import extra_source, make_config, respond
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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_the_store_answers_in_plain_data_after_a_cycle(
    web: SampleWeb, tmp_path: Path, backend: str
) -> None:
    web.routes["/err/rss.xml"] = respond(500, b"down")
    config = make_config(web, tmp_path, extra=(extra_source(web, "err", "err/rss.xml"),))
    config = replace(config, db_url=backend)
    before = utcnow()
    with Pipeline(config) as pipeline:
        report = pipeline.run_cycle()
    with Store.open(backend) as store:
        states = store.source_states()
        assert set(states) == {src.id for src in config.sources}
        assert states["err"].status == "failing" and states["err"].last_http_status == 500
        assert sum(s.entries for s in states.values()) == report.new_entries > 0
        assert store.entry_counts() == {sid: s.entries for sid, s in states.items() if s.entries}
        assert store.count_entries() == report.new_entries
        assert all(when is not None and when > before for when in store.next_poll_times().values())

        assert [s.name for s in store.failing_sources({"err"})] == ["Err News"]
        assert store.failing_sources({"some-other"}) == [], "only the sources asked about"
        assert store.count_failing() == 1
        assert store.poll_outcomes()["error"] == 1

        stories = store.published_stories()
        assert len(stories) == store.count_stories() == report.stories
        assert [s.id for s in store.published_stories(limit=1)] == [stories[0].id]
        assert store.retired_stories(before - timedelta(days=7)) == [], "nothing merged"

        runs = store.stage_runs()
        assert set(runs) == {"fetch", "extract", "group", "rewrite", "publish"}
        publish = runs["publish"]
        store.record_stage("publish", 2.5, utcnow())
        again = store.stage_runs()["publish"]
        assert again.runs == publish.runs + 1 and again.last_seconds == 2.5
        assert again.total_seconds == pytest.approx(publish.total_seconds + 2.5)


def test_sync_sources_renames_and_moves_feeds_and_deletes_nothing(config: Config) -> None:
    with Pipeline(config) as pipeline:
        pipeline.run_cycle()
        counts = pipeline.store.entry_counts()
    first, second = config.sources[0], config.sources[1]
    moved = replace(second, feeds=second.feeds + first.feeds[:1], name="Renamed")
    with Store.open(config.db_url) as store:
        store.sync_sources([replace(first, feeds=first.feeds[1:]), moved])
        with store.session() as s:
            name = s.scalar(select(db.SourceRow.name).where(db.SourceRow.id == second.id))
            owner = s.scalar(select(db.FeedRow.source_id).where(db.FeedRow.url == first.feeds[0]))
        assert name == "Renamed" and owner == second.id
        assert set(store.source_states()) == {src.id for src in config.sources}, "none deleted"
        assert store.entry_counts() == counts


def test_a_listing_opens_no_database_that_is_not_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none' / 'x.db'}"
    assert Store.open_existing(url) is None
    assert not (tmp_path / "none").exists(), "neither the file nor its folder"


def test_sources_the_store_never_saw_have_no_state(config: Config) -> None:
    with Store.open(config.db_url) as store:
        assert store.source_states() == {} and store.next_poll_times() == {}
        store.sync_sources(config.sources)
        assert store.next_poll_times() == {src.id: None for src in config.sources}
        assert {s.status for s in store.source_states().values()} == {"new"}
        unused: list[Source] = []
        store.sync_sources(unused)
        assert len(store.source_states()) == len(config.sources)


def test_only_the_store_reaches_the_tables() -> None:
    """The faces and the stages never import SQLAlchemy's query side or the tables (catching
    SQLAlchemy's errors, and handing an Engine to the store, are allowed): every query lives
    behind the store. Still to move: the poll and health SQL of ``pipeline/fetching.py``."""
    import ast

    root = Path(__file__).resolve().parent.parent / "aggregator"
    allowed = ("store", "migrations")
    not_yet = (Path("pipeline/fetching.py"),)
    offenders = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root)
        if where.parts[0] in allowed or where in not_yet:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                tables = f"{name}.".startswith("aggregator.store.schema.")
                query = name.startswith("sqlalchemy") and not (
                    name.startswith("sqlalchemy.exc") or name == "sqlalchemy.Engine"
                )
                if tables or query:
                    offenders.append(f"{where}: {name}")
    assert offenders == []
    assert (root / "cli.py").read_text().count("Store.open_existing") == 1, "the check sees cli"
    assert "import Engine" in (root / "pipeline/__init__.py").read_text(), "... and the pipeline"
