"""Article pages to text and metadata, with the site's navigation, ads and footer left out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from aggregator.config import Source
from aggregator.demo import SampleWeb
from aggregator.extract import (
    ExtractionError,
    decode_page,
    extract_article,
    image_caption,
    page_image,
    selected_text,
)
from aggregator.models import StoredEntry
from aggregator.parse import parse_feed
from aggregator.pipeline import Pipeline
from aggregator.store.schema import EntryRow
from tests.conftest import FIXTURES, extra_source, make_config, respond
from tests.site_events import CAPTIONS

BOILERPLATE = ("Advertisement", "newsletter", "cookie", "©", "All rights reserved")


def article_pages() -> list[str]:
    return sorted(
        str(p.relative_to(FIXTURES / "site")) for p in (FIXTURES / "site").glob("*/articles/*.html")
    )


@pytest.mark.parametrize("page", article_pages())
def test_article_text_without_boilerplate(web: SampleWeb, page: str) -> None:
    found = extract_article(web.body(page) or b"", web.url(page))
    assert len(found.text) > 500
    for marker in BOILERPLATE:
        assert marker.lower() not in found.text.lower(), marker
    assert found.title


def test_metadata_matches_the_feed(web: SampleWeb) -> None:
    entry = parse_feed(web.body("alpha/rss.xml") or b"").entries[0]
    assert entry.link is not None
    page = entry.link.removeprefix(web.base + "/")
    found = extract_article(web.body(page) or b"", entry.link)
    assert found.title and found.title.split()[0] in entry.title
    assert found.author and found.date and found.date.startswith("2026-11")
    assert found.image and found.image.startswith(web.base)


def test_a_headline_inside_the_article_markup_is_not_its_first_sentence() -> None:
    """trafilatura keeps an ``<article><h1>``: read as text, the headline would run into the
    lead ("... for repairs The Harbor Bridge will close ...")."""
    page = (FIXTURES / "pages" / "headline-in-article.html").read_bytes()
    found = extract_article(page, "https://post.example/bridge")
    assert found.title == "Harbor Bridge to close for repairs"
    assert found.text.startswith("The Harbor Bridge will close to all traffic")
    assert "for repairs\n" not in found.text


def test_a_lead_that_only_resembles_the_title_is_kept(web: SampleWeb) -> None:
    page = "gamma/articles/fairhaven-county-property-tax-cut.html"
    found = extract_article(web.body(page) or b"", web.url(page))
    assert found.title and found.title.startswith("Fairhaven County commissioners slash")
    assert found.text.startswith("Fairhaven County commissioners voted 3-2 on Thursday")


def test_pages_without_an_article_are_an_error() -> None:
    with pytest.raises(ExtractionError, match="empty page"):
        extract_article(b"  ")
    with pytest.raises(ExtractionError):
        extract_article((FIXTURES / "feeds" / "not-a-feed.html").read_bytes())


# --- charsets: HTTP header, BOM, <meta>, then detection --------------------------------------

CHARSET_PAGES = {  # name: (title, a phrase of the text)
    "windows-1251.html": ("Городской совет утвердил новый бюджет", "против были пятеро"),
    "iso-8859-1.html": ("Le conseil municipal adopte un budget élargi", "si la météo le permet"),
    "shift_jis.html": ("市議会が来年度予算を可決", "川に架かる新しい橋の工事"),
}


@pytest.mark.parametrize("name", sorted(CHARSET_PAGES))
def test_a_charset_declared_only_in_meta_is_read(name: str) -> None:
    title, phrase = CHARSET_PAGES[name]
    found = extract_article((FIXTURES / "pages" / name).read_bytes(), None, "text/html")
    assert found.title == title
    assert phrase in found.text
    assert "\ufffd" not in found.text


def test_a_wrong_http_charset_is_passed_over() -> None:
    body = (FIXTURES / "pages" / "windows-1251.html").read_bytes()
    # The server says UTF-8; the bytes are windows-1251, as the page's <meta> says.
    assert "бюджет" in decode_page(body, "text/html; charset=utf-8")
    # The server's ISO-8859-1 default on a page that is really UTF-8.
    utf8 = body.decode("cp1251").replace("windows-1251", "utf-8").encode("utf-8")
    assert "бюджет" in decode_page(utf8, "text/html; charset=ISO-8859-1")


def test_the_http_header_wins_over_meta_when_the_bytes_agree() -> None:
    text = "<html><head><meta charset='utf-8'></head><body>Привет, мир</body></html>"
    assert "Привет" in decode_page(text.encode("koi8-r"), "text/html; charset=KOI8-R")


def test_a_byte_order_mark_is_read_and_dropped() -> None:
    text = "<html><body>Grüße aus Köln</body></html>"
    assert decode_page(text.encode("utf-16"), None).startswith("<html>")
    assert decode_page(b"\xef\xbb\xbf" + text.encode(), "text/html; charset=latin-1") == text


def test_an_undeclared_charset_is_detected() -> None:
    body = (FIXTURES / "pages" / "windows-1251.html").read_bytes()
    body = body.replace(b'<meta charset="windows-1251">', b"")
    assert b"charset" not in body
    assert "Городской совет утвердил новый бюджет" in decode_page(body, "text/html")


def test_iso_8859_1_is_read_as_windows_1252_as_browsers_do() -> None:
    body = b"<meta charset=iso-8859-1><p>\x93Quoted\x94 \x96 caf\xe9</p>"
    assert "\u201cQuoted\u201d \u2013 café" in decode_page(body)


def test_a_windows_1251_page_over_http_is_read(web: SampleWeb) -> None:
    """The hostile-server case: the header names no charset, only the page's <meta> does."""
    from aggregator.fetch import Fetcher
    from tests.conftest import respond

    body = (FIXTURES / "pages" / "windows-1251.html").read_bytes()
    web.routes["/ru/budget.html"] = respond(200, body, "text/html")
    with Fetcher(allow_private_hosts=True) as fetcher:
        res = fetcher.get(web.url("ru/budget.html"))
    assert res.content is not None
    found = extract_article(res.content, res.final_url, res.content_type)
    assert "Во вторник городской совет" in found.text


