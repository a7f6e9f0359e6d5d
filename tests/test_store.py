"""The store: the same cycle on the embedded SQLite default and on a real PostgreSQL server,
and the store's operations on each. Schema upgrades are in test_migrations.py."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from aggregator.config import Config, Source
from aggregator.demo import SampleWeb
from aggregator.models import (
    ArticleText,
    Attribution,
    EntryGrouped,
    EntryRelated,
    FeedState,
    FeedText,
    Pruned,
    RelatedLink,
    StoryMerged,
    StoryOpened,
    StoryRewrite,
)
from aggregator.pipeline import Pipeline
from aggregator.rewrite import coverage_of, rewrite_story
from aggregator.store import Store
from aggregator.store import schema as db
from aggregator.store.schema import EntryRow, RelatedRow, StoryRow, StoryStatus, connect, utcnow
from tests.conftest import extra_source, make_config, respond
from tests.site_events import EVENTS, stories_by_event
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
    assert report.failed == [] and report.stories == lite.stories == len(EVENTS)
    assert stories_by_event(pg).keys() == EVENTS.keys()
    again = pg.run_cycle()  # conditional polls: nothing new, nothing twice
    assert again.new_entries == 0
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(EntryRow)) == lite.new_entries
        assert s.scalar(select(func.count()).where(StoryRow.status != StoryStatus.READY)) == 0
    pg.engine.dispose()


def test_a_stored_rewrite_reads_back_equal_with_every_claims_citations() -> None:
    """Common Ground sentences carry (outlet, title, link) of every article stating them."""
    result = rewrite_story(story_articles("fares"))
    assert any(len(s.reported_by) > 1 for s in result.common_ground)
    assert db.rewrite_from_json(db.rewrite_to_json(result)) == result


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
    # The first keeps a feed of its own: a source names at least one (the schema holds it).
    kept = replace(first, feeds=(*first.feeds[1:], f"{first.homepage}elsewhere.xml"))
    with Store.open(config.db_url) as store:
        store.sync_sources([kept, moved])
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
    behind the store."""
    import ast

    root = Path(__file__).resolve().parent.parent / "aggregator"
    allowed = ("store", "migrations")
    offenders = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root)
        if where.parts[0] in allowed:
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
    listing = root / "commands" / "sources.py"
    assert listing.read_text().count("Store.open_existing") == 1, "the check sees the commands"
    assert "import Engine" in (root / "pipeline/__init__.py").read_text(), "... and the pipeline"


