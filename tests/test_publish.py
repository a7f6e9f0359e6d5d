"""Every output: Atom (schema, RFC 4287 rules, archives), JSON Feed, blindspot, OPML, the site;
sanitization against the XSS corpus, alone and through the real pipeline; atomic writes."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree
from sqlalchemy import select

from aggregator.config import Config, Settings, parse_sources
from aggregator.demo import SampleWeb
from aggregator.models import PublishedStory, RelatedLink, SourceStatus
from aggregator.pipeline import Pipeline
from aggregator.publish import (
    atom_id,
    build_atom,
    clean_html,
    publish_site,
    render_story_html,
    safe_url,
    status_notice,
    story_path,
    write_atomic,
)
from aggregator.publish import story as story_module
from aggregator.publish.files import publish_lock
from aggregator.publish.html import render_index
from aggregator.publish.jsonfeed import build_json_feed
from aggregator.publish.opml import build_opml, parse_opml
from aggregator.publish.prose import worded
from aggregator.rewrite import coverage_of, rewrite_story
from aggregator.store.schema import StoryRow
from tests.conftest import (
    XSS_PAYLOADS,
    active_parts,
    assert_inert,
    assert_valid_atom,
    hostile_outlet,
    make_config,
)
from tests.site_events import CAPTIONS
from tests.stories import story_articles

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def bridge_story() -> PublishedStory:
    articles = story_articles("bridge")
    coverage = coverage_of(articles)
    rewrite = worded(rewrite_story(articles), coverage.first_source)
    return PublishedStory(
        id="c0ffee00-0000-5000-8000-000000000001",
        headline=rewrite.headline,
        summary=rewrite.summary,
        content_html=render_story_html(rewrite, coverage),
        published=coverage.first_published,
        updated=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        leans=coverage.leans,
        related=tuple(RelatedLink(a.link or "", a.source_name, a.lean) for a in articles),
    )


def test_feed_is_schema_valid_with_related_links_and_sections(atom_schema) -> None:
    down = SourceStatus("Fox News", datetime(2026, 11, 28, 10, 5, tzinfo=UTC), "HTTP 500")
    data = build_atom([bridge_story()], Settings(), [down], now=NOW)
    assert_valid_atom(atom_schema, data)
    feed = feedparser.parse(data)
    assert not feed.bozo
    front, story = feed.entries
    assert front.title.startswith("Latest Headlines")
    assert "Port Ellery closes Harbor Bridge" in front.content[0].value
    assert feed.feed.subtitle == Settings().subtitle, "the status is never glued to it"
    status = "1 source is down (Fox News); we are retrying."
    assert f'<p class="status">{status}</p>' in front.content[0].value
    assert "HTTP 500" not in data.decode(), "the error is for the operator, not the readers"
    assert story.id == atom_id("c0ffee00-0000-5000-8000-000000000001")
    related = {link.title: link.href for link in story.links if link.rel == "related"}
    assert related["Beta Daily"] == "http://beta.example/bridge"
    assert len(related) == 4
    html = story.content[0].value
    for section in ("Progressive View", "Conservative View", "Common Ground", "Sources"):
        assert section in html
    assert {t.term for t in story.tags} == {"left", "center", "lean-right", "right"}
    assert story.summary.startswith("Port Ellery will close the Harbor Bridge")


def test_same_input_gives_the_same_bytes() -> None:
    one = build_atom([bridge_story()], Settings(), now=NOW)
    assert one == build_atom([bridge_story()], Settings(), now=datetime(2027, 1, 1, tzinfo=UTC))


def test_status_notice_is_gone_when_all_recover() -> None:
    assert status_notice([]) == ""
    feed = feedparser.parse(build_atom([bridge_story()], Settings(), [], now=NOW))
    assert "Status" not in feed.feed.subtitle
    assert "down" not in feed.entries[0].title


def test_untrusted_text_is_escaped() -> None:
    articles = story_articles("bridge")
    evil = articles[1].__class__(
        **{**articles[1].__dict__, "source_name": "<script>alert(1)</script>"}
    )
    html = render_story_html(rewrite_story([articles[0], evil]), coverage_of([articles[0], evil]))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_write_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "feeds" / "balanced.atom"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):  # the write fails half-way: nothing replaces the old file
        write_atomic(target, None)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["balanced.atom"]
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_a_publish_clears_what_a_killed_one_left_and_waits_for_a_live_one(
    tmp_path: Path,
) -> None:
    """Under the publish lock, temporary files are a dead publisher's (test_crash.py kills
    one for real); a second publisher waits for the first."""
    out = tmp_path / "out"
    (out / "stories").mkdir(parents=True)
    stray = out / "stories" / ".abc.html.k2j4x9.tmp"
    stray.write_bytes(b"<!DOCTYPE html><html><bo")
    left = out / ".write-check.q8w7e6.tmp"  # check_folder's probe, killed before its unlink
    left.write_bytes(b"")
    entered = threading.Event()

    def second() -> None:
        with publish_lock(out):
            entered.set()

    with publish_lock(out) as removed:
        assert removed == 2 and not stray.exists() and not left.exists()
        other = threading.Thread(target=second)
        other.start()
        assert not entered.wait(0.5), "a second publisher waits for the first"
    assert entered.wait(10)
    other.join()


# --- helpers ------------------------------------------------------------------------------------

A = "{http://www.w3.org/2005/Atom}"


def story(n: int, leans: tuple[str, ...] = ("left", "right"), **fields: object) -> PublishedStory:
    """Story ``n``: newer for higher ``n``; its sources' leans are ``leans``."""
    when = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=n)
    base = PublishedStory(
        id=f"00000000-0000-5000-8000-{n:012d}",
        headline=f"Story number {n}",
        summary=f"Summary of story {n}.",
        content_html=f"<p>Body of story {n}.</p>",
        published=when,
        updated=when,
        leans=leans,
        related=tuple(
            RelatedLink(f"http://news{k}.example/{n}", f"Outlet {lean}", lean)
            for k, lean in enumerate(leans)
        ),
    )
    return dataclasses.replace(base, **fields)


