"""Every real-world feed in ../shared/fixtures/feeds/ (broken and oddly encoded feeds from
feedparser's test suite) through ingestion: no crash, and a clear result for each source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.store.schema import EntryRow
from tests.conftest import SHARED, extra_source, make_config, respond

FEEDS = SHARED / "fixtures" / "feeds"
_HEADER = re.compile(rb"Header:\s*Content-type:\s*([^\r\n]+)", re.IGNORECASE)


def test_every_shared_feed_gets_a_clear_result(web: SampleWeb, tmp_path: Path) -> None:
    if not FEEDS.is_dir():
        pytest.skip(f"{FEEDS} not found (../shared is absent outside CI)")
    files = sorted(p for p in FEEDS.rglob("*.xml") if p.is_file())
    assert len(files) > 50
    extra = []
    for n, path in enumerate(files):
        data = path.read_bytes()
        header = _HEADER.search(data)
        content_type = header.group(1).decode("ascii", "replace").strip() if header else ""
        route = f"/shared{n}/feed.xml"
        web.routes[route] = respond(200, data, content_type or "application/octet-stream")
        extra.append(extra_source(web, f"shared{n}", route.lstrip("/")))
    config = make_config(web, tmp_path, extra=tuple(extra), per_host=8)
    pipeline = Pipeline(config)
    results = {r.source_id: r for r in pipeline.poll()}
    assert set(results) == {src.id for src in config.sources}, "one result per source"
    outcomes = {r.outcome for r in results.values()}
    assert outcomes <= {"new", "unchanged", "error"}
    for r in results.values():
        if r.outcome == "error":
            assert r.error and "\n" not in r.error, (r.source_id, r.error)
    fixture_outlets = {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert {results[s].outcome for s in fixture_outlets} == {"new"}
    shared = [results[f"shared{n}"] for n in range(len(files))]
    assert sum(r.outcome == "new" for r in shared) >= 20, "real feeds with items are stored"
    with pipeline.session() as s:
        titles = list(s.scalars(select(EntryRow.title).where(EntryRow.source_id.like("shared%"))))
    assert titles and all(t.strip() for t in titles)
    again = {r.source_id: r for r in pipeline.poll(config.sources)}
    assert sum(r.new_entries for r in again.values()) == 0, "nothing stored twice"
