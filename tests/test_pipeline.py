"""A whole cycle against the fixture outlets on a real loopback server and a real SQLite file."""

from __future__ import annotations

import ast
import json
import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html
from sqlalchemy import func, select

from aggregator import cluster
from aggregator.config import Config, GroupingSettings, Source
from aggregator.demo import SampleWeb
from aggregator.models import ClusterArticle, StoryMerged
from aggregator.pipeline import Pipeline
from aggregator.publish import atom_id
from aggregator.store.schema import EntryRow, SourceRow, StoryRow, StoryStatus
from tests.conftest import (
    SilentHost,
    assert_valid_atom,
    extra_source,
    free_port,
    hang,
    make_config,
    needs_embeddings,
    respond,
)
from tests.site_events import EVENTS, STORYLINES, stories_by_event
from tests.stories import gold_stories, serve_as_outlets

SECTIONS = ("Progressive View", "Conservative View", "Common Ground")
ATOM = "http://www.w3.org/2005/Atom"
AT = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721


def count(pipeline: Pipeline, model: type) -> int:
    with pipeline.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def stories_of(path: Path) -> dict[str, feedparser.FeedParserDict]:
    """Story entries of a published feed by id (the pinned headlines entry left out)."""
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    return {e.id: e for e in feed.entries[1:]}


def _leans(entry: feedparser.FeedParserDict) -> set[str]:
    return {t.term for t in entry.tags if t.scheme.endswith("leans")}


def test_full_cycle_publishes_a_valid_balanced_feed(config: Config, atom_schema) -> None:
    pipeline = Pipeline(config)
    report = pipeline.run_cycle()
    assert report.failed == []
    assert report.new_entries > 0 and report.feed_path == config.out_dir / "balanced.atom"
    data = report.feed_path.read_bytes()
    assert_valid_atom(atom_schema, data)
    stories = stories_of(report.feed_path)
    # The fixture's events (tests/fixtures/site-events.json), each one entry: the bridge
    # closure, the water cuts, the residents' hearing on the cuts the next night (its own
    # event, in the cuts' storyline) and the gamma-only tax cut.
    story_of = stories_by_event(pipeline)
    assert set(stories) == {atom_id(story) for story in story_of.values()}
    assert len(stories) == report.stories == len(EVENTS)
    scheme = "urn:balanced-news:storyline"
    line_of = {
        event: {t.term for t in stories[atom_id(story)].tags if t.scheme == scheme}
        for event, story in story_of.items()
    }
    in_line = {event for line in STORYLINES for event in line}
    for line in STORYLINES:  # the fixture's storylines, stated in site-events.json
        (term,) = set().union(*(line_of[event] for event in line))
        assert all(line_of[event] == {term} for event in line), line
    assert not any(line_of[event] for event in EVENTS if event not in in_line)
    shared = [e for e in stories.values() if len([x for x in e.links if x.rel == "related"]) >= 3]
    assert shared, "a story covered by several outlets links to each of them"
    for entry in shared:
        outlets = {x.title for x in entry.links if x.rel == "related"}
        assert {"Alpha Times", "Beta Daily", "Gamma Post"} <= outlets
        html = entry.content[0].value
        assert all(section in html for section in SECTIONS)
        assert "first reported" in html
        assert entry.summary
    right_only = [e for e in stories.values() if _leans(e) == {"right"}]
    left_only = [e for e in stories.values() if _leans(e) == {"left"}]  # the hearing
    assert len(right_only) == len(left_only) == 1
    # Only one side covers it, and the search for the other side found nothing: the feed
    # flags a blindspot (and flags no two-sided story). The hearing, the next event of the
    # cuts, is no blindspot: the right-leaning report of the cuts is named as a related angle.
    flagged = [e for e in stories.values() if "blindspot" in {t.term for t in e.tags}]
    assert [e.id for e in flagged] == [right_only[0].id]
    assert "No left-leaning outlet has covered this story yet." in right_only[0].content[0].value
    hearing = left_only[0].content[0].value
    assert "has covered this story yet" not in hearing
    assert 'class="related-angle"' in hearing and "Gamma Post" in hearing
    headlines = feedparser.parse(data).entries[0]
    assert headlines.title == "Latest Headlines"
    assert all(e.title in headlines.content[0].value for e in stories.values())


def test_second_poll_is_conditional_and_stores_nothing(web: SampleWeb, config: Config) -> None:
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    entries, polls_before = count(pipeline, EntryRow), len(web.requests)
    feeds = {urlsplit(u).path for src in config.sources for u in src.feeds}

    results = pipeline.poll()
    assert {r.outcome for r in results} == {"not-modified"}
    assert count(pipeline, EntryRow) == entries
    again = [(p, h) for p, h in web.requests[polls_before:] if p in feeds]
    assert len(again) == len(feeds)
    for _path, headers in again:
        assert headers["if-none-match"].startswith('"')
        assert headers["if-modified-since"].endswith("GMT")

    # A server that ignores validators sends the same entries again: still nothing new.
    alpha = urlsplit(config.source("alpha").feeds[0]).path
    web.routes[alpha] = respond(200, web.body(alpha) or b"", "application/rss+xml")
    (result,) = pipeline.poll([config.source("alpha")])
    assert (result.outcome, result.new_entries) == ("unchanged", 0)
    assert count(pipeline, EntryRow) == entries


