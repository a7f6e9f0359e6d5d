"""Publishing: every output we write, from the same stories, cleaned by the same sanitizer.

``publish_site`` writes, into the output folder:

- ``balanced.atom`` (the newest ``feed_size`` stories) and ``archive/N.atom`` (RFC 5005 pages
  for the older ones), ``blindspot.atom`` (stories one side only covered, where the search
  for the other side's coverage found nothing: ``related.py``);
- ``balanced.json`` (JSON Feed 1.1, the same stories and ids as ``balanced.atom``);
- ``index.html``, ``stories/<id>.html`` and ``style.css`` (the readable site);
- ``sources.opml`` (our sources, for other readers);
- ``storylines/<id>.atom`` and ``.json``: each storyline's own feeds (its events, newest
  first), which every entry and page of it links as "Follow this story".

Each story's HTML is cleaned once (:func:`sanitize.clean_html`) and that one result goes into
every format. Each file is written atomically and only when its bytes change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aggregator.config import PublishSettings, Source
from aggregator.models import PublishedStory, RetiredStory, SourceStatus
from aggregator.publish import atom, html, jsonfeed, opml
from aggregator.publish.atom import ATOM_FILE, BLINDSPOT_FILE, build_atom
from aggregator.publish.files import write_atomic, write_many
from aggregator.publish.jsonfeed import JSON_FEED_FILE, build_storyline_json
from aggregator.publish.sanitize import clean_html, safe_url
from aggregator.publish.story import (
    LEAN_LABELS,
    STORYLINE_DIR,
    atom_id,
    coverage_line,
    render_story_html,
    rendered,
    shown_hash,
    status_notice,
    story_path,
    storyline_feed_path,
    storyline_html,
)
from aggregator.related import blindspot_side

__all__ = [
    "ATOM_FILE",
    "BLINDSPOT_FILE",
    "JSON_FEED_FILE",
    "LEAN_LABELS",
    "PublishResult",
    "atom_id",
    "build_atom",
    "clean_html",
    "coverage_line",
    "publish_site",
    "render_story_html",
    "rendered",
    "safe_url",
    "shown_hash",
    "status_notice",
    "story_path",
    "write_atomic",
]


@dataclass
class PublishResult:
    """What a publish wrote: the main feed's path, the feeds' URLs (for WebSub), file counts."""

    feed_path: Path
    topics: list[str] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    removed: int = 0


def publish_site(
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    failing: Sequence[SourceStatus],
    out_dir: Path,
    sources: Sequence[Source],
    now: datetime,
    retired: Sequence[RetiredStory] = (),
) -> PublishResult:
    """Write every output for ``stories`` (all of them, newest first) into ``out_dir``;
    ``retired`` stories get a tombstone in the main feed and a page pointing onwards."""
    site = settings.site_url
    contents = {s.id: clean_html(s.content_html + storyline_html(s, site)) for s in stories}
    total = sum(1 for s in sources if s.enabled)  # for "3 of 44 sources are down"
    current, older = stories[: settings.feed_size], stories[settings.feed_size :]
    archives = atom.build_archives(older, settings, contents)
    blind = [s for s in stories if blindspot_side(s.leans, s.notes)][: settings.feed_size]
    views = [html.story_view(s, contents[s.id], settings) for s in stories]
    files: list[tuple[str, bytes]] = [
        (html.STYLE_FILE, html.stylesheet()),
        *archives,
        *html.render_story_pages(views, settings, failing, total),
        *html.render_retired_pages(retired, settings, failing, total),
        (JSON_FEED_FILE, jsonfeed.build_json_feed(current, settings, failing, contents, total)),
        (BLINDSPOT_FILE, atom.build_blindspot(blind, settings, contents, now)),
        (opml.OPML_FILE, opml.build_opml(sources, settings, now)),
        *_storyline_feeds(stories, settings, contents),
        (
            html.INDEX_FILE,
            html.render_index(views[: settings.feed_size], settings, failing, total),
        ),
        # Last, so a reader who sees the new main feed finds every page it links to.
        (
            ATOM_FILE,
            build_atom(
                current,
                settings,
                failing,
                now,
                prev_archive=archives[-1][0] if archives else None,
                contents=contents,
                retired=retired,
                total_sources=total,
            ),
        ),
    ]
    result = PublishResult(feed_path=out_dir / ATOM_FILE)
    result.written = write_many(out_dir, files)
    result.unchanged = len(files) - result.written
    result.removed = _remove_stale(out_dir, {name for name, _ in files})
    result.topics = [site + ATOM_FILE, site + JSON_FEED_FILE, site + BLINDSPOT_FILE]
    return result


def _storyline_feeds(
    stories: Sequence[PublishedStory], settings: PublishSettings, contents: dict[str, str]
) -> list[tuple[str, bytes]]:
    """Each storyline's own Atom feed and JSON Feed, from all its published events."""
    lines: dict[str, list[PublishedStory]] = {}
    for story in stories:  # newest first, and so is each storyline
        if story.storyline_id:
            lines.setdefault(story.storyline_id, []).append(story)
    files = []
    for line_id, events in sorted(lines.items()):
        files.append(
            (
                storyline_feed_path(line_id),
                atom.build_storyline(line_id, events, settings, contents),
            )
        )
        files.append(
            (
                storyline_feed_path(line_id, ".json"),
                build_storyline_json(line_id, events, settings, contents),
            )
        )
    return files


def _remove_stale(out_dir: Path, keep: set[str]) -> int:
    """Drop story pages, archive pages and storyline feeds of stories that are gone (pruned)."""
    removed = 0
    for folder, suffix in (
        ("stories", ".html"),
        (atom.ARCHIVE_DIR, ".atom"),
        (STORYLINE_DIR, ".atom"),
        (STORYLINE_DIR, ".json"),
    ):
        for path in (out_dir / folder).glob(f"*{suffix}"):
            if f"{folder}/{path.name}" not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