def test_an_old_table_layout_page_falls_back_to_recall() -> None:
    """Precision mode finds nothing on it; trafilatura's other modes do."""
    found = extract_article((FIXTURES / "pages" / "table-layout.html").read_bytes())
    assert "faint comet moving slowly against the stars of Hydra" in found.text
    assert "refined before it fades again" in found.text


# --- a source's content rules: hand-written pages trafilatura gets wrong -----------------------

LIBRARY = "kestrel/stories/millbrook-library-reopens.html"  # body in a table, an <article> beside
BAKERY = "kestrel/stories/orchard-street-bakery-award.html"  # a newsletter box inside the body
LIBRARY_BODY = "volunteers had spent the winter drying and sorting the local history papers"
NEWSLETTER = "Get the day's local stories in your inbox every weekday at six"


def kestrel(web: SampleWeb, **rules: object) -> Source:
    return dataclasses.replace(extra_source(web, "kestrel", "kestrel/rss.xml"), **rules)


def extracted_texts(web: SampleWeb, tmp_path: Path, source: Source) -> dict[str, StoredEntry]:
    """The source polled and its pages extracted from the loopback server, as stored."""
    config = make_config(web, tmp_path, extra=(source,))
    with Pipeline(config) as pipeline:
        pipeline.poll([source])
        pipeline.extract_pending()
        return {
            (e.link or "").removeprefix(web.base + "/"): e
            for e in pipeline.store.ungrouped_entries()
            if e.source_id == source.id
        }


def test_select_reads_a_body_trafilatura_misses(web: SampleWeb, tmp_path: Path) -> None:
    alone = extract_article(web.body(LIBRARY) or b"", web.url(LIBRARY))
    assert LIBRARY_BODY not in alone.text and "About the Kestrel Ledger" in alone.text

    stored = extracted_texts(web, tmp_path, kestrel(web, select=".storytext"))
    library = stored[LIBRARY]
    assert library.extract_error is None and library.text_available
    assert library.text is not None
    assert library.text.startswith("The Millbrook public library reopened its doors on Monday")
    assert LIBRARY_BODY in library.text and "Kestrel Ledger" not in library.text
    assert len(library.text.splitlines()) == 3  # its <br><br> paragraphs, one a line
    # The rule matches nothing on the source's other page: said so, never passed over.
    bakery = stored[BAKERY]
    assert bakery.extract_error == "select '.storytext' matched nothing on the page"
    assert bakery.text == "A rye loaf takes the county fair's bread prize."  # the feed's


