"""OPML: our sources for other readers (``sources.opml``), and other readers' lists for us.

The export carries each source's lean as an OPML category (``/lean/center``), so an import of
our own file needs no questions. Reading uses lxml with entities and network access off: an
OPML file is input from elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from aggregator.config import PublishSettings, Source
from aggregator.errors import OpmlError as OpmlError
from aggregator.publish.atom import xml_text
from aggregator.vocab import LEANS

OPML_FILE = "sources.opml"
LEAN_CATEGORY = "/lean/"


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline of an OPML file."""

    title: str
    feed: str
    homepage: str | None
    lean: str | None  # from a ``/lean/<lean>`` category, when the file has one


def build_opml(sources: Sequence[Source], settings: PublishSettings, now: datetime) -> bytes:
    """An OPML 2.0 subscription list of the enabled sources, grouped by lean."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = xml_text(f"{settings.title}: sources")
    etree.SubElement(head, "dateCreated").text = now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = etree.SubElement(root, "body")
    for lean in LEANS:
        group = [s for s in sources if s.lean == lean and s.enabled]
        if not group:
            continue
        folder = etree.SubElement(body, "outline", text=lean, title=lean)
        for src in group:
            for url in src.feeds:
                etree.SubElement(
                    folder,
                    "outline",
                    type="rss",
                    text=xml_text(src.name),
                    title=xml_text(src.name),
                    xmlUrl=url,
                    htmlUrl=src.homepage,
                    category=LEAN_CATEGORY + src.lean,
                )
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def parse_opml(data: bytes, where: str = "OPML") -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``, at any depth, in document order."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"{where}: not valid XML: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"{where}: not an OPML file (root element is <{root.tag}>)")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url:
            continue
        title = (outline.get("title") or outline.get("text") or url).strip()
        lean = None
        for category in (outline.get("category") or "").split(","):
            category = category.strip()
            if category.startswith(LEAN_CATEGORY) and category[len(LEAN_CATEGORY) :] in LEANS:
                lean = category[len(LEAN_CATEGORY) :]
        feeds.append(OpmlFeed(title, url, (outline.get("htmlUrl") or "").strip() or None, lean))
    return feeds