def test_a_host_that_never_answers_does_not_hold_the_cycle_back(
    web: SampleWeb, tmp_path: Path
) -> None:
    """Three sources on a host that takes the requests and never answers (more than its two
    per-host slots), with a read timeout far longer than the cycle: the cycle publishes the
    other sources while the stalled host's connections are still open, then cuts them off.
    The sent requests end as errors; the one never sent leaves its source due."""
    with SilentHost() as silent:
        stalled = tuple(
            Source(
                id=f"stall{n}",
                name=f"Stall {n}",
                homepage=silent.url("/"),
                feeds=(silent.url(f"stall{n}.xml"),),
                lean="center",
            )
            for n in range(3)
        )
        config = make_config(web, tmp_path, extra=stalled, timeout=600.0, total_timeout=600.0)
        at_publish: list[int] = []

        def progress(stage: str, done: int, total: int, detail: str) -> None:
            if stage == "publish":
                with silent.changed:
                    at_publish.append(silent.open)

        with Pipeline(config, progress=progress) as pipeline:
            report = pipeline.run_cycle()
            assert silent.wait_closed(), "the cut-off requests' connections were closed"
            with pipeline.session() as s:
                states = {row.id: row.consecutive_errors for row in s.scalars(select(SourceRow))}
    assert at_publish == [2], "published while both stalled requests were still out"
    assert silent.opened == 2  # the per-host limit held: the third request was never sent
    results = {r.source_id: r for r in report.sources}
    healthy = [src.id for src in config.sources if src not in stalled]
    assert {results[sid].outcome for sid in healthy} == {"new"}
    assert report.feed_path is not None and stories_of(report.feed_path)
    cut = sorted(r.source_id for r in results.values() if r.outcome == "error")
    untried = [r.source_id for r in results.values() if r.outcome == "waiting"]
    assert len(cut) == 2 and len(untried) == 1, results
    for sid in cut:
        assert results[sid].error.startswith("no answer from 127.0.0.2 in ")
        assert states[sid] == 1
    assert results[untried[0]].note == (
        "not polled: 127.0.0.2 gave no answer to this cycle's earlier requests"
    )
    assert states[untried[0]] == 0  # nothing stored: due again next cycle


def test_slow_answers_on_a_loaded_machine_are_not_taken_for_a_stalled_host(
    web: SampleWeb, tmp_path: Path
) -> None:
    """Every healthy feed answers in 1 s, twice the least patience for a stalled host, as on a
    loaded machine; one host never answers. A host is stalled only against what the others
    took: all the healthy sources are in this cycle's feed, and only the silent host is cut."""
    with SilentHost() as silent:
        stalled = Source(
            id="stall0",
            name="Stall 0",
            homepage=silent.url("/"),
            feeds=(silent.url("stall0.xml"),),
            lean="center",
        )
        config = make_config(web, tmp_path, extra=(stalled,), timeout=600.0, total_timeout=600.0)
        healthy = [src for src in config.sources if src != stalled]
        for src in healthy:
            path = urlsplit(src.feeds[0]).path
            answer = respond(200, web.body(path) or b"", "application/rss+xml")
            web.routes[path] = lambda h, answer=answer: (time.sleep(1.0), answer(h))
        with Pipeline(config) as pipeline:
            report = pipeline.run_cycle()
    results = {r.source_id: r for r in report.sources}
    assert {results[src.id].outcome for src in healthy} == {"new"}, results
    assert results["stall0"].outcome == "error", results["stall0"]
    assert report.feed_path is not None
    linked = {
        urlsplit(link.href).path.split("/")[1]
        for entry in stories_of(report.feed_path).values()
        for link in entry.links
        if link.rel == "related"
    }
    assert {src.id for src in healthy} <= linked, "every slow answer is in this cycle's feed"


