"""Article text and metadata from a page, with trafilatura.

Kept apart from fetching so that ``balanced-news extract FILE`` and the pipeline run the very
same code on the very same bytes.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from collections.abc import Sequence
from urllib.parse import urljoin

import lxml.html
import trafilatura
from charset_normalizer import from_bytes
from lxml import etree

from aggregator.config import css_selector
from aggregator.errors import ExtractionError as ExtractionError
from aggregator.models import Extracted
from aggregator.text import caption_text, comparable

MIN_TEXT_CHARS = 200  # below this we say extraction failed and fall back to the feed's text


# Phrases publishers put where the article stops for non-subscribers (matched lowercased).
PAYWALL_PHRASES = (
    "subscribe to continue reading",
    "subscribe to keep reading",
    "subscribe to read the full",
    "subscribe now to continue",
    "to continue reading, subscribe",
    "this article is for subscribers",
    "this content is for subscribers",
    "available to subscribers only",
    "for subscribers only",
    "already a subscriber? sign in",
    "already a subscriber? log in",
    "you have reached your limit of free articles",
    "you've reached your free article limit",
    "create a free account to continue reading",
)
_NOT_FREE_RE = re.compile(r'"isAccessibleForFree"\s*:\s*"?false"?', re.IGNORECASE)


# Labels browsers read as a wider charset than Python's codec of the same name (WHATWG
# Encoding Standard): a page "in ISO-8859-1" is in fact windows-1252 wherever it differs.
_WIDER = {
    "ascii": "cp1252",
    "iso8859_1": "cp1252",
    "iso8859_9": "cp1254",
    "iso8859_11": "cp874",
    "tis_620": "cp874",
    "windows_874": "cp874",
    "x_sjis": "cp932",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "utf_16": "utf-8",  # a <meta> can only declare UTF-16 in a page that is not (WHATWG)
    "utf_16_le": "utf-8",
    "utf_16_be": "utf-8",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_CHARSET_RE = re.compile(r';\s*charset\s*=\s*["\']?([^"\';\s]+)', re.IGNORECASE)
# <meta charset="x"> and <meta http-equiv="Content-Type" content="text/html; charset=x">
_META_CHARSET_RE = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)
PRESCAN_BYTES = 4096  # browsers look at the first 1024; some CMSs put 3 KB of scripts first


def _codec(label: str | bytes | None) -> str | None:
    """Python's codec for a charset label as browsers read it, or None when unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().strip("\"'").lower()
    if label.replace("-", "_") in _WIDER:  # names Python does not know (windows-874, x-sjis)
        return _WIDER[label.replace("-", "_")]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _WIDER.get(name.replace("-", "_"), name)


def _single_byte(codec: str) -> bool:
    """Codecs that decode any bytes at all, so a strict decode proves nothing."""
    return codec.startswith(("cp125", "cp874", "iso8859", "latin", "koi8", "mac_", "cp437", "cp8"))


def _decodes(body: bytes, codec: str) -> str | None:
    """``body`` in ``codec``, or None when it is not in it. A single-byte charset is not
    believed for a body that is valid UTF-8 with non-ASCII in it: that is a server default
    (``charset=ISO-8859-1``) or a template left unchanged, not the page's real charset."""
    try:
        text = body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    if _single_byte(codec) and not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return text
        return None
    return text


def declared_charsets(body: bytes, content_type: str | None = None) -> list[str]:
    """The charsets a page declares, most authoritative first: a byte-order mark, the HTTP
    header, then the first ``<meta charset>`` or ``http-equiv`` in the page's head."""
    found: list[str | None] = []
    found += [codec for bom, codec in _BOMS if body.startswith(bom)][:1]
    header = _HEADER_CHARSET_RE.search(content_type or "")
    found.append(_codec(header.group(1)) if header else None)
    meta = _META_CHARSET_RE.search(body[:PRESCAN_BYTES])
    found.append(_codec(meta.group(1)) if meta else None)
    return list(dict.fromkeys(c for c in found if c))


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """A fetched page as text, in its own charset, as browsers find it: a BOM, the HTTP
    header, ``<meta charset>``/``http-equiv``, then detection (charset-normalizer). A declared
    charset the bytes are not in (a wrong HTTP header) is passed over for the next."""
    for codec in declared_charsets(body, content_type):
        text = _decodes(body, codec)
        if text is not None:
            return text.removeprefix("\ufeff")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:200_000]).best()
    detected = _codec(best.encoding) if best is not None else None
    return body.decode(detected or "utf-8", errors="replace")