def test_strip_removes_a_newsletter_box_trafilatura_keeps(web: SampleWeb, tmp_path: Path) -> None:
    alone = extract_article(web.body(BAKERY) or b"", web.url(BAKERY))
    assert NEWSLETTER in alone.text

    stored = extracted_texts(web, tmp_path, kestrel(web, strip=[".ledger-box", ".byline"]))
    bakery = stored[BAKERY]
    assert bakery.extract_error is None and bakery.text is not None
    assert NEWSLETTER not in bakery.text and "The Valley Morning" not in bakery.text
    assert bakery.text.startswith("The Orchard Street bakery in Millbrook won")
    assert bakery.text.endswith("open on Sundays from the spring onwards.")
    assert "according to the fair's chair, Ada Fenn." in bakery.text  # after the box


def test_select_keeps_the_page_metadata_and_reads_each_match_once() -> None:
    page = """<html><head><title>Dam report | Ledger</title>
    <meta name="author" content="Ines Moor"></head><body>
    <div class="body"><p>First part of the dam report, long enough to read as prose here.</p>
    <div class="body"><p>A nested match is read once, inside its outer match.</p></div>
    <script>var tracking = 1;</script><p>Last part.<!-- a comment --></p></div>
    <div class="body"><h2>Second match</h2><ul><li>one item</li><li>two items</li></ul></div>
    </body></html>"""
    text = selected_text(page, ".body")
    assert text == (
        "First part of the dam report, long enough to read as prose here.\n"
        "A nested match is read once, inside its outer match.\nLast part.\n"
        "Second match\none item\ntwo items"
    )
    assert selected_text(page, "article") is None
    with pytest.raises(ExtractionError, match="too short"):  # as short as any page's text
        extract_article(page, select="div.body")
    longer = page.replace("Last part.", "Last part. " + "The spillway held. " * 10)
    found = extract_article(longer, select="div.body")
    assert found.author == "Ines Moor" and found.title == "Dam report"
    assert found.text.startswith("First part of the dam report")


SHORT_WITH_PICTURE = (
    b'<html><head><meta property="og:image" content="/alpha/img/short.jpg"></head>'
    b"<body><p>Too short to be an article.</p></body></html>"
)


def test_a_page_too_short_to_use_still_gives_its_picture(web: SampleWeb, tmp_path: Path) -> None:
    """Its text falls back to the feed's, and its og:image is kept for the story's lead image
    (where the feed named none); a page with its text keeps its og:image too."""
    assert page_image(SHORT_WITH_PICTURE.decode()) == "/alpha/img/short.jpg"
    assert page_image("<html><body><p>No picture.</p></body></html>") is None
    config = make_config(web, tmp_path)
    pipeline = Pipeline(config)
    pipeline.poll()
    with pipeline.session() as s:
        links = list(s.scalars(select(EntryRow.link).where(EntryRow.source_id == "alpha")))
    short = urlsplit(links[0]).path
    web.routes[short] = respond(200, SHORT_WITH_PICTURE, "text/html; charset=utf-8")
    pipeline.extract_pending()
    with pipeline.session() as s:
        rows = {urlsplit(e.link).path: e for e in s.scalars(select(EntryRow)) if e.link}
    assert "too short" in (rows[short].extract_error or "")
    assert rows[short].image == "/alpha/img/short.jpg"
    others = [e for path, e in rows.items() if path != short and e.source_id == "alpha"]
    assert others and all((e.image or "").endswith(".jpg") for e in others)


# --- a picture's caption ------------------------------------------------------------------------

PAGES = FIXTURES / "pages"
FOOTBRIDGE = "https://millbrook.example/news/footbridge"