def test_failing_sources_are_reported_and_the_others_publish(
    web: SampleWeb, tmp_path: Path
) -> None:
    dead_port = free_port()
    web.routes["/slow/rss.xml"] = hang(60)  # far past the read timeout
    web.routes["/err/rss.xml"] = respond(500, b"Internal Server Error")
    dead = replace(
        extra_source(web, "dead", "dead/rss.xml"),
        feeds=(f"http://127.0.0.1:{dead_port}/rss.xml",),
    )
    config = make_config(
        web,
        tmp_path,
        extra=(
            extra_source(web, "slow", "slow/rss.xml"),
            extra_source(web, "err", "err/rss.xml"),
            extra_source(web, "broken", "broken/invalid.xml"),
            dead,
        ),
        timeout=3.0,  # generous: it binds the healthy sources too, on a loaded machine
    )
    # "slow" usually answers in 60 s, so the cycle waits 4x that for it (the stalled-host
    # rule): its read timeout, not the cycle's end, cuts it off, on any machine.
    pipeline = Pipeline(config)
    with pipeline.session.begin() as s:
        s.get(SourceRow, "slow").mean_response_ms = 60_000
    report = pipeline.run_cycle()
    errors = {r.source_id: r.error for r in report.failed}
    assert set(errors) == {"slow", "err", "broken", "dead"}
    assert errors["slow"] == "read timed out after 3s"
    assert errors["err"] == "HTTP 500 Internal Server Error"
    assert errors["broken"].startswith("invalid feed: ")
    assert errors["dead"].startswith("cannot connect")
    assert len(stories_of(report.feed_path)) == len(EVENTS), "the healthy sources still publish"
    published = feedparser.parse(report.feed_path.read_bytes())
    assert published.feed.subtitle == config.settings.subtitle
    assert published.entries[0].title == "Latest Headlines (some sources are down)"
    assert (
        "4 of 9 sources are down (Broken News, Dead News, Err News and 1 more); we are retrying."
        in published.entries[0].content[0].value
    )
    pipeline = Pipeline(config)
    with pipeline.session() as s:
        row = s.get(SourceRow, "err")
        assert row is not None and (row.status, row.last_http_status) == ("failing", 500)
        assert s.get(SourceRow, "alpha").status == "ok"  # type: ignore[union-attr]

    # The source recovers: the notice goes away.
    web.routes["/err/rss.xml"] = respond(200, web.body("alpha/rss.xml") or b"")
    pipeline.run_cycle([config.source("err")])
    front = feedparser.parse(report.feed_path.read_bytes()).entries[0].content[0].value
    assert "3 of 9 sources are down (Broken News, Dead News, Slow News)" in front


def test_story_ids_survive_reruns_and_new_coverage(web: SampleWeb, tmp_path: Path) -> None:
    full = make_config(web, tmp_path)
    early = replace(full, sources=(full.source("alpha"), full.source("gamma")))
    first = stories_of(Pipeline(early).run_cycle().feed_path)
    report = Pipeline(full).run_cycle()  # the other outlets arrive later
    second = stories_of(report.feed_path)
    assert set(first) <= set(second), "no published id ever changes"
    report.feed_path.unlink()
    third = stories_of(Pipeline(full).run_cycle().feed_path)  # a fresh process, same database
    assert set(third) == set(second)
    assert {k: v.updated for k, v in third.items()} == {k: v.updated for k, v in second.items()}
    with Pipeline(full).session() as s:
        ids = set(s.scalars(select(StoryRow.id)))
    assert {atom_id(i) for i in ids} == set(third)


def test_loopback_sources_are_refused_by_default(web: SampleWeb, tmp_path: Path) -> None:
    config = make_config(web, tmp_path, allow_private_hosts=False)
    report = Pipeline(config).run_cycle()
    assert len(report.failed) == len(config.sources)
    assert all("--allow-private-hosts" in (r.error or "") for r in report.failed)
    assert web.requests == []
    assert any(line.startswith("Every source is down (all 5)") for line in report.summary())
    front = feedparser.parse(report.feed_path.read_bytes()).entries[0]
    assert front.title == "Latest Headlines (every source is down)"
    assert "Every source is down (all 5); we are retrying." in front.content[0].value
    assert "allow-private-hosts" not in report.feed_path.read_text()


def test_failed_extraction_is_recorded_and_the_feed_text_used(
    web: SampleWeb, config: Config
) -> None:
    pipeline = Pipeline(config)
    pipeline.poll([config.source("beta")])
    with pipeline.session() as s:
        entry = s.scalars(select(EntryRow).where(EntryRow.source_id == "beta")).first()
    assert entry is not None and entry.link
    web.routes[urlsplit(entry.link).path] = respond(404, b"gone")
    pipeline.extract_pending()
    with pipeline.session() as s:
        again = s.get(EntryRow, entry.id)
        others = s.scalars(select(EntryRow).where(EntryRow.id != entry.id)).all()
    assert again is not None and again.extract_error == "HTTP 404 Not Found"
    assert again.text and len(again.text) > 20  # the feed's own summary or content
    assert all(o.extract_error is None and len(o.text or "") > 500 for o in others)


def test_an_article_page_in_windows_1251_is_stored_as_text(web: SampleWeb, config: Config) -> None:
    """The header names no charset; the page's <meta> says windows-1251 (was stored garbled)."""
    pipeline = Pipeline(config)
    pipeline.poll([config.source("beta")])
    with pipeline.session() as s:
        entry = s.scalars(select(EntryRow).where(EntryRow.source_id == "beta")).first()
    assert entry is not None and entry.link
    page = (Path(__file__).parent / "fixtures" / "pages" / "windows-1251.html").read_bytes()
    web.routes[urlsplit(entry.link).path] = respond(200, page, "text/html")
    pipeline.extract_pending()
    with pipeline.session() as s:
        again = s.get(EntryRow, entry.id)
    assert again is not None and again.extract_error is None
    assert again.text and "Во вторник городской совет" in again.text