def test_the_store_records_text_grouping_rewrites_and_prunes(tmp_path: Path, backend: str) -> None:
    """The stages' operations, on each backend: article text, the grouping's decisions in
    order (a merge moves the entries placed before it), a rewrite, and a prune."""
    day = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with Store.open(backend) as store:
        _two_sides(store)
        with store.session.begin() as s:
            for n, (src, key) in enumerate((("b", "late"), ("a", "early"), ("b", "copy"))):
                when = day + timedelta(hours=(2, 0, 1)[n])
                s.add(
                    EntryRow(
                        source_id=src,
                        key=key,
                        link=f"https://{src}.invalid/{key}",
                        title=f"{key} title",
                        summary=f"<p>{key} from the feed</p>",
                        published_at=when,
                        fetched_at=when,
                    )
                )
        late, early, copy = (p.entry_id for p in store.pages_pending())
        assert store.ungrouped_entries() == [], "no text yet"

        def from_feed(feed: FeedText) -> ArticleText:
            return ArticleText(f"{feed.summary} / {feed.title}", None, feed.title != "copy title")

        for entry_id in (late, early, copy):
            assert store.record_article_text(entry_id, from_feed)
        assert store.record_article_text(10**6, from_feed) is False, "no such entry"
        assert store.pages_pending() == []
        pending = store.ungrouped_entries()
        assert [e.id for e in pending] == [early, copy, late], "published order"
        assert pending[0].text == "<p>early from the feed</p> / early title"
        assert [e.text_available for e in pending] == [True, False, True]

        store.record_grouping(
            [
                StoryOpened("one", day, ""),
                EntryGrouped(early, "one", None, day),
                StoryOpened("two", day + timedelta(hours=1), "one"),
                EntryGrouped(copy, "two", None, day + timedelta(hours=1)),
                StoryMerged("two", "one"),  # moves ``copy``, placed just before
                EntryGrouped(late, "one", copy, day + timedelta(hours=2)),
            ]
        )
        grouped = store.grouped_entries(day)
        assert [(e.id, e.story_id, e.copy_of) for e in grouped] == [
            (early, "one", None),
            (copy, "one", None),
            (late, "one", copy),
        ]
        assert store.grouped_entries(day + timedelta(hours=3)) == []
        # What a story index rebuilt from a time had seen before it: no copy, newest first.
        assert store.texts_before(day + timedelta(hours=3), 5) == [
            ("copy title", "<p>copy from the feed</p> / copy title"),
            ("early title", "<p>early from the feed</p> / early title"),
        ]
        assert store.texts_before(day + timedelta(hours=3), 1) == [
            ("copy title", "<p>copy from the feed</p> / copy title")
        ]
        assert store.texts_before(day, 5) == []
        assert store.grouping_mark() == (3, max(late, early, copy), 1)
        assert store.storylines(day) == {"one": "one", "two": "one"}
        assert store.ungrouped_entries() == []

        assert store.stories_to_rewrite() >= {"one"}
        inputs = store.rewrite_inputs("one")
        assert inputs is not None and not inputs.rewritten and inputs.input_hash is None
        assert [e.id for e in inputs.entries] == [early, copy, late]
        assert store.rewrite_inputs("nowhere") is None
        result = rewrite_story(story_articles("fares"))
        saved = StoryRewrite(
            input_hash="h1",
            rewrite=result,
            coverage=coverage_of(story_articles("fares")),
            leans=("left", "right"),
            related=(RelatedLink("https://a.invalid/early", "A News", "left"),),
            attribution=Attribution("a", (("a", "A News", "left", None),), 1, 0, 1, False),
        )
        assert store.published_stories() == [], "not published before its rewrite"
        assert store.save_rewrite("one", saved)
        assert store.save_rewrite("nowhere", saved) is False
        (story,) = store.published_stories()
        # Data, as the rewrite stage stored it: publishing renders it (content_html is ours).
        assert (story.id, story.headline, story.rewrite, story.coverage, story.content_html) == (
            "one",
            result.headline,
            result,
            saved.coverage,
            "",
        )
        assert story.published == day and story.related == saved.related
        assert story.content_hash is None and story.updated == day, "never shown yet"
        assert "one" not in store.stories_to_rewrite()
        shown_at = day + timedelta(days=1)
        store.record_shown({"one": "c1"}, shown_at)
        assert (
            store.published_stories()[0].updated,
            store.published_stories()[0].content_hash,
        ) == (
            shown_at,
            "c1",
        )
        store.save_rewrite("one", replace(saved, input_hash="h2"))  # a rewrite moves no time
        assert store.published_stories()[0].updated == shown_at
        # A story that gains an entry is due a rewrite in the grouping's own transaction, so
        # a process killed before its rewrite stage leaves it marked (test_crash.py).
        store.record_grouping([EntryGrouped(late, "one", copy, day + timedelta(hours=2))])
        assert "one" in store.stories_to_rewrite()
        assert store.published_stories()[0].rewrite == result, "still shown"

        now = utcnow()
        kept = store.prune_entries(day + timedelta(hours=1, minutes=30), now, day)
        assert kept == Pruned(0, (3, max(late, early, copy), 1), 0, 0, max(late, early, copy))
        pruned = store.prune_entries(now + timedelta(days=1), now, day)
        assert pruned == Pruned(3, (3, max(late, early, copy), 1), 3, 3, None)
        assert store.count_entries() == 0
        assert store.count_stories() == 1, "the retired row stays: its id is never reused"
        assert store.prune_entries(now + timedelta(days=1), now) == Pruned(0)


def _two_sides(store: Store) -> None:
    """Two sources, A News on the left and B News on the right."""
    store.sync_sources(
        [
            Source("a", "A News", "https://a.invalid/", ("https://a.invalid/rss",), "left"),
            Source("b", "B News", "https://b.invalid/", ("https://b.invalid/rss",), "right"),
        ]
    )


