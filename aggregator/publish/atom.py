"""The Atom documents: the main feed, its RFC 5005 archive pages and the blindspot feed.

Written directly (feedgen 1.0.0 drops the attributes of entry links, and building element trees
costs more than the rest of publishing): ``_el`` escapes every text and attribute value and
drops characters XML cannot carry, and every structure is ours to check against RFC 4287:

- the feed always has an author, so no entry needs one;
- every entry has a ``link rel="alternate"`` (its page on our site) as well as its content;
- every URL is absolute; a source link that is not absolute http(s) is left out.

The first entry of the main feed is pinned: "Latest Headlines" lists the newest headlines and
carries the one-line status notice when sources are failing (only there: the subtitle stays
the site's own).
Older stories live in archive pages (``archive/N.atom``, 1 the oldest) chained with
``prev-archive`` / ``next-archive`` links, so the main feed stays ``feed_size`` stories long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from html import escape

from aggregator import __version__
from aggregator.config import PublishSettings
from aggregator.models import LeadImage, PublishedStory, RetiredStory, SourceStatus
from aggregator.publish.media import MEDIA_NS, shown_image
from aggregator.publish.sanitize import safe_url
from aggregator.publish.story import (
    FOLLOW_TITLE,
    LEAN_LABELS,
    STORYLINE_SCHEME,
    all_down,
    atom_id,
    status_notice,
    story_path,
    storyline_feed_path,
)
from aggregator.related import blindspot_side

ATOM_FILE = "balanced.atom"
BLINDSPOT_FILE = "blindspot.atom"
ARCHIVE_DIR = "archive"
ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
AT_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
ATOM_TYPE = "application/atom+xml"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str | None) -> str:
    """``text`` without the characters XML 1.0 cannot carry (a feed may send any of them)."""
    return _NOT_XML.sub("", text or "")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_path(page: int) -> str:
    return f"{ARCHIVE_DIR}/{page}.atom"


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(xml_text(v), quote=True)}"' for k, v in attrs.items())


def _el(tag: str, text: str | None = None, depth: int = 1, **attrs: str) -> str:
    """One element on its own line; text and attribute values are XML-escaped here."""
    pad = "  " * depth
    if text is None:
        return f"{pad}<{tag}{_attrs(attrs)}/>\n"
    return f"{pad}<{tag}{_attrs(attrs)}>{escape(xml_text(text), quote=False)}</{tag}>\n"


def _link(href: str, rel: str, type_: str | None = None, depth: int = 1, **attrs: str) -> str:
    return _el(
        "link", None, depth, href=href, rel=rel, **({"type": type_} if type_ else {}), **attrs
    )


def _media(image: LeadImage) -> list[str]:
    """The lead image as Media RSS: a thumbnail for list views, the content with its credit
    (the outlet) and its alt text for readers that show more."""
    return [
        _el("media:thumbnail", None, 2, url=image.url),
        f"    <media:content{_attrs({'url': image.url, 'medium': 'image'})}>\n",
        _el("media:credit", image.credit, 3),
        _el("media:description", image.alt, 3, type="plain"),
        "    </media:content>\n",
    ]


@lru_cache(maxsize=8192)
def _story_entry(
    story: PublishedStory,
    site: str,
    content: str,
    mark_blindspot: bool,
    image: LeadImage | None = None,
) -> str:
    """A story's entry (cached: an unchanged story costs a lookup on the next publish).

    ``mark_blindspot`` adds a ``blindspot`` category to a one-sided story: in the main feed
    and archives, where it stands among all stories (every entry of the blindspot feed is one).
    ``image`` is the lead image as shown (``media.shown_image``), as Media RSS.
    """
    parts = [
        "  <entry>\n",
        _el("id", atom_id(story.id), 2),
        _el("title", story.headline, 2, type="text"),
        _link(site + story_path(story.id), "alternate", "text/html", 2),
    ]
    if story.storyline_id:  # the storyline's own feed: an alternate of another type
        follow = site + storyline_feed_path(story.storyline_id)
        parts.append(_link(follow, "alternate", ATOM_TYPE, 2, title=FOLLOW_TITLE))
    parts += [
        _el("published", rfc3339(story.published), 2),
        _el("updated", rfc3339(story.updated), 2),
        _el("summary", story.summary, 2, type="text"),
        _el("content", content, 2, type="html"),
    ]
    parts.extend(
        _el(
            "category", None, 2, term=lean, label=LEAN_LABELS.get(lean, lean), scheme=f"{site}leans"
        )
        for lean in story.leans
    )
    if story.storyline_id:
        first = story.earlier[0].headline if story.earlier else story.headline
        parts.append(
            _el("category", None, 2, term=story.storyline_id, label=first, scheme=STORYLINE_SCHEME)
        )
    if mark_blindspot and blindspot_side(story.leans, story.notes):
        parts.append(
            _el("category", None, 2, term="blindspot", label="Blindspot", scheme=f"{site}coverage")
        )
    for link in story.related:
        url = safe_url(link.url)
        if url:
            parts.append(_link(url, "related", "text/html", 2, title=link.outlet))
    if image is not None:
        parts.extend(_media(image))
    parts.append("  </entry>\n")
    return "".join(parts)


def _front_html(stories: Sequence[PublishedStory], notice: str, headlines: int, site: str) -> str:
    parts = []
    if notice:
        parts.append(f'<p class="status">{escape(notice)}</p>')
    parts.append('<h3>Latest Headlines</h3><ul class="headlines">')
    parts.extend(
        f'<li><a href="{escape(site + story_path(s.id))}">{escape(s.headline)}</a></li>'
        for s in stories[:headlines]
    )
    parts.append("</ul>")
    return "".join(parts)


def _feed(
    settings: PublishSettings,
    feed_id: str,
    title: str,
    subtitle: str,
    self_path: str,
    updated: datetime,
    links: Sequence[tuple[str, str]] = (),
    archive: bool = False,
    tombstones: bool = False,
    media: bool = False,
) -> list[str]:
    """The document's opening and feed-level elements, as a list to append entries to
    (``media``: some entry has a lead image, in the Media RSS namespace)."""
    site = settings.site_url
    fh = f' xmlns:fh="{FH_NS}"' if archive else ""
    at = f' xmlns:at="{AT_NS}"' if tombstones else ""
    mrss = f' xmlns:media="{MEDIA_NS}"' if media else ""
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<feed xmlns="{ATOM_NS}"{fh}{at}{mrss} xml:lang="en">\n',
        _el("id", feed_id),
        _el("title", title, type="text"),
        _el("subtitle", subtitle, type="text"),
        _link(site + self_path, "self", ATOM_TYPE),
        _link(site, "alternate", "text/html"),
    ]
    if settings.hub:
        parts.append(_link(settings.hub, "hub"))
    parts.extend(_link(site + path, rel, ATOM_TYPE) for rel, path in links)
    parts += [
        "  <author>\n",
        _el("name", settings.title, 2),
        _el("uri", site, 2),
        "  </author>\n",
        _el("generator", "balanced-news", version=__version__),
        _el("updated", rfc3339(updated)),
    ]
    if archive:
        parts.append("  <fh:archive/>\n")
    return parts


def _has_media(stories: Sequence[PublishedStory], settings: PublishSettings) -> bool:
    return any(shown_image(s, settings) for s in stories)


def _finish(
    parts: list[str],
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None,
    mark_blindspot: bool = True,
) -> bytes:
    """Append the story entries (cleaned content when given) and close the document."""
    site = settings.site_url
    parts.extend(
        _story_entry(
            s,
            site,
            (contents or {}).get(s.id, s.content_html),
            mark_blindspot,
            shown_image(s, settings),
        )
        for s in stories
    )
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")


def _tombstone(retired: RetiredStory, site: str) -> str:
    """``at:deleted-entry`` for a merged story, linking the story it is now part of."""
    attrs = _attrs({"ref": atom_id(retired.id), "when": rfc3339(retired.when)})
    return (
        f"  <at:deleted-entry{attrs}>\n"
        + _link(site + story_path(retired.merged_into), "related", "text/html", 2)
        + _el("at:comment", f"Now part of the story: {retired.headline}", 2)
        + "  </at:deleted-entry>\n"
    )


def _latest(stories: Sequence[PublishedStory], fallback: datetime | None) -> datetime:
    return max((s.updated for s in stories), default=fallback or datetime.now(UTC))


def build_atom(
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    failing: Sequence[SourceStatus] = (),
    now: datetime | None = None,
    *,
    prev_archive: str | None = None,
    contents: dict[str, str] | None = None,
    retired: Sequence[RetiredStory] = (),
    total_sources: int = 0,
) -> bytes:
    """The main Atom document: a pinned "Latest Headlines" entry, then the stories, newest first.

    The pinned entry carries the status line (``total_sources``: how many are enabled, for
    "3 of 44 sources are down"), the subtitle never does.

    ``contents`` maps story ids to their sanitized HTML (the caller cleans once for every
    output); without it each story's ``content_html`` is used as stored. ``retired`` stories
    (merged into another) are withdrawn with RFC 6721 tombstones, so that readers which
    support them drop the old entry instead of showing the story twice.
    """
    site = settings.site_url
    notice = status_notice(failing, total_sources)
    # The feed changes only when its content does: newest story change or newest outage.
    updated = max([s.updated for s in stories] + [s.since for s in failing], default=None)
    updated = updated or now or datetime.now(UTC)
    feed = _feed(
        settings,
        atom_id(f"feed:{site}"),
        settings.title,
        settings.subtitle,
        ATOM_FILE,
        updated,
        [("prev-archive", prev_archive)] if prev_archive else (),
        tombstones=bool(retired),
        media=_has_media(stories, settings),
    )
    feed += [_tombstone(r, site) for r in retired]  # extension elements come before entries
    feed += [
        "  <entry>\n",
        _el("id", atom_id("front"), 2),
        _el("title", "Latest Headlines" + _down_mark(failing, total_sources), 2),
        _link(site, "alternate", "text/html", 2),
        _el("updated", rfc3339(updated), 2),
        _el("content", _front_html(stories, notice, settings.headlines, site), 2, type="html"),
        "  </entry>\n",
    ]
    return _finish(feed, stories, settings, contents)


def _down_mark(failing: Sequence[SourceStatus], total: int) -> str:
    if all_down(failing, total):
        return " (every source is down)"
    return " (some sources are down)" if failing else ""


def build_blindspot(
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None = None,
    now: datetime | None = None,
) -> bytes:
    """The blindspot feed: the given stories (covered by one side only), newest first."""
    site = settings.site_url
    feed = _feed(
        settings,
        atom_id(f"blindspot:{site}"),
        f"{settings.title}: Blindspot",
        "Stories covered by outlets on one side of the spectrum only.",
        BLINDSPOT_FILE,
        _latest(stories, now),
        media=_has_media(stories, settings),
    )
    return _finish(feed, stories, settings, contents, mark_blindspot=False)


def build_storyline(
    storyline_id: str,
    stories: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None = None,
) -> bytes:
    """A storyline's own feed (``storylines/<id>.atom``): every event of one developing story,
    newest first, so a reader can follow it alone. Its id derives from the storyline's, which
    is its first story's: stable as later events join."""
    feed = _feed(
        settings,
        atom_id(f"storyline:{settings.site_url}{storyline_id}"),
        f"{settings.title}: {stories[-1].headline}",
        f"Every event of this story as it develops, from {settings.title}.",
        storyline_feed_path(storyline_id),
        _latest(stories, None),
        media=_has_media(stories, settings),
    )
    return _finish(feed, stories, settings, contents)