def test_a_stop_mid_cycle_loses_nothing(config: Config) -> None:
    """A stop set during grouping lets that stage finish its transaction and starts no later
    stage (no rewrite, no publish); the next run picks up where that one stopped."""
    stop = threading.Event()
    after_stop: list[str] = []

    def stop_during_group(stage: str, done: int, total: int, detail: str) -> None:
        if stop.is_set():
            after_stop.append(stage)
        elif stage == "group" and done == 2:
            stop.set()

    halted = Pipeline(config, progress=stop_during_group, stop=stop)
    report = halted.run_cycle()
    assert stop.is_set()
    assert set(after_stop) <= {"group"}, f"stages ran after the stop: {after_stop}"
    assert report.feed_path is None and not (config.out_dir / "balanced.atom").exists()
    with halted.session() as s:
        assert s.scalar(select(func.count()).where(StoryRow.status == StoryStatus.READY)) == 0
    entries = count(halted, EntryRow)
    report = Pipeline(config).run_cycle()  # the next run picks up where that one stopped
    assert report.stories == len(EVENTS) and count(halted, EntryRow) == entries
    stories_by_event(halted)
    with halted.session() as s:
        assert s.scalar(select(func.count()).where(EntryRow.story_id.is_(None))) == 0
        assert s.scalar(select(func.count()).where(StoryRow.status != StoryStatus.READY)) == 0


def test_retention_prunes_by_storage_age_not_publication_age(config: Config) -> None:
    kept = replace(config, settings=replace(config.settings, retention_days=1))
    pipeline = Pipeline(kept)
    pipeline.run_cycle()  # the fixture articles are days old, yet stored today: all kept
    entries = count(pipeline, EntryRow)
    assert entries > 0
    with pipeline.session.begin() as s:
        for entry in s.scalars(select(EntryRow)):
            entry.fetched_at -= timedelta(days=2)
    assert pipeline.prune() == entries
    assert count(pipeline, EntryRow) == 0 and count(pipeline, StoryRow) == 0