def rfc4287_problems(data: bytes) -> list[str]:
    """The RFC 4287 rules RELAX NG cannot express, plus absolute URLs and unique ids."""
    feed = etree.fromstring(data)
    problems = []
    entries = feed.findall(f"{A}entry")
    if feed.find(f"{A}author") is None and not all(
        e.find(f"{A}author") is not None for e in entries
    ):
        problems.append("feed without author has an entry without author")
    for entry in entries:
        alternate = [
            x for x in entry.findall(f"{A}link") if x.get("rel", "alternate") == "alternate"
        ]
        if not alternate and entry.find(f"{A}content") is None:
            problems.append(f"entry {entry.findtext(f'{A}id')} has no alternate link nor content")
    for link in feed.iter(f"{A}link"):
        if safe_url(link.get("href")) is None:
            problems.append(f"link href not absolute http(s): {link.get('href')!r}")
    ids = [e.findtext(f"{A}id") for e in entries]
    if len(ids) != len(set(ids)):
        problems.append("duplicate entry ids")
    return problems


def links(data: bytes, rel: str) -> list[str]:
    return [
        x.get("href") for x in etree.fromstring(data).findall(f"{A}link") if x.get("rel") == rel
    ]


def assert_outputs_inert(out: Path) -> None:
    """No file we published carries anything executable, in any format."""
    for path in sorted(out.rglob("*.atom")):
        data = path.read_bytes()
        assert not feedparser.parse(data).bozo, path
        assert rfc4287_problems(data) == [], path
        for el in etree.fromstring(data).iter(f"{A}content", f"{A}summary", f"{A}title"):
            if el.get("type") == "html":
                assert_inert(el.text or "", f"{path.name} {el.tag}")
    raw = (out / "balanced.json").read_bytes()
    assert b"<" not in raw and b">" not in raw, "JSON Feed writes < and > as \\u escapes"
    for item in json.loads(raw)["items"]:
        assert_inert(item["content_html"], f"balanced.json {item['id']}")
        assert safe_url(item["url"]) == item["url"]
        assert all(safe_url(x["url"]) for x in item["_balanced_news"]["sources"])
    for path in sorted(out.rglob("*.html")):
        assert_inert(path.read_text(encoding="utf-8"), str(path.relative_to(out)), page=True)


# --- sanitization -------------------------------------------------------------------------------


def test_the_corpus_is_big_and_hostile() -> None:
    assert len(XSS_PAYLOADS) >= 50
    # The checker itself sees the danger in the raw payloads (else it would prove nothing).
    dangerous = [p for p in XSS_PAYLOADS if active_parts(p)]
    assert len(dangerous) >= 50


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_sanitizer_leaves_no_payload_active(payload: str) -> None:
    assert_inert(clean_html(payload), payload)
    assert_inert(clean_html(f"<p>before {payload} after</p>"), payload)


def test_sanitizer_keeps_ordinary_markup() -> None:
    html = '<p class="x">A <a href="https://a.example/x">link</a> and <em>emphasis</em>.</p>'
    assert clean_html(html) == (
        '<p class="x">A <a href="https://a.example/x" rel="noopener noreferrer nofollow">link</a>'
        " and <em>emphasis</em>.</p>"
    )
    assert clean_html('<a href="/relative">x</a>') == '<a rel="noopener noreferrer nofollow">x</a>'


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "/relative/path",
        "//no-scheme.example/x",
        "http:no-host",
        "http://[broken",
        "",
        None,
    ],
)
def test_safe_url_refuses_all_but_absolute_http(url: str | None) -> None:
    assert safe_url(url) is None


def test_safe_url_keeps_http_and_https() -> None:
    for url in ("http://a.example/x?y=1#z", "https://b.example/"):
        assert safe_url(url) == url