def test_grouping_takes_its_stories_in_id_order_so_a_publish_beside_it_cannot_deadlock(
    pg_url: str,
) -> None:
    """A worker groups and publishes at once. Publishing records what it showed on its stories
    in id order (``record_shown``). A grouping that changed "b" and then waited for "a", held
    by a publish that wants "b" next, would deadlock, and PostgreSQL would fail one of the two
    (seen in test_worker under load: the group task failed and the cycle never finished).
    The grouping takes every story it changes first, in id order: waiting for "a", it holds
    nothing yet, and "b" stays free for the publish."""
    day = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with Store.open(pg_url) as store:
        store.record_grouping([StoryOpened("a", day, ""), StoryOpened("b", day, "")])
        with store.session.begin() as s:  # both rewritten since: a grouping changes them
            s.execute(update(StoryRow).values(input_hash="rewritten"))
        steps = [EntryGrouped(1, "b", None, day), EntryGrouped(2, "a", None, day)]
        engine = connect(pg_url)
        try:
            with engine.connect() as publish, engine.connect() as look:
                held = publish.begin()
                publish.execute(text("SELECT id FROM stories WHERE id = 'a' FOR UPDATE"))
                grouping = threading.Thread(target=store.record_grouping, args=(steps,))
                grouping.start()
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                waiting += " AND datname = current_database()"
                deadline = time.monotonic() + 30
                while not look.execute(text(waiting)).scalar() and time.monotonic() < deadline:
                    look.rollback()
                    time.sleep(0.05)
                assert grouping.is_alive(), "the grouping waits for the story the publish holds"
                # Without the ordered locks this fails at once: the grouping holds "b".
                publish.execute(text("SELECT id FROM stories WHERE id = 'b' FOR UPDATE NOWAIT"))
                held.commit()
                grouping.join(30)
                assert not grouping.is_alive()
        finally:
            engine.dispose()
        with store.session() as s:
            hashes = s.execute(select(StoryRow.id, StoryRow.input_hash).order_by(StoryRow.id))
            assert list(hashes) == [("a", None), ("b", None)], "the grouping went through"


def test_related_coverage_reads_both_ways_follows_merges_and_goes_with_its_entries(
    backend: str,
) -> None:
    """The search behind a "not covered" claim reads what the grouping recorded: the entries
    found related to a story, and the entries of the stories its own were found related to,
    most related first; a merge moves them to the story kept; a prune takes them away."""
    day = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with Store.open(backend) as store:
        _two_sides(store)
        with store.session.begin() as s:
            for n, (src, key) in enumerate((("a", "left"), ("b", "right"), ("b", "later"))):
                when = day + timedelta(hours=n)
                link = f"https://{src}.invalid/{key}"
                s.add(
                    EntryRow(
                        source_id=src,
                        key=key,
                        link=link,
                        title=key,
                        text=key,
                        published_at=when,
                        fetched_at=when,
                    )
                )
        left, right, later = (e.id for e in store.ungrouped_entries())
        store.record_grouping(
            [
                StoryOpened("L", day, ""),
                EntryGrouped(left, "L", None, day),
                StoryOpened("R", day + timedelta(hours=1), ""),
                EntryGrouped(right, "R", None, day + timedelta(hours=1)),
                EntryRelated(right, "L", 0.2),
                StoryOpened("R2", day + timedelta(hours=2), ""),
                EntryGrouped(later, "R2", None, day + timedelta(hours=2)),
                EntryRelated(later, "L", 0.5),
            ]
        )
        assert [e.id for e in store.related_entries("L")] == [later, right]
        assert [e.id for e in store.related_entries("R")] == [left], "the other way round"
        assert [e.id for e in store.related_entries("R2")] == [left]
        assert store.stories_to_rewrite() >= {"L", "R", "R2"}
        # When a story changes, the stories related to it (either way) are looked at again.
        assert store.related_stories({"L"}) == {"R", "R2"}
        assert store.related_stories({"R"}) == {"L"}
        assert store.related_stories(set()) == set()
        # Recorded again with a higher score: one row, the higher score.
        store.record_grouping([EntryRelated(right, "L", 0.9)])
        assert [e.id for e in store.related_entries("L")] == [right, later]
        # R2 folds into R: what was found related to R2 is related to R; none twice.
        store.record_grouping([EntryRelated(left, "R2", 0.3), EntryRelated(left, "R", 0.1)])
        store.record_grouping([StoryMerged("R2", "R")])
        with store.session() as s:
            rows = {(r.story_id, r.entry_id): r.score for r in s.scalars(select(RelatedRow))}
        assert rows == {("L", right): 0.9, ("L", later): 0.5, ("R", left): 0.3}
        assert [e.id for e in store.related_entries("R")] == [left]
        assert store.related_stories({"L"}) == {"R"}, "a retired story is no more"
        now = utcnow()
        store.prune_entries(now + timedelta(days=1), now)
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(RelatedRow)) == 0