def test_copies_are_one_article_with_via_outlets_and_attribution(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A reprint (near-duplicate text) and the original under a tracking URL add no article."""
    wire = extra_source(web, "wire", "wire/rss.xml", lean="right")
    original = web.body("/alpha/articles/harbor-bridge-closed-412-million-repair.html") or b""
    reprint = original.replace(b"Alpha Times", b"Wire Reprints").replace(
        b"on Monday night", b"late on Monday night"
    )  # the same report, lightly edited, under another site's name
    web.routes["/wire/articles/harbor-bridge-repair-reprint.html"] = respond(
        200, reprint, "text/html; charset=utf-8"
    )
    config = make_config(web, tmp_path, extra=(wire,))
    report = Pipeline(config).run_cycle()
    assert report.failed == [] and report.stories == len(EVENTS)
    pipeline = Pipeline(config)
    stories_by_event(pipeline)  # the fixture's events, the copies in the bridge closure's
    with pipeline.session() as s:
        alpha = s.scalars(
            select(EntryRow).where(EntryRow.source_id == "alpha", EntryRow.title.contains("$412"))
        ).one()
        copies = list(s.scalars(select(EntryRow).where(EntryRow.source_id == "wire")))
        assert len(copies) == 2
        assert {c.copy_of for c in copies} == {alpha.id}  # one by URL, one by text
        assert {c.story_id for c in copies} == {alpha.story_id}
        story = s.get(StoryRow, alpha.story_id)
        assert story.first_source_id == "alpha"
        assert (story.count_left, story.count_center, story.count_right) == (2, 1, 3)
        assert not story.blindspot and story.merged_into is None
    entry = stories_of(report.feed_path)[atom_id(alpha.story_id)]
    html = entry.content[0].value
    assert "Also carried, as a copy of the same report, by Wire News (Right)." in html
    assert "Covered by 2 left, 1 center, 3 right outlets." in html
    # Not rewritten separately, but still reachable: the copy keeps its own related link.
    wire_links = {x.href for x in entry.links if x.rel == "related" and x.title == "Wire News"}
    assert wire_links == {c.link for c in copies}
    # ... and the source list on the page shows every article the entry links, copies marked.
    assert html.count("(Right, a copy of the same report)</li>") == 2


def test_a_merged_story_leaves_the_feed_and_its_id_is_never_reused(
    config: Config, atom_schema
) -> None:
    """Two stories found to be one: the older id keeps every article, the newer one retires."""
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    with pipeline.session() as s:
        rows = list(s.scalars(select(StoryRow).order_by(StoryRow.first_published)))
        older, newer = rows[0], rows[1]
        kept, retired = older.id, newer.id
        moved = set(s.scalars(select(EntryRow.id).where(EntryRow.story_id == retired)))
        before = older.updated_at
    pipeline.store.record_grouping([StoryMerged(retired, kept)])
    pipeline.rewrite({kept})
    path = pipeline.publish()
    assert_valid_atom(atom_schema, path.read_bytes())
    stories = stories_of(path)
    assert atom_id(kept) in stories and atom_id(retired) not in stories
    assert len(stories) == len(EVENTS) - 1
    # Readers are told: an RFC 6721 tombstone for the retired entry, pointing to the kept story,
    # whose page replaces the retired story's page at its old address.
    feed = etree.fromstring(path.read_bytes())
    (tombstone,) = feed.findall(f"{{{AT}}}deleted-entry")
    assert tombstone.get("ref") == atom_id(retired)
    assert datetime.fromisoformat(tombstone.get("when")) <= datetime.now(UTC)
    link = tombstone.find(f"{{{ATOM}}}link")
    assert link is not None and link.get("href").endswith(f"stories/{kept}.html")
    headline = feed.find(f"{{{ATOM}}}entry[{{{ATOM}}}id='{atom_id(kept)}']/{{{ATOM}}}title")
    assert headline is not None and headline.text in tombstone.findtext(f"{{{AT}}}comment")
    page = (config.out_dir / "stories" / f"{retired}.html").read_text(encoding="utf-8")
    assert f'href="../stories/{kept}.html"' in page and "now part of another" in page
    with pipeline.session() as s:
        assert s.get(StoryRow, retired).merged_into == kept  # the row stays: the id is taken
        assert moved <= set(s.scalars(select(EntryRow.id).where(EntryRow.story_id == kept)))
        assert s.get(StoryRow, kept).updated_at > before  # readers see the entry change
    # Later cycles never bring the retired id back, nor count it among the stories.
    report = Pipeline(config).run_cycle()
    assert atom_id(retired) not in stories_of(path)
    assert report.stories == len(stories_of(path)) == pipeline.store.count_stories() - 1


def test_a_long_running_pipeline_keeps_its_story_index_and_groups_as_a_restart_would(
    web: SampleWeb, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's pipeline keeps its story index between runs instead of restoring days of
    history each time. Another process grouping in between, or new articles more than a day
    past the index's history, make it rebuild. Either way every entry lands in the story a
    restarted process would give it."""
    caplog.set_level(logging.DEBUG, logger="aggregator")
    # Earliest article per outlet: alpha Nov 3 14:00, beta Nov 3 16:20, gamma Nov 3 18:45,
    # delta Nov 4 15:00 (a day past alpha), epsilon Nov 4 16:30.
    steps = (("alpha",), ("beta",), ("gamma", "epsilon"), ("delta",))

    def grouped(name: str, processes: str) -> tuple[dict[tuple[str, str], str], list[str]]:
        (tmp_path / name).mkdir()
        config = make_config(web, tmp_path / name)
        long_running = Pipeline(config)
        caplog.clear()
        for step, ids in zip(processes, steps, strict=True):
            sources = [config.source(i) for i in ids]
            (long_running if step == "L" else Pipeline(config)).run_cycle(sources)
        how = [r.getMessage().split(" (")[0] for r in caplog.records if "story index" in r.msg]
        with long_running.session() as s:
            rows = s.execute(select(EntryRow.source_id, EntryRow.key, EntryRow.story_id)).all()
        return {(src, key): story for src, key, story in rows}, how

    def kept(how: list[str]) -> list[bool]:
        return ["kept" in h for h in how]

    restarted, how = grouped("restarted", "RRRR")
    assert kept(how) == [False] * 4
    assert len(set(restarted.values())) >= 2 and None not in restarted.values()
    long_running, how = grouped("long-running", "LLLL")
    assert kept(how) == [False, True, True, False], "delta comes a day after alpha"
    assert long_running == restarted
    interleaved, how = grouped("interleaved", "LRLL")
    # Another process grouped beta: the index is rebuilt for gamma, and kept for delta.
    assert kept(how) == [False, False, False, True]
    assert interleaved == restarted


def test_a_pipeline_closes_what_it_opened(config: Config) -> None:
    model = replace(config.model, enabled=True, base_url="http://127.0.0.1:9/v1", model="m")
    with Pipeline(replace(config, model=model)) as pipeline:
        assert count(pipeline, StoryRow) == 0
        assert pipeline.model is not None and not pipeline.model._client.is_closed  # noqa: SLF001
    assert pipeline.model._client.is_closed  # noqa: SLF001
    assert pipeline.engine.pool.checkedin() == 0, "its database connections are closed"


def test_making_a_pipeline_touches_no_file_until_it_is_opened(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A Pipeline on a fresh path creates nothing (no database, no folder) until it is
    opened, explicitly or by a first use; closing one never opened does nothing either."""
    config = replace(
        make_config(web, tmp_path),
        db_url=f"sqlite:///{tmp_path / 'data' / 'news.db'}",
        out_dir=tmp_path / "out",
    )

    def files() -> list[Path]:
        return sorted(tmp_path.rglob("*"))

    before = files()
    pipeline = Pipeline(config)
    pipeline.close()
    assert files() == before
    with Pipeline(config) as pipeline:
        assert (tmp_path / "data" / "news.db").is_file()
        assert "alpha" in pipeline.store.source_states()  # the sources are recorded
    later = Pipeline(config)
    assert later.store.count_stories(live=True) == 0  # a first use opens it too
    later.close()


def test_a_rebuilt_index_learns_the_articles_before_its_history(
    web: SampleWeb, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart rebuilds the story index from the last 9 days of stories, and first counts
    the words of the grouped articles before them (``cluster.LEARN_BEFORE``), as the stream
    that grouped those days had: here the two of three weeks ago, not their copy."""
    config = make_config(web, tmp_path)
    texts = {
        "a": "The county fair opened with a pie contest, tractor pulls and a petting zoo.",
        "b": "Harbor pilots agreed to a new contract after talks ran through the weekend.",
        "b2": "Harbor pilots agreed to a new contract after talks ran through the weekend.",
        "c": "The library extended weekend hours and added a seed exchange for gardeners.",
    }
    when = {
        "a": datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        "b": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "b2": datetime(2026, 11, 2, 10, 0, tzinfo=UTC),  # the same link: a copy of b
        "c": datetime(2026, 11, 22, 9, 0, tzinfo=UTC),  # 20 days on
    }
    caplog.set_level(logging.DEBUG, logger="aggregator")
    for keys in (("a", "b", "b2"), ("c",)):
        pipeline = Pipeline(config)  # a restart each time
        with pipeline.session.begin() as s:
            for key in keys:
                s.add(
                    EntryRow(
                        source_id="alpha" if key != "b2" else "beta",
                        key=key,
                        link=f"https://example.invalid/{key.rstrip('2')}",
                        title=texts[key][:30],
                        published_at=when[key],
                        fetched_at=when[key],
                        text=texts[key],
                    )
                )
        caplog.clear()
        pipeline.group()
    rebuilt = [r.getMessage() for r in caplog.records if "story index rebuilt" in r.msg]
    assert rebuilt == ["group: story index rebuilt from 0 grouped entries (2 before them learnt)"]


def test_a_kept_index_finds_a_same_link_copy_as_a_rebuild_does(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A republished link is a copy of the first entry with that link inside the history a
    rebuild would restore (9 days), not of an older one that a kept index still remembers."""
    texts = {
        "a": "The county fair opened with a pie contest, tractor pulls and a petting zoo.",
        "b": "Harbor pilots agreed to a new contract after talks ran through the weekend.",
        "c": "The library extended weekend hours and added a seed exchange for gardeners.",
    }
    steps = (
        ("alpha", "a", datetime(2026, 11, 11, 18, 0, tzinfo=UTC)),
        ("beta", "b", datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),  # A is 8.75 days older
        ("gamma", "c", datetime(2026, 11, 20, 20, 0, tzinfo=UTC)),  # A is 9.1 days older
    )

    def grouped(name: str, long_running: bool) -> dict[str, tuple[str | None, int | None]]:
        (tmp_path / name).mkdir()
        config = make_config(web, tmp_path / name)
        kept = Pipeline(config)
        for source_id, key, published in steps:
            pipeline = kept if long_running else Pipeline(config)
            with pipeline.session.begin() as s:
                s.add(
                    EntryRow(
                        source_id=source_id,
                        key=key,
                        link="https://example.invalid/live-coverage",
                        title=texts[key][:30],
                        published_at=published,
                        fetched_at=published,
                        text=texts[key],
                    )
                )
            pipeline.group()
        with kept.session() as s:
            rows = s.execute(
                select(EntryRow.id, EntryRow.key, EntryRow.story_id, EntryRow.copy_of)
            ).all()
        key_of = {row.id: row.key for row in rows}
        return {row.key: (row.story_id, key_of.get(row.copy_of)) for row in rows}

    restarted = grouped("restarted", long_running=False)
    assert restarted["b"] == (restarted["a"][0], "a")  # B repeats A's link within 9 days
    assert restarted["c"] == (restarted["a"][0], "b"), "C's copy is of B: A is out of range"
    assert grouped("long-running", long_running=True) == restarted


def test_consecutive_events_are_entries_linked_as_one_storyline(
    web: SampleWeb, tmp_path: Path, atom_schema
) -> None:
    """A strike deal, the vote ratifying it two days later and the fare rise paying for it are
    three entries, linked in order as one storyline (Atom category, "Earlier in this story",
    JSON Feed field); a frost story on the same days stays apart. Ids hold on the next cycle."""
    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "storyline"))
    report = Pipeline(config).run_cycle()
    assert report.failed == []
    pipeline = Pipeline(config)
    with pipeline.session() as s:
        story_of = {
            e.link.rsplit("/", 1)[-1]: e.story_id
            for e in s.scalars(select(EntryRow).where(EntryRow.link.contains("/storyline-")))
        }
        line_of = {row.id: row.storyline_id for row in s.scalars(select(StoryRow))}
    event = {
        g: {story_of[f"{e}.html"] for e, g2 in gold_stories("storyline").items() if g2 == g}
        for g in ("deal", "ratify", "fares", "orchard")
    }
    assert all(len(ids) == 1 for ids in event.values()), event
    deal, ratify, fares, orchard = (
        next(iter(event[g])) for g in ("deal", "ratify", "fares", "orchard")
    )
    assert len({deal, ratify, fares, orchard}) == 4
    assert line_of[deal] == line_of[ratify] == line_of[fares] == deal
    assert line_of[orchard] != deal
    data = report.feed_path.read_bytes()
    assert_valid_atom(atom_schema, data)
    entries = stories_of(report.feed_path)
    middle = entries[atom_id(ratify)]
    scheme = "urn:balanced-news:storyline"
    assert [(t.term, t.scheme) for t in middle.tags if t.scheme == scheme] == [(deal, scheme)]
    html = middle.content[0].value
    earlier, later = html.split("Earlier in this story")[1].split("Later in this story")
    assert f"stories/{deal}.html" in earlier and "Nov 2, 2026" in earlier
    assert f"stories/{fares}.html" in later and f"stories/{deal}.html" not in later
    page = (config.out_dir / f"stories/{ratify}.html").read_text(encoding="utf-8")
    assert "Earlier in this story" in page and f"{deal}.html" in page
    # Storylines are never related links: those are the source articles only.
    assert all("/stories/" not in x.href for x in middle.links if x.rel == "related")
    assert not [t for t in entries[atom_id(orchard)].tags if t.scheme == scheme]
    feed = json.loads((config.out_dir / "balanced.json").read_text(encoding="utf-8"))
    item = next(i for i in feed["items"] if i["id"] == atom_id(fares))
    line = item["_balanced_news"]["storyline"]
    assert line["id"] == deal and [e["id"] for e in line["earlier"]] == [
        atom_id(deal),
        atom_id(ratify),
    ]
    ids = set(entries)
    Pipeline(config).run_cycle()
    assert ids <= set(stories_of(report.feed_path))  # nothing published changes id


def commentary_stories(config: Config) -> dict[int, str | None]:
    """The commentary fixture's entries, by the id in their page's link, and the story of each."""
    with Pipeline(config).session() as s:
        return {
            int(e.link.rsplit("/", 1)[-1].removesuffix(".html")): e.story_id
            for e in s.scalars(select(EntryRow).where(EntryRow.link.contains("/commentary-")))
        }


def test_an_opinion_piece_two_days_after_the_event_naming_its_people_joins_the_event(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A column published two days after a harbor fine, arguing in its own words and naming
    the fine's people, company and sum further on, is one entry with the fine's news (its
    page among the entry's sources); the next day's dredging plan, which it mentions in
    passing, stays an entry of its own."""
    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "commentary"))
    report = Pipeline(config).run_cycle()
    assert report.failed == []
    story_of = commentary_stories(config)
    gold = gold_stories("commentary")
    assert set(story_of) == set(gold)
    fine = {story_of[e] for e, g in gold.items() if g == "fine"}
    dredge = {story_of[e] for e, g in gold.items() if g == "dredge"}
    assert len(fine) == 1 and len(dredge) == 1 and fine != dredge
    (fine_id,) = fine
    entry = stories_of(report.feed_path)[atom_id(fine_id)]
    related = [x.href for x in entry.links if x.rel == "related"]
    assert any(href.endswith("/commentary-delta/406.html") for href in related), related


def test_a_column_a_news_outlet_files_under_opinion_is_grouped_and_shown_as_opinion(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A news source's feed carries its columns too. The fine's column, from a news source
    that files it under /opinion/, is an opinion piece to every stage (``vocab.article_kind``):
    it joins the fine's news two days on, as from an opinion source, and the story shows it
    marked as opinion. Filed among the news, the same text is news to us, and stays apart."""
    column = 406

    def grouped(name: str, section: str) -> tuple[bool, str]:
        (tmp_path / name).mkdir()
        changed = {column: {"kind": "news", "section": section}}
        extra = serve_as_outlets(web, "commentary", changes=changed)
        config = make_config(web, tmp_path / name, extra=extra)
        assert Pipeline(config).run_cycle().failed == []
        story_of = commentary_stories(config)
        page = (config.out_dir / "stories" / f"{story_of[column]}.html").read_text("utf-8")
        return story_of[column] == story_of[401], page

    joined, page = grouped("opinion-section", "opinion")
    assert joined and "Opinion:" in page
    joined, page = grouped("news-section", "news")
    assert not joined and "Opinion:" not in page


def test_a_side_missing_from_a_story_joins_it_when_the_pair_model_is_confident_enough(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A water main bursts: a centre and a right-leaning outlet report it alike; a
    left-leaning outlet tells it hours later through the tenants left without water and the
    council's delays (tests/fixtures/stories/side-join.json). The pair model gives the left
    report less than its join threshold for the story, but more than the side-completion
    threshold (``cluster.index.SIDE_JOIN``), and the story has no left-leaning outlet: it
    joins. One entry with all three reports, no "not covered" claim and no related angle for
    the left, and no blindspot entry; the library strike only the left covered still is one."""
    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "side-join"))
    report = Pipeline(config).run_cycle()
    assert report.failed == []
    with Pipeline(config).session() as s:
        rows = {
            int(e.link.rsplit("/", 1)[-1].removesuffix(".html")): e
            for e in s.scalars(select(EntryRow).where(EntryRow.link.contains("/side-join-")))
        }
    story_of = {number: row.story_id for number, row in rows.items()}
    assert set(story_of) == set(gold_stories("side-join"))
    # Without the side-completion join the left report would be split: below the join
    # threshold, above the side-completion one (else this tests nothing).
    index = cluster.StoryIndex(side_join=1.01)
    found = None
    for number in (701, 702, 704, 703):  # in published order
        row = rows[number]
        found = index.add(
            ClusterArticle(number, row.source_id, row.title, row.text or "", row.published_at)
        )
    assert found is not None and found.opened
    assert cluster.index.SIDE_JOIN <= found.score < index.threshold, found.score

    assert story_of[701] == story_of[702] == story_of[703] != story_of[704]
    entries = stories_of(report.feed_path)
    water, strike = entries[atom_id(story_of[701])], entries[atom_id(story_of[704])]
    related = {x.href.rsplit("/", 1)[-1] for x in water.links if x.rel == "related"}
    assert related == {"701.html", "702.html", "703.html"}
    content = water.content[0].value
    assert "outlet has covered this story yet" not in content
    assert 'class="related-angle"' not in content
    assert "Harbor Progressive" in content
    # Which of the two happened is said: the left report was joined, on a weaker match, in
    # the entry, on the story page and in the JSON Feed; only that entry is marked so.
    assert {n for n, row in rows.items() if row.side_join} == {703}
    page = lxml_html.fragment_fromstring(content, create_parent="div")
    (joined,) = page.xpath(".//section[@class='progressive']/p[@class='side-join']")
    assert [a.get("href") for a in joined.iter("a")] == [rows[703].link]
    assert "joined to this story by the search for left-leaning coverage" in joined.text_content()
    story_page = (config.out_dir / "stories" / water.link.rsplit("/", 1)[-1]).read_text()
    assert 'class="side-join"' in story_page
    items = {
        i["id"]: i for i in json.loads((config.out_dir / "balanced.json").read_text())["items"]
    }
    (note,) = items[water.id]["_balanced_news"]["coverage"]
    assert (note["note"], note["side"], note["outlet"], note["url"]) == (
        "side_join",
        "left",
        "Harbor Progressive",
        rows[703].link,
    )
    blind = stories_of(config.out_dir / "blindspot.atom")
    assert water.id not in blind
    assert strike.id in blind
    assert "No right-leaning outlet has covered this story yet." in strike.content[0].value

    # Another cycle: the same entries under the same ids, every article still linked.
    ids = {e.id: {x.href for x in e.links if x.rel == "related"} for e in entries.values()}
    Pipeline(config).run_cycle()
    again = stories_of(report.feed_path)
    assert {e.id: {x.href for x in e.links if x.rel == "related"} for e in again.values()} == ids


