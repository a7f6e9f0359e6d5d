"""Publishing: the story HTML, the Atom feed (feedgen), and atomic writes.

Every text that came from a source is escaped here, at output, whatever the source sent. A
file is written to a temporary name and renamed into place, so a reader never sees half a feed.

The feed's first entry is pinned: "Latest headlines" lists the newest headlines and carries
the status notice when sources are failing (the subtitle carries the notice too). Only story
entries carry ``related`` links.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.config import Settings
from aggregator.models import Coverage, PublishedStory, Rewrite, Sentence, SourceStatus

ATOM_FILE = "balanced.atom"
_NS = uuid.UUID("a3c5b0d2-4e8f-4f6a-9d1c-7b2e8f0a6c13")
LEAN_LABELS = {
    "left": "Left",
    "lean-left": "Lean Left",
    "center": "Center",
    "lean-right": "Lean Right",
    "right": "Right",
}


def atom_id(name: str) -> str:
    """A permanent Atom id (a UUID URN) for a story id or a fixed name."""
    return uuid.uuid5(_NS, name).urn


def _sentence_html(sentence: Sentence, coverage: Coverage | None = None) -> str:
    """The attributed sentence, with the outlet's name linked to its article.

    A model-written paragraph (``cites``) may name several outlets: each is linked.
    """
    prose = escape(sentence.attributed or sentence.text)
    if sentence.cites and coverage is not None:
        links = {escape(name): link for name, _, link in coverage.outlets if link}
        if links:
            pattern = "|".join(re.escape(n) for n in sorted(links, key=len, reverse=True))
            done: set[str] = set()

            def link_once(match: re.Match[str]) -> str:
                name = match.group(0)
                if name in done:
                    return name
                done.add(name)
                return f'<a href="{escape(links[name], quote=True)}">{name}</a>'

            return re.sub(pattern, link_once, prose)
    if sentence.link:
        name = escape(sentence.source_name)
        link = f'<a href="{escape(sentence.link, quote=True)}">{name}</a>'
        prose = prose.replace(name, link, 1)
    return prose


def _quoted_html(sentence: Sentence) -> str:
    """A verbatim sentence followed by its outlet, for the perspectives."""
    name = escape(sentence.source_name)
    if sentence.link:
        name = f'<a href="{escape(sentence.link, quote=True)}">{name}</a>'
    return f"{escape(sentence.text)} <cite>({name})</cite>"


def _section(css: str, title: str, sentences: Sequence[Sentence], missing: str | None) -> str:
    parts = [f'<section class="{css}">', f"<h4>{title}</h4>"]
    if sentences:
        parts.extend(f"<p>{_quoted_html(s)}</p>" for s in sentences)
    else:
        parts.append(f'<p class="missing">{escape(missing or "Nothing to show yet.")}</p>')
    parts.append("</section>")
    return "".join(parts)


def coverage_line(coverage: Coverage) -> str:
    return (
        f"Covered by {coverage.count('left')} left, {coverage.count('center')} centre, "
        f"{coverage.count('right')} right outlets."
    )


def render_story_html(rewrite: Rewrite, coverage: Coverage) -> str:
    """The story's HTML body: sourcing, attributed body, sources, Different Perspectives."""
    parts = [f'<p class="sourcing">{escape(rewrite.lede)} {escape(coverage_line(coverage))}</p>']
    for outlet in rewrite.unavailable:
        parts.append(f'<p class="unavailable">{escape(outlet)}\'s text was not available.</p>')
    parts.append('<div class="story-body">')
    parts.extend(f"<p>{_sentence_html(s, coverage)}</p>" for s in rewrite.body)
    parts.append("</div>")
    parts.append('<h3>Sources</h3><ul class="sources">')
    for name, lean, link in coverage.outlets:
        label = escape(LEAN_LABELS.get(lean, lean))
        named = escape(name)
        if link:
            named = f'<a href="{escape(link, quote=True)}">{named}</a>'
        parts.append(f'<li class="lean-{escape(lean)}">{named} ({label})</li>')
    parts.append("</ul>")
    parts.append('<h3>Different Perspectives</h3><div class="perspectives">')
    parts.append(
        _section(
            "progressive", "Progressive View", rewrite.progressive, rewrite.progressive_missing
        )
    )
    parts.append(
        _section(
            "conservative", "Conservative View", rewrite.conservative, rewrite.conservative_missing
        )
    )
    parts.append(
        _section(
            "common-ground", "Common Ground", rewrite.common_ground, rewrite.common_ground_missing
        )
    )
    parts.append("</div>")
    return "".join(parts)