def test_every_output_escapes_hostile_fields(tmp_path: Path) -> None:
    """Payloads in every field of every story, the settings and the status notice."""
    settings = Settings(
        title=XSS_PAYLOADS[0], subtitle=XSS_PAYLOADS[2], feed_size=30, site_url="http://x.example/"
    )
    stories = [
        story(
            n,
            headline=payload,
            summary=payload,
            content_html=f"<p>{payload}</p>{payload}",
            related=(
                RelatedLink(payload, payload, "left"),
                RelatedLink("javascript:alert(1)", payload, "right"),
                RelatedLink("http://ok.example/a", f"Outlet {payload}", "center"),
            ),
        )
        for n, payload in enumerate(XSS_PAYLOADS)
    ]
    failing = [SourceStatus(XSS_PAYLOADS[3], datetime(2026, 11, 2, tzinfo=UTC), XSS_PAYLOADS[4])]
    _, sources = parse_sources(
        '[[source]]\nid = "x"\nname = "<script>alert(1)</script>"\n'
        'homepage = "http://x.example/"\nfeed = "http://x.example/rss"\nlean = "left"\n'
    )
    stories.sort(key=lambda s: s.updated, reverse=True)
    publish_site(stories, settings, failing, tmp_path, sources, datetime(2026, 11, 28, tzinfo=UTC))
    assert_outputs_inert(tmp_path)
    assert len(list((tmp_path / "archive").glob("*.atom"))) == 2  # 82 stories, 30 per page
    # The payloads are there, as text: escaped, not dropped.
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    feed = feedparser.parse((tmp_path / "balanced.atom").read_bytes())
    assert {e.title for e in feed.entries[1:]} <= set(XSS_PAYLOADS)
    opml = parse_opml((tmp_path / "sources.opml").read_bytes())
    assert opml[0].title == "<script>alert(1)</script>"


def test_hostile_feed_and_pages_through_the_real_pipeline(web: SampleWeb, tmp_path: Path) -> None:
    """The corpus in titles, authors, summaries, content and links of a feed and its pages."""
    config = make_config(web, tmp_path, extra=(hostile_outlet(web),))
    report = Pipeline(config).run_cycle()
    assert report.failed == []
    pages = [p for p, _ in web.requests if p.startswith("/hostile/articles/")]
    assert len(pages) >= len(XSS_PAYLOADS) * 8 // 10, "the hostile pages were fetched"
    out = config.out_dir
    assert_outputs_inert(out)
    # Not vacuous: the hostile outlet's stories are published, payload text shown as text.
    feed = feedparser.parse((out / "balanced.atom").read_bytes())
    hostile = [e for e in feed.entries if any(x.get("title") == "Hostile Wire" for x in e.links)]
    assert hostile
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Quillon zoning board" in index
    assert "&lt;script" in index.lower() and "&lt;img" in index.lower(), "payloads shown as text"


# --- Atom ---------------------------------------------------------------------------------------


def test_every_atom_document_is_valid_and_follows_rfc4287(tmp_path: Path, atom_schema) -> None:
    stories = [story(n, leans=("left",) if n % 3 == 0 else ("left", "right")) for n in range(9)]
    stories.reverse()
    settings = Settings(feed_size=4)
    publish_site(stories, settings, [], tmp_path, (), datetime(2026, 11, 28, tzinfo=UTC))
    documents = sorted(tmp_path.rglob("*.atom"))
    assert [p.relative_to(tmp_path).as_posix() for p in documents] == [
        "archive/1.atom",
        "archive/2.atom",
        "balanced.atom",
        "blindspot.atom",
    ]
    for path in documents:
        data = path.read_bytes()
        assert_valid_atom(atom_schema, data)
        assert rfc4287_problems(data) == []
        assert not feedparser.parse(data).bozo


def test_rfc4287_checker_catches_what_the_schema_cannot() -> None:
    bare = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>'
        b"<updated>2026-01-01T00:00:00Z</updated><entry><id>urn:e</id><title>e</title>"
        b'<updated>2026-01-01T00:00:00Z</updated><link rel="related" href="/x"/></entry></feed>'
    )
    assert len(rfc4287_problems(bare)) == 3