def test_polls_are_recorded_whole_and_one_bad_source_spoils_no_other(backend: str) -> None:
    """record_polls on each backend: entries known by key or by ident are skipped, validators,
    moves and health are kept; when one source's decision fails, the batch is retried source
    by source and only that source is left unrecorded (with its exception in its place)."""
    from aggregator import polling
    from aggregator.models import FeedEntry, FeedPoll, PollStored, SourcePoll, Validators

    sources = [
        Source("a", "A News", "https://a.invalid/", ("https://a.invalid/rss",), "left"),
        Source("b", "B News", "https://b.invalid/", ("https://b.invalid/rss",), "right"),
    ]
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def poll_of(sid: str, keys: list[str], idents: list[str]) -> SourcePoll:
        entries = tuple(FeedEntry(k, f"https://{sid}.invalid/{k}", f"title {k}") for k in keys)
        feed = FeedPoll(
            url=f"https://{sid}.invalid/rss",
            started=at,
            seconds=0.2,
            http_status=200,
            outcome="unchanged",
            entries=entries,
            idents=tuple(idents),
            validators=Validators(etag=f'"{sid}1"'),
            body_hash=f"hash-{sid}",
            moved_to=f"https://{sid}.invalid/feed.xml",
        )
        return SourcePoll(sid, (feed,), None, 200)

    def decide(sid: str, health: polling.Health, new: int, now: datetime) -> polling.Decision:
        if sid == "b" and failing_b:
            raise RuntimeError("a bug deciding b")
        return polling.Decision("ok", None, 0, now + timedelta(minutes=30), None, None, now)

    with Store.open(backend) as store:
        store.sync_sources(sources)
        failing_b = True
        stored = store.record_polls(
            [poll_of("a", ["k1", "k2", "k1"], ["i1", "i2", "i1"]), poll_of("b", ["x"], ["ix"])],
            decide,
        )
        assert isinstance(stored[1], RuntimeError)
        assert stored[0] == PollStored(
            (2,), "ok", (("https://a.invalid/rss", "https://a.invalid/feed.xml"),)
        )
        assert store.entry_counts() == {"a": 2}, "b's entries went with its failed decision"
        assert store.poll_outcomes() == {"new": 1}
        feeds, waits = store.poll_state(["a", "b"])
        assert feeds["https://a.invalid/rss"] == FeedState(
            "https://a.invalid/feed.xml", Validators(etag='"a1"'), "hash-a"
        )
        assert feeds["https://b.invalid/rss"] == FeedState(
            "https://b.invalid/rss", Validators(), None
        )
        assert waits["a"].status == "ok" and waits["b"].status == "new"

        failing_b = False  # again: a's k3 is new, k4 repeats k1's ident (a changed guid)
        stored = store.record_polls(
            [poll_of("a", ["k1", "k3", "k4"], ["i1", "i3", "i1"]), poll_of("b", ["x"], ["ix"])],
            decide,
        )
        assert [s.new_entries for s in stored if isinstance(s, PollStored)] == [(1,), (1,)]
        assert stored[0] == PollStored((1,), "ok", ()), "a moved once, not again"
        assert store.entry_counts() == {"a": 3, "b": 1}
        assert store.poll_outcomes() == {"new": 3}
