"""Article pages are fetched politely: robots.txt per host, a per-host delay, and paywalls
detected so the story says the outlet's text was unavailable."""

from __future__ import annotations

import html
import time
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
from sqlalchemy import select

from aggregator.demo import SampleWeb
from aggregator.extract import paywall_marker
from aggregator.fetch import Fetcher
from aggregator.pipeline import Pipeline
from aggregator.robots import HostPacer, Robots
from aggregator.store.schema import EntryRow
from tests.conftest import FIXTURES, make_config, respond

PAYWALLED = (FIXTURES / "pages" / "paywalled.html").read_bytes()


def article_paths(pipeline: Pipeline, source_id: str) -> list[str]:
    with pipeline.session() as s:
        links = s.scalars(select(EntryRow.link).where(EntryRow.source_id == source_id))
        return [urlsplit(link).path for link in links if link]


def test_robots_rules_are_read_once_per_host(web: SampleWeb) -> None:
    web.routes["/robots.txt"] = respond(
        200,
        b"User-agent: balanced-news\nDisallow: /alpha/articles/\nCrawl-delay: 2\n\n"
        b"User-agent: *\nDisallow: /\n",
    )
    with Fetcher(allow_private_hosts=True) as fetcher:
        rules = Robots(lambda url: fetcher.get(url))
        assert not rules.allowed(web.url("alpha/articles/x.html"))
        assert rules.allowed(web.url("beta/articles/y.html"))
        assert rules.crawl_delay(web.url("beta/")) == 2.0
    assert len(web.seen("/robots.txt")) == 1


def test_missing_robots_allows_and_a_broken_one_forbids(web: SampleWeb) -> None:
    with Fetcher(allow_private_hosts=True) as fetcher:
        assert Robots(lambda url: fetcher.get(url)).allowed(web.url("a.html"))  # 404
        web.routes["/robots.txt"] = respond(503, b"down")
        assert not Robots(lambda url: fetcher.get(url)).allowed(web.url("a.html"))


def test_pacer_spaces_requests_to_one_host_only() -> None:
    pacer = HostPacer(0.2)
    started = time.monotonic()
    pacer.wait("http://a.example/1")
    pacer.wait("http://b.example/1")
    assert time.monotonic() - started < 0.2, "a different host does not wait"
    pacer.wait("http://a.example/2")
    assert time.monotonic() - started >= 0.2, "the same host waits its turn"


def test_paywall_markers() -> None:
    assert paywall_marker(PAYWALLED) == "page marked isAccessibleForFree: false"
    page = b"<p>You have reached your limit of free articles.</p>"
    assert paywall_marker(page) == "paywall notice ('you have reached your limit of free articles')"
    newsletter = (FIXTURES / "site" / "beta" / "articles").glob("*.html")
    assert all(paywall_marker(p.read_bytes()) is None for p in newsletter)


def test_disallowed_and_paywalled_pages_reach_the_story(web: SampleWeb, tmp_path: Path) -> None:
    web.routes["/robots.txt"] = respond(200, b"User-agent: *\nDisallow: /beta/articles/\n")
    config = make_config(web, tmp_path)
    pipeline = Pipeline(config)
    pipeline.poll()
    (paywalled_path, *_rest) = article_paths(pipeline, "alpha")
    web.routes[paywalled_path] = respond(200, PAYWALLED, "text/html; charset=utf-8")
    report = pipeline.run_cycle()
    assert report.feed_path is not None
    beta = article_paths(pipeline, "beta")
    assert beta and all(web.seen(p) == [] for p in beta), "robots.txt is obeyed"
    with pipeline.session() as s:
        rows = {urlsplit(e.link).path: e for e in s.scalars(select(EntryRow)) if e.link}
    assert rows[paywalled_path].text_available is False
    assert (rows[paywalled_path].extract_error or "").startswith("paywalled: ")
    assert all(rows[p].extract_error == "robots.txt disallows fetching this page" for p in beta)
    assert all(e.text_available for p, e in rows.items() if p != paywalled_path and p not in beta)
    feed = feedparser.parse(report.feed_path.read_bytes())
    notes = [
        html.unescape(e.content[0].value) for e in feed.entries if "Alpha Times" in str(e.links)
    ]
    assert any("Alpha Times's text was not available" in n for n in notes)