@pytest.mark.parametrize(
    ("page", "image", "caption"),
    [
        (  # og:image:alt first, even where the image's own figure has a caption
            "image-alt-meta.html",
            "https://millbrook.example/img/footbridge.jpg",
            "Walkers cross the rebuilt Quarry Lane footbridge on Saturday morning.",
        ),
        (  # the figcaption of the figure whose <img> names the og:image (relative, in srcset)
            "image-figcaption.html",
            "/img/footbridge-1200.jpg",
            "The rebuilt footbridge & its second handrail. Photo: R. Okafor",
        ),
        (  # no figure: the alt of the <img> a lazy loader fills with the og:image
            "image-alt.html",
            "https://millbrook.example/img/footbridge-wide.jpg",
            "A child crosses the footbridge beside the new handrail",
        ),
    ],
)
def test_a_pages_picture_keeps_its_caption(page: str, image: str, caption: str) -> None:
    html = (PAGES / page).read_bytes()
    found = extract_article(html, FOOTBRIDGE)
    assert (found.image, found.image_caption) == (image, caption)
    assert found.text.startswith("The Quarry Lane footbridge reopened")
    assert image_caption(html.decode(), image, FOOTBRIDGE) == caption


def test_a_caption_belongs_to_the_pages_own_picture() -> None:
    """Another picture's caption is not the lead's; a page whose picture has none gives none."""
    html = (PAGES / "image-figcaption.html").read_text(encoding="utf-8")
    assert image_caption(html, "/img/elsewhere.jpg", FOOTBRIDGE) is None
    assert image_caption(html, "/img/mill-road.jpg", FOOTBRIDGE) == "Another picture's caption."
    assert image_caption(html, "https://millbrook.example/img/mill-road.jpg", FOOTBRIDGE) == (
        "Another picture's caption."
    )
    found = extract_article((PAGES / "headline-in-article.html").read_bytes(), FOOTBRIDGE)
    assert found.image is None and found.image_caption is None


def test_captions_from_feed_and_page_are_stored_with_the_entry(
    web: SampleWeb, tmp_path: Path
) -> None:
    """Over the fixture web: the feed's caption of its picture comes first (Gamma's
    media:description, though the page names the same picture); a page's og:image:alt, its
    figcaption, and a page too short to read still give theirs."""
    config = make_config(web, tmp_path)
    pipeline = Pipeline(config)
    pipeline.poll()
    with pipeline.session() as s:
        links = list(s.scalars(select(EntryRow.link).where(EntryRow.source_id == "alpha")))
    figcaption, short = sorted(urlsplit(link).path for link in links if link)[1:]
    web.routes[figcaption] = respond(
        200, (PAGES / "image-figcaption.html").read_bytes(), "text/html; charset=utf-8"
    )
    short_page = SHORT_WITH_PICTURE.replace(
        b"</head>", b'<meta property="og:image:alt" content="Ferries &amp; detour signs"></head>'
    )
    web.routes[short] = respond(200, short_page, "text/html; charset=utf-8")
    pipeline.extract_pending()
    with pipeline.session() as s:
        rows = {urlsplit(e.link).path: e for e in s.scalars(select(EntryRow)) if e.link}
    for article in (
        "gamma/articles/fairhaven-county-property-tax-cut.html",
        "alpha/articles/harbor-bridge-closed-412-million-repair.html",
    ):
        entry = rows[f"/{article}"]
        assert entry.image and entry.image_caption == CAPTIONS[urlsplit(entry.image).path]
    assert (rows[figcaption].image, rows[figcaption].image_caption) == (
        "/img/footbridge-1200.jpg",
        "The rebuilt footbridge & its second handrail. Photo: R. Okafor",
    )
    assert "too short" in (rows[short].extract_error or "")
    assert (rows[short].image, rows[short].image_caption) == (
        "/alpha/img/short.jpg",
        "Ferries & detour signs",
    )
    # A page without a caption leaves none: the title is the alt text's to fall back on.
    beta = [e for e in rows.values() if e.source_id == "beta"]
    assert beta and all(e.image and e.image_caption is None for e in beta)
