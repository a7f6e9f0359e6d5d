"""A fast path for the plainest feeds: what feedparser would make of a well-formed RSS 2.0
document, read with lxml in a fraction of feedparser's time, or None for anything else.

feedparser costs 5 to 7 ms a feed (its SAX handlers and dictionaries), most of a cold cycle's
CPU. Most feeds are plain RSS 2.0: here such a document gives the few fields
:mod:`aggregator.parse` reads (title, link, id, summary, author, published_parsed; the feed's
title and ttl), each as feedparser's own rules make it (its whitespace stripping, its
re-decoding of doubly encoded UTF-8 and of cp1252 code points, its URI resolution and its date
parser). Whatever is outside that subset (another format or encoding, a DOCTYPE, xml:base,
markup inside a text element, any element it does not know, a repeated one, a namespace)
gives None, and feedparser parses the document as before. bench/fastfeed.py checks both give
the same :class:`ParsedFeed` on every shared feed corpus.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from lxml import etree

try:  # feedparser's own rules, so that the fast path cannot drift from them
    from feedparser.datetimes import _parse_date
    from feedparser.html import _cp1252
    from feedparser.urls import _urljoin, make_safe_absolute_uri
except ImportError:  # another feedparser: no fast path
    _parse_date = None

# Content types feedparser reads as UTF-8 XML without a warning (text/xml defaults to ASCII).
_XML_TYPES = frozenset({"application/rss+xml", "application/xml", "application/atom+xml"})
_DECLARATION_RE = re.compile(rb"^<\?xml[^>]*?encoding=[\"']([A-Za-z0-9_.-]+)[\"']")
_AMP_RE = re.compile("&([A-Za-z0-9_]+);")
_CHANNEL = frozenset(
    "title link description language copyright managingEditor webMaster pubDate lastBuildDate "
    "category generator docs ttl".split()
)
_IMAGE = frozenset("url title link width height description".split())
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"  # feedparser's author, by another name
_ITEM = frozenset(
    [
        "enclosure",
        _DC_CREATOR,
        *"title link guid pubDate author category description comments".split(),
    ]
)
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False
)


class _Outside(Exception):
    """The document is outside the fast path's subset: feedparser reads it."""


def parse(content: bytes, url: str, content_type: str | None) -> dict[str, Any] | None:
    """feedparser's result for ``content`` as far as :mod:`aggregator.parse` reads it (a dict
    with ``feed``, ``entries``, ``version`` and ``bozo``), or None outside the subset."""
    if _parse_date is None or not _utf8(content, content_type):
        return None
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError:
        return None
    try:
        return _rss(root, url)
    except _Outside:
        return None


def _utf8(content: bytes, content_type: str | None) -> bool:
    """UTF-8 by every account (the HTTP header, no byte-order mark, the declaration)."""
    if content_type is None:  # feedparser warns "no Content-type specified"
        return False
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() not in _XML_TYPES:
        return False
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        return False
    if not content.startswith(b"<?xml"):
        return content.startswith(b"<rss")
    declared = _DECLARATION_RE.match(content)
    return declared is None or declared.group(1).lower() == b"utf-8"


def _rss(root: etree._Element, url: str) -> dict[str, Any]:
    if root.tag != "rss" or dict(root.attrib) != {"version": "2.0"}:
        raise _Outside
    if root.getroottree().docinfo.doctype or len(root) != 1 or root[0].tag != "channel":
        raise _Outside
    channel = root[0]
    if channel.attrib or channel.text and channel.text.strip():
        raise _Outside
    base = (make_safe_absolute_uri(url, url) or url) if url else ""
    feed: dict[str, Any] = {}
    entries = []
    seen: set[str] = set()
    for child in channel:
        tag = child.tag
        if tag == "item":
            entries.append(_item(child, base))
        elif tag == "image":
            if child.attrib or child.text and child.text.strip():
                raise _Outside
            for part in child:
                if part.tag not in _IMAGE:
                    raise _Outside
                _plain(part)
        elif tag == _ATOM_LINK:  # rel="self" and the like: nothing we read
            if len(child) or (child.text or "").strip() or _namespaced(child):
                raise _Outside
        elif tag in _CHANNEL:
            _plain(child, "domain" if tag == "category" else None)
            if tag in ("title", "ttl"):
                if tag in seen:
                    raise _Outside
                seen.add(tag)
                feed[tag] = _fixed(_stripped(child))
        else:
            raise _Outside
    return {"feed": feed, "entries": entries, "version": "rss20", "bozo": 0}


def _item(item: etree._Element, base: str) -> dict[str, Any]:
    """One item as feedparser's handlers leave it (a repeated element is left to them)."""
    if item.attrib or item.text and item.text.strip():
        raise _Outside
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    permalink = False
    for child in item:
        tag = child.tag
        if tag not in _ITEM:
            raise _Outside
        if tag == "enclosure":
            entry.setdefault("links", []).append(_enclosure(child))
            continue
        _plain(child, {"category": "domain", "guid": "isPermaLink"}.get(tag))
        if tag in ("category", "comments"):
            continue
        if tag == _DC_CREATOR:
            tag = "author"
        if tag in seen:
            raise _Outside
        seen.add(tag)
        value = _stripped(child)
        if tag == "link":
            if not value:
                raise _Outside
            value = _AMP_RE.sub(r"&\g<1>", _fixed(_urljoin(base, value)).replace("&amp;", "&"))
            entry["link"] = value
        elif tag == "guid":
            permalink = child.get("isPermaLink", "true") == "true"
            entry["id"] = _fixed(_urljoin(base, value) if permalink and value else value)
        elif tag == "pubDate":
            entry["published"] = value = _fixed(value)
            entry["published_parsed"] = _parse_date(value)
        else:
            entry[_KEYS.get(tag, tag)] = _fixed(value)
    if permalink and "link" not in entry:
        entry["link"] = entry["id"]
    return entry


_KEYS = {"description": "summary"}
_ENCLOSURE = frozenset({"url", "type", "length"})


def _enclosure(element: etree._Element) -> dict[str, str]:
    """An enclosure as feedparser lists it among the links: ``url`` becomes ``href`` (when
    not empty), the type is lowercased, the element's text is ignored."""
    if len(element) or set(element.attrib) - _ENCLOSURE:
        raise _Outside
    link = {name: value.lower() if name == "type" else value for name, value in element.items()}
    if link.get("url"):
        link["href"] = link.pop("url")
    link["rel"] = "enclosure"
    return link


def _plain(element: etree._Element, attribute: str | None = None) -> None:
    """Text only: no child, comment or processing instruction, no attribute but ``attribute``
    (xml:base or a content type would change how feedparser reads it)."""
    if len(element) or set(element.attrib) - {attribute}:
        raise _Outside


def _namespaced(element: etree._Element) -> bool:
    return any(name.startswith("{") for name in element.attrib)


def _stripped(element: etree._Element) -> str:
    return (element.text or "").strip()


def _fixed(text: str) -> str:
    """feedparser's repairs to every text it keeps: UTF-8 that was decoded as Latin-1 once too
    often, and cp1252's code points in the C1 range (neither touches ASCII)."""
    if text.isascii():
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252)