def status_notice(failing: Sequence[SourceStatus]) -> str:
    """'Status: our Fox News feed has been down since 10:05 UTC; we are retrying.'"""
    if not failing:
        return ""
    pieces = [
        f"our {s.name} feed has been down since {s.since:%Y-%m-%d %H:%M} UTC" for s in failing
    ]
    return "Status: " + "; ".join(pieces) + "; we are retrying."


def _front_html(
    stories: Sequence[PublishedStory], failing: Sequence[SourceStatus], headlines: int
) -> str:
    parts = []
    notice = status_notice(failing)
    if notice:
        parts.append(f'<p class="status">{escape(notice)}</p>')
        parts.append('<ul class="status-details">')
        parts.extend(f"<li>{escape(s.name)}: {escape(s.error)}</li>" for s in failing)
        parts.append("</ul>")
    parts.append('<h3>Latest Headlines</h3><ul class="headlines">')
    parts.extend(f"<li>{escape(s.headline)}</li>" for s in stories[:headlines])
    parts.append("</ul>")
    return "".join(parts)


def build_atom(
    stories: Sequence[PublishedStory],
    settings: Settings,
    failing: Sequence[SourceStatus] = (),
    now: datetime | None = None,
) -> bytes:
    """The Atom document: a pinned "Latest headlines" entry, then the stories, newest first."""
    site = settings.site_url
    fg = FeedGenerator()
    fg.id(atom_id(f"feed:{site}"))
    fg.title(settings.title)
    notice = status_notice(failing)
    fg.subtitle(f"{settings.subtitle} {notice}".strip() if notice else settings.subtitle)
    fg.link(href=f"{site}{ATOM_FILE}", rel="self", type="application/atom+xml")
    fg.link(href=site, rel="alternate", type="text/html")
    fg.author(name=settings.title, uri=site)
    fg.language("en")
    fg.generator("balanced-news", version=__version__)
    # The feed changes only when its content does: newest story change or newest outage.
    moments = [s.updated for s in stories] + [s.since for s in failing]
    updated = max(moments, default=now or datetime.now(UTC))
    fg.updated(updated)

    front = fg.add_entry(order="append")
    front.id(atom_id("front"))
    front.title("Latest Headlines" + (" (some sources are down)" if failing else ""))
    front.updated(updated)
    front.link(href=site, rel="alternate", type="text/html")
    front.content(_front_html(stories, failing, settings.headlines), type="html")

    for story in stories:
        entry = fg.add_entry(order="append")
        entry.id(atom_id(story.id))
        entry.title(story.headline)
        entry.summary(story.summary)
        entry.content(story.content_html, type="html")
        entry.published(story.published)
        entry.updated(story.updated)
        for lean in story.leans:
            entry.category(term=lean, label=LEAN_LABELS.get(lean, lean), scheme=f"{site}leans")
    return _add_related_links(fg.atom_str(pretty=False), stories)


_ATOM_NS = "http://www.w3.org/2005/Atom"


def _add_related_links(data: bytes, stories: Sequence[PublishedStory]) -> bytes:
    """Add each story's ``rel="related"`` links to the document feedgen wrote.

    feedgen 1.0.0 drops every attribute of an entry's links except ``href`` (a shadowed loop
    variable in ``FeedEntry.atom_entry``), so the links are added here instead.
    """
    root = etree.fromstring(data)
    related = {atom_id(s.id): s.related for s in stories}
    for entry in root.iter(f"{{{_ATOM_NS}}}entry"):
        links = related.get(entry.findtext(f"{{{_ATOM_NS}}}id") or "", ())
        for link in links:
            etree.SubElement(
                entry,
                f"{{{_ATOM_NS}}}link",
                href=link.url,
                rel="related",
                type="text/html",
                title=link.outlet,
            )
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