def test_archives_keep_the_main_feed_small_and_every_story_reachable(tmp_path: Path) -> None:
    stories = [story(n) for n in reversed(range(11))]  # newest first
    site = "http://localhost:8000/"
    publish_site(
        stories, Settings(feed_size=4), [], tmp_path, (), datetime(2026, 11, 28, tzinfo=UTC)
    )
    seen: list[str] = []
    data = (tmp_path / "balanced.atom").read_bytes()
    main_entries = feedparser.parse(data).entries[1:]
    assert len(main_entries) == 4
    seen += [e.id for e in main_entries]
    hops = 0
    while prev := links(data, "prev-archive"):
        data = (tmp_path / prev[0].removeprefix(site)).read_bytes()
        doc = etree.fromstring(data)
        assert doc.find("{http://purl.org/syndication/history/1.0}archive") is not None
        assert links(data, "current") == [site + "balanced.atom"]
        seen += [e.id for e in feedparser.parse(data).entries]
        hops += 1
    assert hops == 2
    assert sorted(seen) == sorted(atom_id(s.id) for s in stories), "each story exactly once"
    # The oldest page is full and stays put when a newer story arrives.
    first = (tmp_path / "archive/1.atom").read_bytes()
    publish_site(
        [story(11), *stories],
        Settings(feed_size=4),
        [],
        tmp_path,
        (),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert (tmp_path / "archive/1.atom").read_bytes() == first


def test_entry_updated_moves_only_when_content_changes(web: SampleWeb, tmp_path: Path) -> None:
    full = make_config(web, tmp_path)
    early = dataclasses.replace(full, sources=(full.source("alpha"), full.source("gamma")))
    path = Pipeline(early).run_cycle().feed_path
    assert path is not None
    pipeline = Pipeline(early)
    with pipeline.session.begin() as s:  # an hour passes (feeds carry whole seconds)
        for row in s.scalars(select(StoryRow)):
            row.updated_at -= timedelta(hours=1)
    pipeline.run_cycle()
    before = {e.id: e.updated for e in feedparser.parse(path.read_bytes()).entries[1:]}
    Pipeline(early).run_cycle()  # nothing new: nothing moves
    again = {e.id: e.updated for e in feedparser.parse(path.read_bytes()).entries[1:]}
    assert again == before
    Pipeline(full).run_cycle()  # beta, delta, epsilon join two of the stories
    after = {e.id: e.updated for e in feedparser.parse(path.read_bytes()).entries[1:]}
    assert set(before) <= set(after)
    moved = {i for i in before if after[i] != before[i]}
    assert moved and moved != set(before), "only the stories whose content changed move"


# --- JSON Feed, blindspot, OPML -----------------------------------------------------------------


def test_json_feed_has_the_same_stories_and_ids_as_atom(config: Config) -> None:
    Pipeline(config).run_cycle()
    out = config.out_dir
    atom_ids = [e.id for e in feedparser.parse((out / "balanced.atom").read_bytes()).entries[1:]]
    doc = json.loads((out / "balanced.json").read_bytes())
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["feed_url"] == config.settings.site_url + "balanced.json"
    assert [i["id"] for i in doc["items"]] == atom_ids and len(atom_ids) == 4
    for item in doc["items"]:
        assert item["title"] and item["content_html"] and item["summary"]
        assert datetime.fromisoformat(item["date_modified"]) >= datetime.fromisoformat(
            item["date_published"]
        )
        page = out / urlsplit(item["url"]).path.lstrip("/")
        assert page.is_file(), "each item's url is its published page"


def test_blindspot_feed_has_the_one_sided_stories(config: Config) -> None:
    Pipeline(config).run_cycle()
    feed = feedparser.parse((config.out_dir / "blindspot.atom").read_bytes())
    assert not feed.bozo
    # The Fairhaven tax cut (right only). The Tarrow Valley hearing (left only) is not: the
    # right-leaning report of the cuts it follows is found, a related angle (related.py).
    assert len(feed.entries) == 1
    leans = [{t.term for t in e.tags if t.scheme.endswith("leans")} for e in feed.entries]
    assert leans == [{"right"}]
    stories = [story(1, ("left", "center")), story(2, ("lean-right",)), story(3, ("center",))]
    out = config.out_dir / "unit"
    publish_site(stories, Settings(), [], out, (), datetime(2026, 11, 28, tzinfo=UTC))
    blind = feedparser.parse((out / "blindspot.atom").read_bytes())
    assert sorted(e.title for e in blind.entries) == ["Story number 1", "Story number 2"]


def test_opml_export_round_trips_sources_and_leans(config: Config) -> None:
    data = build_opml(config.sources, config.settings, datetime(2026, 11, 28, tzinfo=UTC))
    feeds = parse_opml(data)
    assert [(f.title, f.feed, f.homepage, f.lean) for f in feeds] == sorted(
        [(s.name, s.feeds[0], s.homepage, s.lean) for s in config.sources],
        key=lambda t: ("left", "lean-left", "center", "lean-right", "right").index(t[3]),
    )


# --- WebSub -------------------------------------------------------------------------------------


def hub_route(pings: list[dict[str, list[str]]], status: int = 204):
    """A loopback WebSub hub: records each publish ping's form fields."""
    from urllib.parse import parse_qs

    def handler(h) -> None:  # noqa: ANN001 - BaseHTTPRequestHandler
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        pings.append(parse_qs(body.decode()))
        h.send_response(status)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def test_feeds_name_the_hub_and_every_publish_pings_it(web: SampleWeb, tmp_path: Path) -> None:
    pings: list[dict[str, list[str]]] = []
    web.routes["/hub"] = hub_route(pings)
    config = make_config(web, tmp_path, hub=web.url("hub"))
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    site = config.settings.site_url
    topics = [site + "balanced.atom", site + "balanced.json", site + "blindspot.atom"]
    assert [p["hub.url"] for p in pings] == [[t] for t in topics]
    assert all(p["hub.mode"] == ["publish"] for p in pings)
    for name in ("balanced.atom", "blindspot.atom"):
        assert links((config.out_dir / name).read_bytes(), "hub") == [web.url("hub")]
    doc = json.loads((config.out_dir / "balanced.json").read_bytes())
    assert doc["hubs"] == [{"type": "WebSub", "url": web.url("hub")}]
    pipeline.publish()
    assert len(pings) == 6, "every publish pings"


def test_a_failing_hub_does_not_stop_publishing(web: SampleWeb, tmp_path: Path, caplog) -> None:
    pings: list[dict[str, list[str]]] = []
    web.routes["/hub"] = hub_route(pings, status=500)
    config = make_config(web, tmp_path, hub=web.url("hub"))
    report = Pipeline(config).run_cycle()
    assert report.feed_path is not None and report.feed_path.is_file()
    assert len(pings) == 3
    assert f"WebSub hub {web.url('hub')}: {config.settings.site_url}balanced.atom: HTTP 500" in (
        caplog.text
    )


def test_no_hub_no_hub_link(config: Config) -> None:
    Pipeline(config).run_cycle()
    assert links((config.out_dir / "balanced.atom").read_bytes(), "hub") == []
    assert "hubs" not in json.loads((config.out_dir / "balanced.json").read_bytes())


def test_a_blindspot_story_carries_the_blindspot_category(atom_schema) -> None:
    both, one_sided = story(1), story(2, leans=("right", "lean-right"))
    data = build_atom([both, one_sided], Settings(), now=NOW)
    assert_valid_atom(atom_schema, data)
    terms = {e.id: {t.term for t in e.tags} for e in feedparser.parse(data).entries[1:]}
    assert "blindspot" not in terms[atom_id(both.id)]
    assert "blindspot" in terms[atom_id(one_sided.id)]


def test_each_page_states_a_storys_coverage_once(tmp_path: Path) -> None:
    """The bar shows the sides; the sourcing line says the counts in words, once per story."""
    story = bridge_story()
    publish_site([story], Settings(), [], tmp_path, (), NOW)
    pages = [tmp_path / "index.html", *(tmp_path / "stories").glob("*.html")]
    assert len(pages) == 2
    for page in pages:
        html = etree.HTML(page.read_bytes())
        text = " ".join(html.xpath("//article")[0].itertext())
        assert text.count(" left, ") == 1, page.name
        bar = html.xpath("//article//*[@class='bar']")[0]
        assert bar.get("aria-label", "").startswith("Coverage: ")


def test_forty_sources_down_is_one_short_public_line() -> None:
    since = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    advice = "refused to fetch x (127.0.0.1): use --allow-private-hosts for local sources"
    down = [SourceStatus(f"Outlet Number {n:02d} Daily", since, advice) for n in range(40)]
    data = build_atom([bridge_story()], Settings(), down, now=NOW, total_sources=44)
    feed = feedparser.parse(data)
    assert feed.feed.subtitle == Settings().subtitle and len(feed.feed.subtitle) < 200
    front = feed.entries[0].content[0].value
    banner = (
        "40 of 44 sources are down (Outlet Number 00 Daily, Outlet Number 01 Daily, "
        "Outlet Number 02 Daily and 37 more); we are retrying."
    )
    assert f'<p class="status">{banner}</p>' in front
    assert front.count('class="status"') == 1 and "\n" not in banner
    assert "allow-private-hosts" not in data.decode()
    assert "Outlet Number 03" not in data.decode()
    assert feed.entries[0].title == "Latest Headlines (some sources are down)"
    page = render_index([], Settings(), down, 44).decode()
    assert page.count(banner) == 1 and "allow-private-hosts" not in page
    jf = json.loads(build_json_feed([bridge_story()], Settings(), down, None, 44))
    assert jf["description"] == Settings().subtitle
    assert jf["_balanced_news_status"]["notice"] == banner


def test_every_source_down_is_a_state_of_its_own() -> None:
    since = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    down = [SourceStatus(f"Outlet {n}", since, "HTTP 503") for n in range(44)]
    assert status_notice(down, 44) == "Every source is down (all 44); we are retrying."
    assert status_notice(down[:1], 1) == "Our only source is down; we are retrying."
    assert status_notice(down[:2]) == "2 sources are down (Outlet 0, Outlet 1); we are retrying."
    assert status_notice(down[:1], 44) == "1 of 44 sources is down (Outlet 0); we are retrying."
    feed = feedparser.parse(build_atom([], Settings(), down, now=NOW, total_sources=44))
    assert feed.entries[0].title == "Latest Headlines (every source is down)"


def test_the_source_list_shows_every_linked_article_with_one_set_of_lean_labels() -> None:
    """Two articles from one outlet are both listed, told apart by their titles; the lean
    labels are the same five everywhere (the bar, the coverage line, the list, the feed)."""
    articles = story_articles("fares")
    review = next(a for a in articles if a.source_id == "review")
    second = dataclasses.replace(
        review,
        entry_id=99,
        title="Marlow riders deserve an audit, not a fare hike",
        link="http://review.example/fares-2",
        published=review.published + timedelta(hours=5),
    )
    articles = [*articles, second]
    html = render_story_html(rewrite_story(articles), coverage_of(articles))
    sources = html.split('<ul class="sources">', 1)[1].split("</ul>", 1)[0]
    for a in articles:
        assert f'href="{a.link}"' in sources, a.link
    assert sources.count("<li") == len(articles)
    for title in (review.title, second.title):
        assert f"The Left Review: \u201c{title}\u201d" in sources
    assert "Civic Wire</a> (Center)" in sources and "Bay Gazette</a> (Lean Left)" in sources
    assert "centre" not in html.lower()
    assert "Covered by 2 left, 1 center, 2 right outlets." in html


# --- how each side headlined it -----------------------------------------------------------------

SIDES_IN_ORDER = ("Left", "Center", "Right")


def own_headlines(web: SampleWeb, config: Config) -> dict[str, str]:
    """Each fixture article's own headline as its outlet's feed gives it, by its link (without
    the outlet's name some feeds append: that is the outlet, shown beside it)."""
    titles = {}
    for source in config.sources:
        folder = urlsplit(source.feeds[0]).path.lstrip("/")
        text = web.render((web.root / folder).read_text(encoding="utf-8"))
        for e in feedparser.parse(text).entries:
            title = " ".join(e.title.split())
            for separator in (" | ", " - "):
                title = title.removesuffix(separator + source.name)
            titles[e.link] = title
    return titles


def headlines_by_side(fragment: etree._Element) -> list[tuple[str, list[etree._Element]]]:
    """The "How each side headlined it" groups of a content fragment or page, in order."""
    [by_side] = fragment.xpath("//div[@class='by-side']")
    heading = by_side.getprevious()
    assert heading.text == "How each side headlined it", heading.text
    return [(s.findtext("*[1]"), s.findall("ul/li")) for s in by_side.findall("section")]


def test_each_entry_shows_how_each_side_headlined_it(web: SampleWeb, config: Config) -> None:
    """Every linked article's own headline, with its outlet and lean, under its side, the
    sides Left, Center, Right in that order; an opinion piece marked as one, news not; the
    same in the entry's content and on the story page."""
    Pipeline(config).run_cycle()
    out = config.out_dir
    titles = own_headlines(web, config)
    by_name = {s.name: s for s in config.sources}
    side_of = {"left": "Left", "lean-left": "Left", "center": "Center"}
    side_of |= {"lean-right": "Right", "right": "Right"}
    feed = feedparser.parse((out / "balanced.atom").read_bytes())
    seen_opinion = seen_news = 0
    for entry in feed.entries[1:]:
        related = [x for x in entry.links if x.rel == "related"]
        page = etree.HTML((out / urlsplit(entry.link).path.lstrip("/")).read_bytes())
        content = etree.HTML(entry.content[0].value)
        shown = []
        for fragment in (content, page):
            groups = headlines_by_side(fragment)
            names = [name for name, _ in groups]
            assert names == [n for n in SIDES_IN_ORDER if n in names], entry.title
            shown.append(
                [
                    (n, [etree.tostring(li, encoding="unicode") for li in items])
                    for n, items in groups
                ]
            )
            listed = {
                li.find(".//a").get("href"): (name, li) for name, items in groups for li in items
            }
            assert sorted(listed) == sorted(x.href for x in related), entry.title
            for link in related:
                side, li = listed[link.href]
                source = by_name[link.title]
                assert side == side_of[source.lean], (entry.title, link.href)
                assert li.find(".//a").text == f"\u201c{titles[link.href]}\u201d"
                label = {"lean-left": "Lean Left", "lean-right": "Lean Right"}.get(
                    source.lean, side_of[source.lean]
                )
                assert li.findtext("span[@class='outlet']") == f"{source.name} ({label})"
                marked = li.xpath("span[@class='opinion']/text()")
                assert marked == (["Opinion:"] if source.kind == "opinion" else [])
                seen_opinion += source.kind == "opinion"
                seen_news += source.kind == "news"
        assert shown[0] == shown[1], "the page shows what the entry does"
    assert seen_opinion and seen_news, "the fixture web has both kinds"


# --- lead images --------------------------------------------------------------------------------


def test_each_story_leads_with_an_image_in_every_output(config: Config, atom_schema) -> None:
    """The fixture pages carry og:image: every story shows one of its own articles' images,
    credited to that outlet, in Atom (Media RSS, as feedparser reads it), the JSON Feed and
    the pages; the feeds stay valid."""
    Pipeline(config).run_cycle()
    out = config.out_dir
    data = (out / "balanced.atom").read_bytes()
    assert_valid_atom(atom_schema, data)
    assert rfc4287_problems(data) == []
    feed = feedparser.parse(data)
    assert not feed.bozo and feed.namespaces.get("media") == "http://search.yahoo.com/mrss/"
    items = {i["id"]: i for i in json.loads((out / "balanced.json").read_bytes())["items"]}
    names = {s.name for s in config.sources}
    alts: dict[str, str] = {}
    for entry in feed.entries[1:]:
        [thumb] = entry.media_thumbnail
        assert urlsplit(thumb["url"]).path.endswith(".jpg"), entry.title
        [content] = entry.media_content
        assert content["url"] == thumb["url"] and content["medium"] == "image"
        credit = entry.media_credit[0]["content"]
        assert credit in names
        # The image is one of the credited outlet's own articles' (its folder on the web).
        source = next(s for s in config.sources if s.name == credit)
        assert urlsplit(thumb["url"]).path.startswith(urlsplit(source.homepage).path)
        item = items[entry.id]
        assert item["image"] == thumb["url"]
        assert item["_balanced_news"]["image"]["credit"] == credit
        page = (out / urlsplit(item["url"]).path.lstrip("/")).read_text(encoding="utf-8")
        figure = etree.HTML(page).xpath("//figure[@class='lead-image']")[0]
        img = figure.find("img")
        assert img.get("src") == thumb["url"] and img.get("alt")
        assert img.get("alt") == item["_balanced_news"]["image"]["alt"]
        assert figure.findtext("figcaption") == f"Image: {credit}"
        alts[urlsplit(thumb["url"]).path] = img.get("alt")
        assert content["media_description"] == img.get("alt"), "media:description, the same"
    # The picture's own caption where it has one (Alpha's page's og:image:alt, Gamma's feed's
    # media:description), else its article's own title.
    assert alts == {
        "/alpha/img/tarrow-valley-water-cuts-lake-minden.jpg": (
            "Tarrow Valley orders 30 percent water cuts as Lake Minden shrinks"
        ),
        "/beta/img/tarrow-valley-hearing-lake-minden-cuts.jpg": (
            "Tarrow Valley residents pack hearing on Lake Minden water cuts"
        ),
        **CAPTIONS,
    }
    for path in sorted(out.rglob("*.atom")):
        assert_valid_atom(atom_schema, path.read_bytes())


def test_images_false_leaves_no_image_anywhere(config: Config) -> None:
    off = dataclasses.replace(config, settings=dataclasses.replace(config.settings, images=False))
    Pipeline(off).run_cycle()
    out = off.out_dir
    assert Pipeline(off).published_stories()[0].image is not None, "chosen, and not shown"
    for path in sorted(out.rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "/img/" not in text and "mrss" not in text and "<img" not in text, path
            assert not any(caption in text for caption in CAPTIONS.values()), path
    for item in json.loads((out / "balanced.json").read_bytes())["items"]:
        assert "image" not in item and "image" not in item["_balanced_news"]


def test_an_unsafe_image_address_is_shown_nowhere(tmp_path: Path) -> None:
    from aggregator.models import LeadImage

    bad = story(1, image=LeadImage("javascript:alert(1)", "Outlet left", "x"))
    good = story(2, image=LeadImage("https://img.example/a.jpg", "Outlet left", 'A "quoted" <b>'))
    publish_site([good, bad], Settings(), [], tmp_path, (), NOW)
    everything = b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())
    assert b"javascript:" not in everything
    feed = feedparser.parse((tmp_path / "balanced.atom").read_bytes())
    shown = {e.title: e.get("media_thumbnail") for e in feed.entries[1:]}
    assert shown == {
        "Story number 2": [{"url": "https://img.example/a.jpg"}],
        "Story number 1": None,
    }
    assert_outputs_inert(tmp_path)


# --- following a storyline ----------------------------------------------------------------------


def test_each_storyline_has_its_own_feeds_to_follow(
    web: SampleWeb, tmp_path: Path, atom_schema
) -> None:
    """Every entry of a storyline links the storyline's own feed (an alternate of Atom's type,
    "Follow this story", never related), and so does its page; the feed holds the storyline's
    events, newest first, valid like the main feed, with ids that hold on the next cycle; the
    JSON Feed is its twin. A story on its own has no such feed."""
    from tests.stories import serve_as_outlets

    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "storyline"))
    out, site = config.out_dir, config.settings.site_url
    Pipeline(config).run_cycle()
    scheme = "urn:balanced-news:storyline"
    lines: dict[str, list[str]] = {}
    for entry in feedparser.parse((out / "balanced.atom").read_bytes()).entries[1:]:
        [line] = [t.term for t in entry.tags if t.scheme == scheme] or [None]
        follow = [x for x in entry.links if x.type == "application/atom+xml"]
        assert all("storylines/" not in x.href for x in entry.links if x.rel == "related")
        assert entry.link.endswith(".html"), "the story's page stays its link"
        if line is None:
            assert follow == [], entry.title
            continue
        lines.setdefault(line, []).append(entry.id)
        [link] = follow
        assert (link.rel, link.title) == ("alternate", "Follow this story")
        assert link.href == f"{site}storylines/{line}.atom"
        page = etree.HTML((out / urlsplit(entry.link).path.lstrip("/")).read_bytes())
        [to_follow] = page.xpath("//a[text()='Follow this story']/@href")
        assert to_follow == link.href
        assert f"{site}storylines/{line}.json" in page.xpath("//p[@class='follow']/a/@href")
    assert len(lines) == 2, "the water cuts and their hearing; the strike deal and its sequels"
    assert sorted(p.name for p in (out / "storylines").iterdir()) == sorted(
        f"{line}{suffix}" for line in lines for suffix in (".atom", ".json")
    )
    first: dict[str, bytes] = {}
    for line, ids in lines.items():
        data = (out / f"storylines/{line}.atom").read_bytes()
        first[line] = data
        assert_valid_atom(atom_schema, data)
        assert rfc4287_problems(data) == []
        feed = feedparser.parse(data)
        assert not feed.bozo and feed.feed.id == atom_id(f"storyline:{site}{line}")
        assert links(data, "self") == [f"{site}storylines/{line}.atom"]
        assert [e.id for e in feed.entries] == ids, "every event, newest first, as in the feed"
        doc = json.loads((out / f"storylines/{line}.json").read_bytes())
        assert doc["feed_url"] == f"{site}storylines/{line}.json"
        assert [i["id"] for i in doc["items"]] == ids
        for item in doc["items"]:
            assert item["_balanced_news"]["storyline"]["feed_url"] == doc["feed_url"]
    Pipeline(config).run_cycle()  # nothing new: the same documents, byte for byte
    for line, data in first.items():
        assert (out / f"storylines/{line}.atom").read_bytes() == data


