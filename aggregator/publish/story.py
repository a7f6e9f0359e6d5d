"""The story's HTML body and the wording every output shares (ids, notice, lean labels).

Every text that came from a source is escaped here, and every link checked by
:func:`~aggregator.publish.sanitize.safe_url`, whatever the source sent; the finished fragment
is cleaned again by the one sanitizer when it is published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from html import escape

from aggregator.models import (
    Coverage,
    CoverageNote,
    LeadImage,
    PublishedStory,
    RelatedLink,
    Rewrite,
    Sentence,
    SourceStatus,
)
from aggregator.publish.prose import worded
from aggregator.publish.sanitize import safe_url
from aggregator.text import join_names
from aggregator.vocab import Empty, Lean, Side, side_of

_NS = uuid.UUID("a3c5b0d2-4e8f-4f6a-9d1c-7b2e8f0a6c13")
LEAN_LABELS: dict[str, str] = {
    Lean.LEFT: "Left",
    Lean.LEAN_LEFT: "Lean Left",
    Lean.CENTER: "Center",
    Lean.LEAN_RIGHT: "Lean Right",
    Lean.RIGHT: "Right",
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
        links = {
            escape(name): url
            for name, _, link in coverage.outlets
            for url in [safe_url(link)]
            if url
        }
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
    url = safe_url(sentence.link)
    if url:
        name = escape(sentence.source_name)
        link = f'<a href="{escape(url, quote=True)}">{name}</a>'
        prose = prose.replace(name, link, 1)
    return prose


def _quoted_html(sentence: Sentence) -> str:
    """A verbatim sentence followed by its outlet, for the perspectives; a claim several
    articles state cites each of them (an outlet's two articles told apart by their titles)."""
    cited = sentence.reported_by or ((sentence.source_name, "", sentence.link),)
    outlets = [name for name, _, _ in cited]
    names = []
    for name, title, link in cited:
        label = escape(name)
        url = safe_url(link)
        attrs = f' title="{escape(title, quote=True)}"' if title else ""
        if outlets.count(name) > 1 and title:
            label = f"{label}, \u201c{escape(title)}\u201d"
        if url:
            label = f'<a href="{escape(url, quote=True)}"{attrs}>{label}</a>'
        names.append(label)
    return f"{escape(sentence.text)} <cite>({'; '.join(names)})</cite>"


def _section(
    css: str,
    title: str,
    sentences: Sequence[Sentence],
    missing: str | None,
    note: CoverageNote | None = None,
) -> str:
    parts = [f'<section class="{css}">', f"<h4>{title}</h4>"]
    if sentences:
        parts.extend(f"<p>{_quoted_html(s)}</p>" for s in sentences)
        if note is not None and note.code == "side_join":
            parts.append(note_html(note))
    elif note is not None:
        parts.append(note_html(note))
    else:
        parts.append(f'<p class="missing">{escape(missing or "Nothing to show yet.")}</p>')
    parts.append("</section>")
    return "".join(parts)


# --- what the reader is told of a side the story has no article of (``CoverageNote``) -----------
# Every such sentence is worded here, and only here.


def note_text(note: CoverageNote) -> str:
    """The note in plain words (the JSON Feed's, and the HTML's around its link)."""
    when = f" ({_day(note.published)})" if note.published else ""
    if note.code == "related_angle":
        return (
            f"A {note.side}-leaning outlet covered a related angle: {note.outlet}, "
            f"\u201c{note.title}\u201d{when}."
        )
    if note.code == "side_join":
        return f"{note.outlet}, \u201c{note.title}\u201d{when}, {_JOINED.format(side=note.side)}"
    return f"No {note.side}-leaning outlet has covered this story yet."


# A side-completion join, after the article it names.
_JOINED = (
    "was joined to this story by the search for {side}-leaning coverage, on a weaker match "
    "than the other reports."
)


def note_html(note: CoverageNote) -> str:
    """The note as a paragraph; a related angle or a side-completion join links to its
    article (its outlet and its own headline)."""
    url = safe_url(note.link)
    if note.code not in ("related_angle", "side_join") or not url:
        return f'<p class="missing">{escape(note_text(note))}</p>'
    when = f" ({_day(note.published)})" if note.published else ""
    label = f"{escape(note.outlet)}, \u201c{escape(note.title)}\u201d"
    link = f'<a href="{escape(url, quote=True)}">{label}</a>'
    if note.code == "side_join":
        return (
            f'<p class="side-join">{link}{escape(when)}, '
            f"{escape(_JOINED.format(side=note.side))}</p>"
        )
    return (
        f'<p class="related-angle">A {escape(note.side)}-leaning outlet covered a related angle: '
        f"{link}{escape(when)}.</p>"
    )


def absence_notes(notes: Sequence[CoverageNote]) -> list[CoverageNote]:
    """The notes about a side the story has no article of (a side-completion join is not)."""
    return [n for n in notes if n.code != "side_join"]


def common_ground_note(notes: Sequence[CoverageNote]) -> str:
    """Why Common Ground is empty when a side has no article of the story."""
    said = []
    for note in absence_notes(notes):
        if note.code == "related_angle":
            view = "Progressive" if note.side == Side.LEFT else "Conservative"
            said.append(
                f"the {note.side}-leaning coverage found is of a related angle "
                f"(see the {view} View)"
            )
        else:
            said.append(f"no {note.side}-leaning outlet has covered this story yet")
    return "Common ground needs coverage from both sides; " + "; ".join(said) + "."


def note_json(note: CoverageNote) -> dict[str, str]:
    """The note in the JSON Feed: its code, its side, its words, and the article a related
    angle or a side-completion join names."""
    out = {"note": note.code, "side": note.side, "text": note_text(note)}
    url = safe_url(note.link)
    if note.code in ("related_angle", "side_join") and url:
        out |= {"outlet": note.outlet, "title": note.title, "url": url}
    return out


def coverage_line(coverage: Coverage) -> str:
    return (
        f"Covered by {coverage.count(Side.LEFT)} left, {coverage.count(Side.CENTER)} center, "
        f"{coverage.count(Side.RIGHT)} right outlets."
    )


SIDE_LABELS = {Side.LEFT: "Left", Side.CENTER: "Center", Side.RIGHT: "Right"}
HEADLINES_TITLE = "How each side headlined it"


def headlines_html(coverage: Coverage) -> str:
    """ "How each side headlined it": every linked article's own headline (a copy's too) with
    its outlet and lean, grouped Left, Center, Right, in reporting order within a side; an
    opinion piece is marked as one. A side without an article is left out: saying it has none
    is the views' claim, made only after the search for related coverage (``related.py``)."""
    listed = [
        (name, lean, link, title, kind, False)
        for name, lean, link, title, kind in coverage.articles
    ]
    listed += [
        (name, lean, link, title, "news", True) for name, lean, link, title in coverage.copies
    ]
    groups = []
    for side, label in SIDE_LABELS.items():
        items = []
        for name, lean, link, title, kind, copy in listed:
            if side_of(lean) != side or not title:
                continue
            headline = f"\u201c{escape(title)}\u201d"
            url = safe_url(link)
            if url:
                headline = f'<a href="{escape(url, quote=True)}">{headline}</a>'
            mark = '<span class="opinion">Opinion:</span> ' if kind == "opinion" else ""
            note = ", a copy of the same report" if copy else ""
            outlet = f"{escape(name)} ({escape(LEAN_LABELS.get(lean, lean))}{note})"
            items.append(f'<li>{mark}{headline} <span class="outlet">{outlet}</span></li>')
        if items:
            groups.append(
                f'<section class="side-{side}"><h4>{label}</h4><ul>{"".join(items)}</ul></section>'
            )
    if not groups:
        return ""
    return f'<h3>{HEADLINES_TITLE}</h3><div class="by-side">{"".join(groups)}</div>'


def shared_owners_html(coverage: Coverage) -> str:
    """Which listed outlets have one owner ("The Wall Street Journal and New York Post are
    owned by News Corp."): why the summary attributes a claim only they report."""
    by_owner: dict[str, list[str]] = {}
    for name, owner in coverage.owners:
        by_owner.setdefault(owner, []).append(name)
    said = [
        f"{join_names(names)} are owned by {owner}; a claim only they report is attributed to them."
        for owner, names in by_owner.items()
        if len(names) > 1
    ]
    return "".join(f'<p class="owners">{escape(line)}</p>' for line in said)


def lede(coverage: Coverage) -> str:
    """Who reported the story first, and when; who else covered it ("X first reported this
    story on December 7. It was also covered by Y and Z.")."""
    others = [name for name, _, _ in coverage.outlets if name != coverage.first_source]
    date = f"{coverage.first_published:%B} {coverage.first_published.day}"
    said = f"{coverage.first_source} first reported this story on {date}."
    if others:
        said += f" It was also covered by {join_names(others)}."
    return said


def empty_text(code: str | None, side: Side | None = None) -> str | None:
    """Why a section has no sentence (:class:`~aggregator.vocab.Empty`), in words: a side's
    view (``side``) or Common Ground (no side)."""
    if code is None:
        return None
    if side is None:
        if code == Empty.TOLD_ABOVE:
            return "What left- and right-leaning outlets both report is told above."
        return "Left- and right-leaning outlets do not yet report the same facts here."
    if code == Empty.TOLD_ABOVE:
        return f"What only {side}-leaning outlets report here is told above."
    return f"Nothing here that only {side}-leaning outlets report or argue."


def render_story_html(rewrite: Rewrite, coverage: Coverage) -> str:
    """The story's HTML body: sourcing, attributed body, sources, Different Perspectives."""
    rewrite = worded(rewrite, coverage.first_source)
    sourcing = f"{lede(coverage)} {coverage_line(coverage)}"
    parts = [f'<p class="sourcing">{escape(sourcing)}</p>']
    if coverage.via:
        names = ", ".join(
            f"{name} ({LEAN_LABELS.get(lean, lean)})" for name, lean, _ in coverage.via
        )
        parts.append(
            f'<p class="via">Also carried, as a copy of the same report, by {escape(names)}.</p>'
        )
    for outlet in rewrite.unavailable:
        parts.append(f'<p class="unavailable">{escape(outlet)}\'s text was not available.</p>')
    parts.append('<div class="story-body">')
    parts.extend(f"<p>{_sentence_html(s, coverage)}</p>" for s in rewrite.body)
    parts.append("</div>")
    parts.append(headlines_html(coverage))
    parts.append('<h3>Sources</h3><ul class="sources">')
    listed = coverage.articles or tuple((n, le, li, "", "news") for n, le, li in coverage.outlets)
    outlet_names = [name for name, _, _, _, _ in listed]
    owner_of = dict(coverage.owners)
    # Every article the feed entry links: a syndicated copy too, marked as one.
    copies = tuple((name, lean, link, "", True) for name, lean, link, _ in coverage.copies)
    for name, lean, link, title, copy in (*((*a[:4], False) for a in listed), *copies):
        label = escape(LEAN_LABELS.get(lean, lean))
        named = escape(name)
        if outlet_names.count(name) > 1 and title:  # one outlet, two articles: which is which
            named = f"{named}: \u201c{escape(title)}\u201d"
        url = safe_url(link)
        if url:
            named = f'<a href="{escape(url, quote=True)}">{named}</a>'
        note = ", a copy of the same report" if copy else ""
        if name in owner_of:
            note += f', owned by <span class="owner">{escape(owner_of[name])}</span>'
        parts.append(f'<li class="lean-{escape(lean)}">{named} ({label}{note})</li>')
    parts.append("</ul>")
    parts.append(shared_owners_html(coverage))
    parts.append('<h3>Different Perspectives</h3><div class="perspectives">')
    notes = {n.side: n for n in rewrite.notes}
    parts.append(
        _section(
            "progressive",
            "Progressive View",
            rewrite.progressive,
            empty_text(rewrite.progressive_missing, Side.LEFT),
            notes.get(Side.LEFT),
        )
    )
    parts.append(
        _section(
            "conservative",
            "Conservative View",
            rewrite.conservative,
            empty_text(rewrite.conservative_missing, Side.RIGHT),
            notes.get(Side.RIGHT),
        )
    )
    common_missing = empty_text(rewrite.common_ground_missing)
    if absence_notes(rewrite.notes) and not rewrite.common_ground:
        common_missing = common_ground_note(rewrite.notes)
    parts.append(_section("common-ground", "Common Ground", rewrite.common_ground, common_missing))
    parts.append("</div>")
    return "".join(parts)


def rendered(story: PublishedStory) -> PublishedStory:
    """The story with its summary worded and its HTML body rendered from its stored rewrite
    and coverage, with today's templates and lead-ins: a change to them reaches every stored
    story at the next publish. A story stored before 0008 and not rewritten since keeps the
    summary and HTML stored with it."""
    if story.rewrite is None or story.coverage is None:
        return story
    summary, html = _rendered(story.rewrite, story.coverage)
    return dataclasses.replace(story, summary=summary, content_html=html)


def forget_rendered() -> None:
    """Forget every render and hash kept (:func:`_rendered`, :func:`_shown_hash`), as a new
    process starts: for a template changed in this process (a test)."""
    _rendered.cache_clear()
    _shown_hash.cache_clear()


@lru_cache(maxsize=8192)
def _rendered(rewrite: Rewrite, coverage: Coverage) -> tuple[str, str]:
    """A stored story's summary and HTML body. Kept: every publish renders every stored story,
    and most are as they were at the last one (the templates and lead-ins are code, so a change
    to them comes with a new process and an empty cache)."""
    rewrite = worded(rewrite, coverage.first_source)
    return rewrite.summary, render_story_html(rewrite, coverage)


def shown_hash(story: PublishedStory) -> str:
    """What readers are shown of a rendered story, hashed: its ``updated`` time moves only
    when this changes. An unknown owner is left out, so a story without owners keeps the
    hash it had before owners were known (and every story the hash versions before 0008 gave)."""
    return _shown_hash(
        story.headline, story.summary, story.content_html, story.related, story.image
    )


@lru_cache(maxsize=8192)  # as :func:`_rendered`: most stories are as at the last publish
def _shown_hash(
    headline: str,
    summary: str,
    html: str,
    related_links: tuple[RelatedLink, ...],
    image: LeadImage | None,
) -> str:
    related = [
        {"url": r.url, "outlet": r.outlet, "lean": r.lean} | ({"owner": r.owner} if r.owner else {})
        for r in related_links
    ]
    shown: list[object] = [headline, summary, html, related]
    shown += [[image.url, image.credit, image.alt]] if image else []
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()


NAMED_DOWN = 3  # sources named in the status line; the rest are counted


def status_notice(failing: Sequence[SourceStatus], total: int = 0) -> str:
    """The one public status line: '3 of 44 sources are down (A, B, C); we are retrying.'

    At most ``NAMED_DOWN`` names, so it stays one short line with every source down; no
    errors and no operator advice (those are for ``balanced-news sources`` and /healthz).
    ``total`` is the number of enabled sources (0: unknown). Every source down is a state of
    its own: nothing new can arrive until one comes back.
    """
    if not failing:
        return ""
    down = len(failing)
    if total and down >= total:
        return (
            "Our only source is down; we are retrying."
            if total == 1
            else f"Every source is down (all {total}); we are retrying."
        )
    names = [" ".join(s.name.split()) for s in failing[:NAMED_DOWN]]
    named = ", ".join(names) + (f" and {down - NAMED_DOWN} more" if down > NAMED_DOWN else "")
    count = f"{down} of {total} sources" if total else f"{down} source" + ("s" * (down > 1))
    verb = "is" if down == 1 else "are"
    return f"{count} {verb} down ({named}); we are retrying."


def all_down(failing: Sequence[SourceStatus], total: int) -> bool:
    """Every enabled source is down."""
    return bool(total) and len(failing) >= total


def story_path(story_id: str) -> str:
    """Where a story's own page lives, relative to the site root (ids are UUIDs: path-safe)."""
    return f"stories/{story_id}.html"


# The Atom category scheme (and JSON Feed field) naming a story's storyline: consecutive
# events of one developing story. The term is the storyline id (its first story's id).
STORYLINE_SCHEME = "urn:balanced-news:storyline"
STORYLINE_DIR = "storylines"
FEED_SUFFIXES = (".atom", ".json")
FOLLOW_TITLE = "Follow this story"


def storyline_feed_path(storyline_id: str, suffix: str = ".atom") -> str:
    """Where a storyline's own feed lives (``.atom`` or ``.json``), relative to the site root:
    named by the storyline's first story, so the address stays as later events join."""
    return f"{STORYLINE_DIR}/{storyline_id}{suffix}"


def _day(moment: datetime) -> str:
    """ "Nov 2, 2026": a date as a reader says it (no zero padding, on every platform)."""
    return f"{moment:%b} {moment.day}, {moment.year}"


def storyline_html(story: PublishedStory, site: str) -> str:
    """ "Earlier in this story" and "Later in this story": the storyline's other events, with
    their dates and links to their pages (never ``rel="related"``: those are the sources)."""
    parts = []
    for label, events in (
        ("Earlier in this story", story.earlier),
        ("Later in this story", story.later),
    ):
        if not events:
            continue
        items = "".join(
            f'<li><a href="{escape(site + story_path(e.id))}">{escape(e.headline)}</a> '
            f'<time datetime="{e.published:%Y-%m-%d}">({_day(e.published)})</time></li>'
            for e in events
        )
        parts.append(f'<h3>{label}</h3><ul class="storyline">{items}</ul>')
    if not parts or not story.storyline_id:
        return ""
    atom, json = (escape(site + storyline_feed_path(story.storyline_id, x)) for x in FEED_SUFFIXES)
    parts.append(
        f'<p class="follow"><a href="{atom}">{FOLLOW_TITLE}</a> '
        f'(Atom; also as a <a href="{json}">JSON Feed</a>)</p>'
    )
    return '<section class="storyline">' + "".join(parts) + "</section>"
