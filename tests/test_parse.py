"""Feeds to normalized entries: identity, UTC times, text, image; clear errors for non-feeds."""

from __future__ import annotations

import functools
import pydoc
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from aggregator import parse as parse_module
from aggregator.demo import SampleWeb
from aggregator.parse import entry_key, parse_feed, strip_html
from aggregator.pipeline.parsing import ParserPool
from aggregator.text import CAPTION_CHARS
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"


@pytest.mark.parametrize(
    "path", ["alpha/rss.xml", "beta/atom.xml", "gamma/feed.xml", "delta/rss.xml"]
)
def test_fixture_feeds_normalize(web: SampleWeb, path: str) -> None:
    parsed = parse_feed(web.body(path) or b"", url=web.url(path))
    assert parsed.error is None and parsed.entries
    for entry in parsed.entries:
        assert entry.key and entry.title and entry.link
        assert entry.link.startswith(web.base + "/")
        assert entry.published is not None and entry.published.tzinfo == UTC
        assert entry.summary or entry.content


def test_wordpress_feed_gives_full_content_and_image(web: SampleWeb) -> None:
    parsed = parse_feed(web.body("gamma/feed.xml") or b"")
    entry = parsed.entries[0]
    assert entry.content and "<p>" in entry.content
    assert len(entry.content) > len(entry.summary or "")
    assert entry.image and entry.image.startswith(web.base)


def test_identity_times_and_duplicates() -> None:
    parsed = parse_feed((FEEDS / "dup-guid.xml").read_bytes())
    keys = [e.key for e in parsed.entries]
    assert keys[:2] == ["dup-1", "https://dup.example/no-guid"]
    assert keys[2].startswith("sha256:") and len(keys) == 3, "the same guid twice is kept once"
    first = parsed.entries[0]
    assert first.title == "Council approves budget"  # the first copy wins
    assert first.published == datetime(2026, 11, 24, 19, 30, tzinfo=UTC)
    assert strip_html(first.summary) == "The council approved the budget & the levy."
    assert parsed.entries[1].image == "https://dup.example/img/a.jpg"


CAPTIONS = {  # media-captions.xml: each item's picture and its caption, as a reader sees them
    "ridgeback.jpg": "Firefighters hold the line above Ridgeback Road & the reservoir.",
    "ferry.jpg": "The morning ferry leaves Pier 4",  # media:title when there is no description
    "market-large.jpg": "Stallholders set out produce in the restored hall.",  # the group's
    "school-board-thumb.jpg": "Board members listen to parents at Tuesday's meeting.",
    "seals.jpg": None,  # the video's description is the video's, not the picture's
    "library.jpg": None,  # an RSS enclosure has no caption
}


@pytest.mark.parametrize("loose", [False, True], ids=["well-formed", "loose parser"])
def test_a_pictures_caption_comes_from_its_media_description_or_title(loose: bool) -> None:
    """media:description (else media:title) of the picture's own media:content, else of the
    entry (a media:group's), as plain text: markup dropped, entities decoded once, space
    folded. feedparser's loose parser (an ill-formed feed) gives the same captions."""
    data = (FEEDS / "media-captions.xml").read_bytes()
    if loose:  # an entity XML does not define: feedparser falls back to its loose parser
        data = data.replace(b"<title>Lantern Courier", b"<title>Lantern&nbsp;Courier", 1)
    parsed = parse_feed(data, url="https://lantern.example/rss", content_type="application/xml")
    assert (parsed.warning is not None) == loose and parsed.error is None
    found = {(e.image or "").rsplit("/", 1)[-1]: e.image_caption for e in parsed.entries}
    assert found == CAPTIONS
    atom = parse_feed((FEEDS / "media-captions.atom").read_bytes()).entries
    assert [(e.image, e.image_caption) for e in atom] == [
        (
            "https://lantern.example/img/night-market.jpg",
            "Lanterns over the night market on Quay Street",  # an Atom enclosure's title
        )
    ]