# --- who owns the outlets -----------------------------------------------------------------------


def test_the_story_page_and_json_feed_show_who_owns_each_outlet(
    web: SampleWeb, tmp_path: Path
) -> None:
    """Issue 22: the owners the sources file gives reach the published story as plain data:
    its page lists each outlet's owner and says which outlets share one, the JSON Feed gives
    each source's owner (none where it is not known), and the summary attributes a claim only
    one owner's outlets report (Ridge Courier and Ridge Evening Star are both Harlow Media's)."""
    from tests.stories import serve_as_outlets

    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "owners"))
    Pipeline(config).run_cycle()
    doc = json.loads((config.out_dir / "balanced.json").read_bytes())
    [item] = [
        i
        for i in doc["items"]
        if any(s["outlet"] == "Ridge Courier" for s in i["_balanced_news"]["sources"])
    ]
    owners = {s["outlet"]: s.get("owner") for s in item["_balanced_news"]["sources"]}
    assert owners == {
        "Ridge Courier": "Harlow Media",
        "Ridge Evening Star": "Harlow Media",
        "Valley Herald": None,
    }
    others = [s for i in doc["items"] if i is not item for s in i["_balanced_news"]["sources"]]
    assert others and all("owner" not in s for s in others), "no owner where none is known"
    assert "according to Ridge Courier and Ridge Evening Star." in item["summary"]
    page = etree.HTML((config.out_dir / urlsplit(item["url"]).path.lstrip("/")).read_bytes())
    listed = {"".join(li.itertext()) for li in page.xpath("//ul[@class='sources']/li")}
    assert {
        "Ridge Courier (Center, owned by Harlow Media)",
        "Ridge Evening Star (Right, owned by Harlow Media)",
        "Valley Herald (Left)",
    } <= listed, listed
    [shared] = page.xpath("//p[@class='owners']/text()")
    assert shared.startswith("Ridge Courier and Ridge Evening Star are owned by Harlow Media;")