@needs_embeddings
def test_with_embeddings_on_the_pipeline_groups_with_the_sentence_model(config: Config) -> None:
    """``[grouping] embeddings = true``: the story index gets the embedder and the embedding
    pair model. It groups the fixture into its events as the lexical model does
    (tests/fixtures/site-events.json): the bridge closure (news and opinion over two days) is
    one entry; Thursday's hearing on the water cuts approved a day earlier is the next event,
    an entry of its own in the cuts' storyline; the tax story apart."""
    config = replace(config, grouping=GroupingSettings(embeddings=True))
    pipeline = Pipeline(config)
    report = pipeline.run_cycle()
    assert report.failed == []
    kept = pipeline.grouping.kept_index
    assert kept is not None and kept.index.embedder is not None
    assert kept.index.model.features[-len(cluster.EMBEDDING_FEATURES) :] == (
        cluster.EMBEDDING_FEATURES
    )
    members = [m for story in kept.index.stories.values() for m in story.members]
    assert members and all(m.embedding is not None for m in members)
    story_of = stories_by_event(pipeline)
    with pipeline.session() as s:
        line_of = {row.id: row.storyline_id for row in s.scalars(select(StoryRow))}
    for first, *later in STORYLINES:
        assert {line_of[story_of[event]] for event in (first, *later)} == {story_of[first]}