def paywall_marker(html: bytes | str) -> str | None:
    """Why a page looks paywalled (schema.org ``isAccessibleForFree: false`` or a
    subscribe-to-continue phrase), or None; so a teaser is never passed off as the article."""
    if isinstance(html, bytes):
        html = decode_page(html)
    if _NOT_FREE_RE.search(html):
        return "page marked isAccessibleForFree: false"
    lowered = " ".join(html.lower().split())
    for phrase in PAYWALL_PHRASES:
        if phrase in lowered:
            return f"paywall notice ({phrase!r})"
    return None


def _bare(
    html: str,
    url: str | None,
    *,
    favor_precision: bool = False,
    favor_recall: bool = False,
    include_tables: bool = False,
) -> dict:
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=include_tables,
        favor_precision=favor_precision,
        favor_recall=favor_recall,
    )
    if doc is None:
        return {}
    return doc if isinstance(doc, dict) else doc.as_dict()


def _text(data: dict) -> str:
    """The article text without a first line that only repeats the page's title: a headline
    inside the article's own markup (``<article><h1>``) is kept by trafilatura, and read as the
    article's first sentence it runs into the lead. (6 of the 40 real pages in
    ``../shared/fixtures/extraction`` open with it; none of their annotated bodies does.)"""
    text = (data.get("text") or "").strip()
    first, _, rest = text.partition("\n")
    line, title = comparable(first), comparable(data.get("title") or "")
    if rest and line and (line == title or (len(line.split()) >= 3 and title.startswith(line))):
        return rest.strip()
    return text


# --- a source's content rules (``select`` and ``strip`` in sources.toml) -----------------------

# Elements that start a line of their own in the text of a selected body.
_BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main ol p pre section table td th tr ul".split()
)
_UNREAD = frozenset({"script", "style", "noscript", "template", "iframe", "svg", "button", "form"})


def _parsed(html: str) -> lxml.html.HtmlElement | None:
    """The page parsed by lxml (as bytes: a page declaring its encoding in an XML prolog is
    refused as a str), or None when nothing parses."""
    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        return lxml.html.document_fromstring(html.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, ValueError):
        return None


