"""JSON Feed 1.1 (``balanced.json``): the main feed's stories, with the same ids.

Titles and summaries are plain text by the JSON Feed spec; ``content_html`` is the sanitized
fragment. ``<``, ``>`` and ``&`` are written as ``\\u`` escapes, so the document is inert even
when someone pastes it into an HTML page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aggregator.config import PublishSettings
from aggregator.models import PublishedStory, SourceStatus, StorylineEvent
from aggregator.publish.atom import rfc3339
from aggregator.publish.media import shown_image
from aggregator.publish.sanitize import safe_url
from aggregator.publish.story import (
    FOLLOW_TITLE,
    LEAN_LABELS,
    STORYLINE_SCHEME,
    atom_id,
    note_json,
    status_notice,
    story_path,
    storyline_feed_path,
)

JSON_FEED_FILE = "balanced.json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_INERT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _item(story: PublishedStory, settings: PublishSettings, content: str) -> dict[str, object]:
    site = settings.site_url
    image = shown_image(story, settings)
    sources = [
        {"url": url, "outlet": link.outlet, "lean": link.lean}
        | ({"owner": link.owner} if link.owner else {})
        for link in story.related
        for url in [safe_url(link.url)]
        if url
    ]
    return {
        "id": atom_id(story.id),
        "url": site + story_path(story.id),
        "title": story.headline,
        "summary": story.summary,
        "content_html": content,
        **({"image": image.url} if image else {}),
        "date_published": rfc3339(story.published),
        "date_modified": rfc3339(story.updated),
        "tags": [LEAN_LABELS.get(lean, lean) for lean in story.leans],
        "_balanced_news": {
            # JSON Feed's image has no credit or alt text: they are ours to carry.
            **({"image": {"credit": image.credit, "alt": image.alt}} if image else {}),
            "leans": list(story.leans),
            "sources": sources,
            # Each side the story has no article of: not covered (the search found nothing),
            # or a related angle (the article the search found, not joined to the story).
            "coverage": [note_json(n) for n in story.notes],
            **({"storyline": _storyline(story, site)} if story.storyline_id else {}),
        },
    }


def _storyline(story: PublishedStory, site: str) -> dict[str, object]:
    """The story's storyline (our extension): its id, and the other events, oldest first."""

    def event(e: StorylineEvent) -> dict[str, str]:
        return {
            "id": atom_id(e.id),
            "url": site + story_path(e.id),
            "title": e.headline,
            "date_published": rfc3339(e.published),
        }

    return {
        "id": story.storyline_id,
        "scheme": STORYLINE_SCHEME,
        "earlier": [event(e) for e in story.earlier],
        "later": [event(e) for e in story.later],
        # Its own feeds, to follow it ("Follow this story"): the same in Atom and JSON Feed.
        "feed_url": site + storyline_feed_path(story.storyline_id, ".json"),
        "atom_url": site + storyline_feed_path(story.storyline_id, ".atom"),
    }


def build_json_feed(
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    failing: Sequence[SourceStatus] = (),
    contents: dict[str, str] | None = None,
    total_sources: int = 0,
) -> bytes:
    """The JSON Feed document for ``stories`` (newest first). The status line, when sources
    are down, is its own top-level ``_balanced_news_status`` (JSON Feed's extension form),
    never glued to the description."""
    site = settings.site_url
    notice = status_notice(failing, total_sources)
    doc = _document(settings, settings.title, site, JSON_FEED_FILE, settings.subtitle)
    if notice:
        doc["_balanced_news_status"] = {"about": site, "notice": notice}
    if settings.hub:
        doc["hubs"] = [{"type": "WebSub", "url": settings.hub}]
    return _finish(doc, stories, settings, contents)


def build_storyline_json(
    storyline_id: str,
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None = None,
) -> bytes:
    """A storyline's own JSON Feed (``storylines/<id>.json``): the same events, ids and items
    as its Atom feed, newest first."""
    return _finish(
        _document(
            settings,
            f"{settings.title}: {stories[-1].headline}",
            settings.site_url + story_path(stories[0].id),
            storyline_feed_path(storyline_id, ".json"),
            f"{FOLLOW_TITLE}: every event of it as it develops, from {settings.title}.",
        ),
        stories,
        settings,
        contents,
    )


def _document(
    settings: PublishSettings, title: str, home: str, path: str, description: str
) -> dict[str, object]:
    site = settings.site_url
    return {
        "version": JSON_FEED_VERSION,
        "title": title,
        "home_page_url": home,
        "feed_url": site + path,
        "description": description,
        "language": "en",
        "authors": [{"name": settings.title, "url": site}],
    }


def _finish(
    doc: dict[str, object],
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None,
) -> bytes:
    """The document with ``stories`` as its items, as inert UTF-8 JSON."""
    doc["items"] = [_item(s, settings, (contents or {}).get(s.id, s.content_html)) for s in stories]
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_INERT).encode("utf-8", "replace") + b"\n"