# The stages in the order data flows through them; each pipeline step runs one (polling runs
# fetch and parse together). A stage may use an earlier stage, never a later one.
STAGES = ("fetch", "parse", "extract", "identity", "related", "cluster", "rewrite", "publish")
STEPS = {"fetching": "parse", "extracting": "extract", "grouping": "cluster"}
STEPS |= {"rewriting": "rewrite", "publishing": "publish"}


def test_no_stage_imports_a_later_stage() -> None:
    """Data flows one way (fetch -> parse -> extract -> dedupe/cluster -> rewrite -> publish):
    a stage that imported a later one (the rewrite step called publishing's renderer before
    c2d8700, and its link check and blindspot rule after) puts a later concern in an earlier
    room. Where an earlier stage must agree with a later one, the pipeline passes the rule in
    (the rewrite step's ``usable_link``, publishing's link check)."""
    package = Path(__file__).resolve().parents[1] / "aggregator"
    later = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        stage = parts[0] if parts[0] in STAGES else None
        if parts[0] == "pipeline" and len(parts) > 1:
            stage = STEPS.get(parts[1])
        if stage is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                top = name.split(".")[:2]
                used = top[1] if top[0] == "aggregator" and len(top) == 2 else ""
                if used in STAGES and STAGES.index(used) > STAGES.index(stage):
                    later.append(f"{path.relative_to(package)} ({stage}) imports {name}")
    assert later == []


MODULE_LINES = 600  # issue 21: a module past this holds several concerns; split it by concern


def test_no_module_is_over_600_lines() -> None:
    """Each concern has a room of its own: no module under ``aggregator/`` grows past
    :data:`MODULE_LINES` (ruff's C901 holds functions to one job the same way)."""
    package = Path(__file__).resolve().parents[1] / "aggregator"
    sizes = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert sizes and {name: n for name, n in sizes.items() if n > MODULE_LINES} == {}