def strip_elements(html: str, selectors: Sequence[str]) -> str:
    """The page without the elements ``selectors`` match (a source's ``strip`` rule): a
    newsletter box or a teaser trafilatura takes for the article, removed before it reads the
    page (and before the paywall check, so a stripped box's "subscribe" is not a paywall)."""
    if not selectors:
        return html
    tree = _parsed(html)
    if tree is None:
        return html
    for css in selectors:
        for element in css_selector(css)(tree):
            if element.getparent() is not None:
                element.drop_tree()  # its tail text stays: it belongs to the parent
    return str(lxml.html.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>"))


def _block_text(element: lxml.html.HtmlElement) -> str:
    """An element's text as lines: each block (paragraph, heading, item) on its own line,
    whitespace within a line folded, as trafilatura gives an article's text."""
    parts: list[str] = []

    def walk(node: lxml.html.HtmlElement) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if not tag or tag in _UNREAD:  # comments, processing instructions, scripts
            return
        if tag in _BLOCKS:
            parts.append("\n")
        parts.append(node.text or "")
        for child in node:
            walk(child)
            parts.append(child.tail or "")
        if tag in _BLOCKS:
            parts.append("\n")

    walk(element)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def selected_text(html: str, select: str) -> str | None:
    """The text of every element ``select`` matches (a source's ``select`` rule), in page
    order, or None when it matches nothing."""
    tree = _parsed(html)
    found = css_selector(select)(tree) if tree is not None else []
    # An element inside another match is already in that match's text.
    matched = set(found)
    outer = [el for el in found if not any(a in matched for a in el.iterancestors())]
    if not outer:
        return None
    return "\n".join(text for el in outer if (text := _block_text(el)))


def _selected(html: str, url: str | None, select: str) -> dict:
    """What ``select`` finds, with the page's metadata from trafilatura."""
    text = selected_text(html, select)
    if text is None:
        raise ExtractionError(f"select {select!r} matched nothing on the page")
    try:
        meta = trafilatura.extract_metadata(html, default_url=url)
    except Exception:  # noqa: BLE001 - as in extract_article: the text is what counts here
        return {"text": text}
    found = {"title": meta.title, "author": meta.author, "date": meta.date, "image": meta.image}
    return {"text": text, **found}


def extract_article(
    html: bytes | str,
    url: str | None = None,
    content_type: str | None = None,
    *,
    select: str | None = None,
) -> Extracted:
    """Extract the main text and metadata of an article page.

    Bytes are decoded in the page's own charset (:func:`decode_page`, with the HTTP
    ``content_type`` when there is one). Precision first; a page where that finds nothing (an
    old table layout) gets trafilatura's default mode, its recall mode with tables, then its
    baseline, before we give up: the fallbacks run only where precision found nothing, so
    they cost no precision elsewhere. Raises :class:`ExtractionError` when there is no text
    worth using, so callers record why and use the feed's own summary instead.

    ``select`` (a source's content rule) replaces trafilatura's choice of the body: the text
    is what the selector matches, and a selector that matches nothing is an error (the rule
    is out of date), never a silent fallback.
    """
    if isinstance(html, bytes):
        html = decode_page(html, content_type)
    if not html.strip():
        raise ExtractionError("empty page")
    found = _found(html, url, select)
    if found.image is None:
        return found
    return dataclasses.replace(found, image_caption=image_caption(html, found.image, url))


def _found(html: str, url: str | None, select: str | None) -> Extracted:
    if select:
        return _checked(_selected(html, url, select))
    try:
        data = _bare(html, url, favor_precision=True)
        if not data:
            data = _bare(html, url)
        if not data:
            data = _bare(html, url, favor_recall=True, include_tables=True)
        if not data:
            _tree, text, _length = trafilatura.baseline(html)
            data = {"text": text} if len(text.strip()) >= MIN_TEXT_CHARS else {}
    except Exception as exc:  # trafilatura raises assorted lxml errors on hostile markup
        raise ExtractionError(f"extraction crashed: {exc}") from None
    if not data:
        raise ExtractionError("no article text found")
    return _checked(data)


def page_image(html: str, url: str | None = None) -> str | None:
    """The page's own picture (og:image, else twitter:image), read from its metadata alone:
    for a page whose text could not be used (too short, paywalled), whose picture still
    illustrates the story. As the page gives it (relative or absolute)."""
    try:
        meta = trafilatura.extract_metadata(html, default_url=url)
    except Exception:  # noqa: BLE001 - as in extract_article: hostile markup, no picture
        return None
    return (meta.image if meta is not None else None) or None


_ALT_META = ("og:image:alt", "twitter:image:alt")


def image_caption(html: str, image: str, url: str | None = None) -> str | None:
    """The caption the page gives its picture ``image`` (as its metadata names it), as plain
    text: its ``og:image:alt`` (or ``twitter:image:alt``), else the ``<figcaption>`` of the
    figure holding an ``<img>`` of that address, else that image's ``alt``; None when the page
    gives none. Addresses are compared as read against the page's ``url``."""
    tree = _parsed(html)
    if tree is None:
        return None
    for name in _ALT_META:
        for meta in tree.iter("meta"):
            if name in (meta.get("property"), meta.get("name")):
                found = caption_text(meta.get("content"))
                if found:
                    return found
    wanted = urljoin(url or "", image.strip())
    for img in tree.iter("img"):
        if wanted not in {urljoin(url or "", src) for src in _sources(img)}:
            continue
        figure = next(img.iterancestors("figure"), None)
        caption = figure.find(".//figcaption") if figure is not None else None
        found = caption_text(caption.text_content()) if caption is not None else None
        found = found or caption_text(img.get("alt"))
        if found:
            return found
    return None


def _sources(img: lxml.html.HtmlElement) -> list[str]:
    """Every address an ``<img>`` names: ``src``, a lazy loader's ``data-src``, each of its
    ``srcset`` candidates (and its ``<picture>``'s)."""
    found = [v.strip() for v in (img.get("src"), img.get("data-src")) if v and v.strip()]
    sets = [img.get("srcset"), img.get("data-srcset")]
    parent = img.getparent()
    if parent is not None and parent.tag == "picture":
        sets += [source.get("srcset") for source in parent.iter("source")]
    for srcset in sets:
        found += [c.split()[0] for c in (srcset or "").split(",") if c.strip()]
    return found


def _checked(data: dict) -> Extracted:
    """The article found, unless its text is too short to be one."""
    text = _text(data)
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionError(f"article text too short ({len(text)} characters)")
    return Extracted(
        text=text,
        title=data.get("title") or None,
        author=data.get("author") or None,
        date=data.get("date") or None,
        image=data.get("image") or None,
    )