def build_archives(
    older: Sequence[PublishedStory],
    settings: PublishSettings,
    contents: dict[str, str] | None = None,
) -> list[tuple[str, bytes]]:
    """RFC 5005 archive pages for the stories older than the main feed's, oldest page first.

    ``older`` is newest first (as the main feed). Page 1 holds the oldest ``feed_size`` stories,
    so a page, once full, keeps its stories for as long as they keep their order.
    """
    size = settings.feed_size
    oldest_first = list(reversed(older))
    pages = [oldest_first[i : i + size] for i in range(0, len(oldest_first), size)]
    documents = []
    for number, page in enumerate(pages, start=1):
        links = [("current", ATOM_FILE)]
        if number > 1:
            links.append(("prev-archive", archive_path(number - 1)))
        if number < len(pages):
            links.append(("next-archive", archive_path(number + 1)))
        newest_first = list(reversed(page))
        feed = _feed(
            settings,
            atom_id(f"archive:{settings.site_url}:{number}"),
            f"{settings.title} (archive page {number})",
            settings.subtitle,
            archive_path(number),
            _latest(newest_first, None),
            links,
            archive=True,
            media=_has_media(newest_first, settings),
        )
        documents.append((archive_path(number), _finish(feed, newest_first, settings, contents)))
    return documents