def test_a_template_change_reaches_every_stored_story_at_the_next_publish(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewrite stage stores data (no HTML); publishing renders it each time, so a change
    to a template (here the "How each side headlined it" heading, as a new version would
    change it) reaches the stories already stored without rewriting them, and their
    ``updated`` time moves, since what readers see changed."""
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    with pipeline.session() as s:
        rows = list(s.scalars(select(StoryRow)))
        assert rows and all(r.rewrite_json and r.content_html is None for r in rows), "data only"
    before = {s.id: s for s in pipeline.published_stories(everything=True)}
    heading = "How each side put it"
    assert not any(heading in s.content_html for s in before.values())
    monkeypatch.setattr(story_module, "HEADLINES_TITLE", heading)
    story_module.forget_rendered()  # a new version runs in a new process: nothing kept
    assert pipeline.rewrite() == 0, "nothing to rewrite: the inputs did not change"
    pipeline.publish()
    after = {s.id: s for s in pipeline.published_stories(everything=True)}
    assert after.keys() == before.keys()
    assert all(heading in s.content_html for s in after.values())
    assert all(after[k].updated > before[k].updated for k in after), "what readers see changed"
    feed = feedparser.parse((config.out_dir / "balanced.atom").read_bytes())
    entries = [e for e in feed.entries if e.id in {atom_id(k) for k in after}]
    assert len(entries) == len(after) and all(heading in e.content[0].value for e in entries)
    for story in after.values():
        page = (config.out_dir / story_path(story.id)).read_text(encoding="utf-8")
        assert heading in page