def test_a_long_caption_is_cut_at_a_word_and_control_characters_go() -> None:
    long = " ".join(["Volunteers\u0007 stack sandbags\u200b along the levee"] * 20)
    doc = (
        (FEEDS / "media-captions.xml")
        .read_bytes()
        .replace(b"The morning ferry leaves Pier 4", long.encode())
    )
    [caption] = [e.image_caption for e in parse_feed(doc).entries if "ferry" in (e.image or "")]
    assert caption is not None and caption.endswith("\u2026") and len(caption) <= CAPTION_CHARS
    assert caption.startswith("Volunteers stack sandbags along the levee Volunteers")
    assert "\u0007" not in caption and "\u200b" not in caption and "  " not in caption


def test_identity_is_stable() -> None:
    assert entry_key(" g ", "https://x/", "t", "s") == "g"
    assert entry_key(None, "https://x/", "t", "s") == "https://x/"
    assert entry_key(None, None, "t", "s") == entry_key("", "", "t", "s")
    assert entry_key(None, None, "t", "s") != entry_key(None, None, "t", "other")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("feeds/empty.xml", "empty response (no feed document)"),
        ("feeds/not-a-feed.html", "not an RSS or Atom feed"),
        ("site/broken/invalid.xml", "invalid feed: "),
    ],
)
def test_non_feeds_give_one_clear_error(source: str, error: str) -> None:
    parsed = parse_feed((FIXTURES / source).read_bytes())
    assert parsed.entries == ()
    assert parsed.error is not None and parsed.error.startswith(error)
    assert "\n" not in parsed.error


def test_strip_html_drops_scripts_styles_and_comments() -> None:
    # feedparser's sanitizer is off (publish sanitizes), so text extraction must not keep them.
    value = "<p>Kept <b>text</b></p><script>track('x')</script><style>p{}</style><!-- c -->end"
    assert strip_html(value) == "Kept text end"


def test_remembered_base_uris_resolve_as_feedparser_does() -> None:
    """The memoized base-URI join gives feedparser's own answers, unsafe schemes included,
    and a document parsed twice (answers then come from memory) reads the same; feedparser's
    own join is back once the scope ends."""
    import feedparser.mixin

    with parse_module.memoized_base_uris():
        join = feedparser.mixin.make_safe_absolute_uri
        original = join.__wrapped__
        for base, rel in [
            ("http://a.example/feed/rss.xml", "../news/1"),
            ("http://a.example/feed/rss.xml", "javascript:alert(1)"),
            ("http://a.example/feed/", "http://a.example/feed/"),
            ("", "/relative"),
            ("http://a.example/", None),
        ]:
            assert join(base, rel) == join(base, rel) == original(base, rel)
        doc = (
            b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>"
            b"<item><title>One</title><link>/news/1</link><guid>/news/1</guid></item>"
            b"<item xml:base='http://b.example/sub/'><title>Two</title><link>2</link></item>"
            b"</channel></rss>"
        )
        first = parse_feed(doc, url="http://a.example/feed/rss.xml")
        assert feedparser.mixin.make_safe_absolute_uri is join, "an inner scope keeps it"
    assert feedparser.mixin.make_safe_absolute_uri is original
    assert [e.link for e in first.entries] == [
        "http://a.example/news/1",
        "http://b.example/sub/2",
    ]
    assert first.entries[0].key == "http://a.example/news/1"
    assert parse_feed(doc, url="http://a.example/feed/rss.xml") == first


def test_only_the_parser_workers_keep_feedparser_memoized() -> None:
    """Importing the parser (and the pipeline) patches nothing in feedparser; a parser worker
    process memoizes its own feedparser's join for its whole life."""
    code = (
        "import feedparser.mixin as m\n"
        "before = m.make_safe_absolute_uri\n"
        "import aggregator.parse, aggregator.pipeline\n"
        "assert m.make_safe_absolute_uri is before, 'importing patched feedparser'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    wrapped = "feedparser.mixin.make_safe_absolute_uri.__wrapped__.__name__"
    with ParserPool(1) as pool:
        found = pool.run(functools.partial(pydoc.locate, wrapped))  # type: ignore[arg-type]
    assert found == "make_safe_absolute_uri"
    assert pydoc.locate(wrapped) is None, "not in this process"


def _many_items(n: int) -> bytes:
    items = "".join(
        f"<item><guid>g{i}</guid><link>https://example.invalid/{i}</link>"
        f"<title>Item {i}</title><description>&lt;p&gt;Text {i}&lt;/p&gt;</description></item>"
        for i in range(n)
    )
    return f"<rss version='2.0'><channel><title>T</title>{items}</channel></rss>".encode()


def test_a_document_over_its_deadline_ends_its_parser_process() -> None:
    """feedparser reads every item before our entry cap applies: a document it would chew on
    for many seconds is given up at its deadline by ending the worker process parsing it (no
    alarm: this process sets no signal handler), and the next document gets a fresh worker."""
    document = _many_items(60_000)  # made before the clock starts: only the parse counts
    with ParserPool(1) as pool:
        pool.start()
        (first,) = pool.pids()
        started = time.monotonic()
        parsed = pool.run(functools.partial(parse_feed, document, max_entries=5), deadline=0.2)
        assert time.monotonic() - started < 30, "given up, not parsed to the end"
        assert parsed.error == "the feed took over 0.2 s to parse (parse_timeout); skipped"
        assert parsed.entries == ()
        assert pool.pids() == [], "the worker that overran is gone"
        small = pool.run(functools.partial(parse_feed, _many_items(3)), deadline=30)
        assert [e.title for e in small.entries] == ["Item 0", "Item 1", "Item 2"]
        assert len(pool.pids()) == 1 and first not in pool.pids()
    assert pool.pids() == [], "closing the pool ends its workers"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


# --- the RSS fast path (aggregator/fastfeed.py): feedparser's result or no answer ---------------

RSS_TYPE = "application/rss+xml"
DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'


def rss(items: str, channel: str = "<title>Desk</title>", root: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {root}><channel>'
        f"{channel}{items}</channel></rss>"
    ).encode()


def item(*parts: str) -> str:
    return f"<item>{''.join(parts)}</item>"


PLAIN = (
    "<title>Council weighs plan</title><link>https://a.example/news/1</link>"
    "<guid isPermaLink='true'>https://a.example/news/1</guid>"
    "<pubDate>Tue, 03 Nov 2026 14:00:00 GMT</pubDate><author>desk@a.example (Desk)</author>"
    "<category>Local</category><description>&lt;p&gt;The council met.&lt;/p&gt;</description>"
)
# Documents the fast path reads: each must give exactly what feedparser gives.
FAST = {
    "plain": rss(item(PLAIN) * 1 + item(PLAIN.replace("news/1", "news/2"))),
    "relative links": rss(
        item("<title>A</title><link>/news/1?a=1&amp;b=2</link><guid>/g/1</guid>")
    ),
    "guid not a permalink": rss(item("<title>A</title><guid isPermaLink='false'>/x-1</guid>")),
    "guid as the link": rss(item("<guid>https://a.example/g/2</guid><title>A</title>")),
    "link after guid": rss(
        item("<guid>https://a.example/g</guid><link>https://a.example/l</link>")
    ),
    "doubly encoded utf-8": rss(item("<title>caf\u00c3\u00a9 cr\u00c3\u00a8me</title>")),
    "cp1252 code points": rss(item("<description>don&#146;t &#150; ok</description>")),
    "unicode kept": rss(item("<title>Zoë — “quoted” 東京</title>")),
    "whitespace and cdata": rss(
        item(
            "<title>\n  Spaced  \n</title><description><![CDATA[<p>Hi <b>there</b></p>]]>"
            "</description>"
        )
    ),
    "dates feedparser reads its way": rss(
        item("<title>A</title><pubDate>Tue, 10 Jun 2003 04:00:00 EST</pubDate>")
        + item("<title>B</title><pubDate>2003-06-10T04:00:00Z</pubDate>")
        + item("<title>C</title><pubDate>next tuesday</pubDate>")
        + item("<title>D</title><pubDate></pubDate>")
    ),
    "creator and an image enclosure": rss(
        item(
            "<title>A</title><dc:creator>Ann Lee</dc:creator>",
            "<enclosure url='https://a.example/a.mp3' type='audio/mpeg' length='1'/>",
            "<enclosure url='https://a.example/a.jpg' type='IMAGE/JPEG' length='2'/>",
        ),
        root=DC,
    ),
    "no title, no link: identity from the text": rss(item("<description>Only text</description>")),
    "channel image, ttl, self link": rss(
        item("<title>A</title>"),
        channel="<title>Desk &amp; Co</title><ttl> 45 </ttl><image><url>/i.png</url>"
        "<title>Logo</title><link>/</link></image>"
        '<atom:link href="/feed" rel="self" type="application/rss+xml"/>',
        root='xmlns:atom="http://www.w3.org/2005/Atom"',
    ),
    "no entries": rss(""),
}
# Documents it leaves to feedparser (each also checked: the same answer either way).
SLOW = {
    "a repeated title": rss(item("<title>A</title><title>B</title>")),
    "markup inside a description": rss(item("<description><p>raw <b>html</b></p></description>")),
    "xml:base": rss(item("<title xml:base='http://b.example/'>A</title><link>x</link>")),
    "a media element": rss(
        item("<title>A</title><media:content url='https://a.example/m.jpg' medium='image'/>"),
        root='xmlns:media="http://search.yahoo.com/mrss/"',
    ),
    "a doctype": b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd">'
    + rss(item("<title>A</title>"))[38:],
    "another encoding": rss(item("<title>A</title>")).replace(b"utf-8", b"iso-8859-1", 1),
    "an empty link": rss(item("<title>A</title><link></link><guid>https://a.example/g</guid>")),
    "an unknown element": rss(item("<title>A</title><source url='https://s.example/'>S</source>")),
    "rss 0.91": rss(item("<title>A</title>")).replace(b'version="2.0"', b'version="0.91"'),
    "atom": (FEEDS.parent / "site" / "beta" / "atom.xml").read_bytes(),
    "not well-formed": rss(item("<title>A & B</title>")),
}


@pytest.mark.parametrize("name", FAST)
def test_the_fast_path_gives_feedparsers_result(name: str) -> None:
    from aggregator import fastfeed

    data = FAST[name]
    assert fastfeed.parse(data, "http://a.example/feed.xml", RSS_TYPE) is not None
    fast = parse_feed(data, url="http://a.example/feed.xml", content_type=RSS_TYPE)
    slow = parse_feed(data, url="http://a.example/feed.xml", content_type=RSS_TYPE, fast=False)
    assert fast == slow


@pytest.mark.parametrize("name", SLOW)
def test_the_fast_path_leaves_the_rest_to_feedparser(name: str) -> None:
    from aggregator import fastfeed

    data = SLOW[name]
    assert fastfeed.parse(data, "http://a.example/feed.xml", RSS_TYPE) is None
    fast = parse_feed(data, url="http://a.example/feed.xml", content_type=RSS_TYPE)
    slow = parse_feed(data, url="http://a.example/feed.xml", content_type=RSS_TYPE, fast=False)
    assert fast == slow


@pytest.mark.parametrize("content_type", [None, "text/xml", "application/rss+xml; charset=latin-1"])
def test_the_fast_path_needs_a_utf8_xml_content_type(content_type: str | None) -> None:
    """feedparser warns of a missing or text/xml content type, or decodes another charset."""
    from aggregator import fastfeed

    data = FAST["plain"]
    assert fastfeed.parse(data, "", content_type) is None
    assert parse_feed(data, content_type=content_type) == parse_feed(
        data, content_type=content_type, fast=False
    )


def test_every_fixture_feed_parses_the_same_either_way(web: SampleWeb) -> None:
    from aggregator.demo import SITE

    paths = [*FIXTURES.rglob("*.xml"), *SITE.rglob("*.xml")]
    taken = 0
    for path in paths:
        data = path.read_bytes()
        for kind in (RSS_TYPE, "application/xml"):
            fast = parse_feed(data, url="http://a.example/feed.xml", content_type=kind)
            slow = parse_feed(data, url="http://a.example/feed.xml", content_type=kind, fast=False)
            assert fast == slow, path
        from aggregator import fastfeed

        taken += fastfeed.parse(data, "http://a.example/feed.xml", RSS_TYPE) is not None
    assert taken >= 5  # the plain RSS fixtures went the fast way
