"""feedparser output to normalized :class:`FeedEntry` values.

We hand feedparser the bytes we fetched (never the URL) so that our fetcher's limits, timeouts
and address checks are the only road to the network.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import hashlib
import html
import os
import pickle
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import feedparser
import feedparser.mixin

from aggregator import fastfeed
from aggregator.models import FeedEntry, ParsedFeed
from aggregator.text import caption_text

_TAG_RE = re.compile(r"<[^>]+>")
# Blocks whose content is not text: dropped whole, since feedparser no longer sanitizes.
_HIDDEN_RE = re.compile(
    r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
)
# feedparser's HTML sanitizing and relative-URI resolution cost about 45% of its parse time.
# Nothing a feed says is published as HTML here (text is extracted, and publish escapes and
# sanitizes with nh3 at output), so both are off. Entry links are still made absolute.
FEEDPARSER_OPTIONS = {"sanitize_html": False, "resolve_relative_uris": False}
_SPACE_RE = re.compile(r"\s+")


def _memoized(join: Any) -> Any:
    """``join`` with its answers remembered (it is a pure function of two strings).

    feedparser makes the document's base URI absolute again on *every* start tag
    (``make_safe_absolute_uri(base, base)``, a ``urljoin`` each time): about a quarter of its
    parse time for a feed with a Content-Location. The answers are the same for the same
    arguments, so remembering them changes no result.
    """
    cached = functools.lru_cache(maxsize=4096)(join)

    @functools.wraps(join)
    def safe_join(base: Any, rel: Any = None) -> Any:
        try:
            return cached(base, rel)
        except TypeError:  # an unhashable argument: not remembered
            return join(base, rel)

    return safe_join


class _MemoizedJoin:
    """Who wants feedparser's base-URI join memoized (see :func:`_memoized`) in this process.

    Importing this module changes nothing in feedparser. A parser worker installs the memoized
    join for its whole life (:func:`serve`); a parse run in any other process holds it only
    while it runs (:func:`memoized_base_uris`): the first holder in installs it, the last one
    out puts feedparser's own back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._original: Any = None

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders > 1:
                return
            join = getattr(feedparser.mixin, "make_safe_absolute_uri", None)
            if join is not None and not hasattr(join, "__wrapped__"):  # absent elsewhere: skip
                self._original = join
                feedparser.mixin.make_safe_absolute_uri = _memoized(join)

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._original is not None:
                feedparser.mixin.make_safe_absolute_uri = self._original
                self._original = None


_MEMOIZED_JOIN = _MemoizedJoin()


@contextlib.contextmanager
def memoized_base_uris() -> Iterator[None]:
    """feedparser's base-URI join memoized while inside (in this process, for every thread:
    the answers are the same, only faster); feedparser's own join is back once the last
    holder leaves."""
    _MEMOIZED_JOIN.hold()
    try:
        yield
    finally:
        _MEMOIZED_JOIN.release()


# A picture's caption. feedparser files media:description as the entry's summary or one more
# "content" (whichever it lacks), and media:title as a title it then mostly drops, so the
# caption cannot be told from the article's own text in its result. These hooks leave that
# as it is and keep a copy of each one's text where the caption belongs: on the media:content
# it stands in (that picture's), else on the entry (its pictures', as in a media:group).
_MEDIA_TEXTS = {"description": "media_description", "title": "media_title"}


def _pieces_text(parser: Any) -> str:
    """The text of the element feedparser is reading, as it has it so far (unprocessed)."""
    stack = parser.elementstack
    pieces = stack[-1][2] if stack else []
    return "".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in pieces)


def _keeping_text(end: Any, key: str) -> Any:
    def end_kept(self: Any) -> None:
        text = _pieces_text(self)
        end(self)
        if not (self.inentry and not self.insource and text.strip()):
            return
        entry = self.entries[-1]
        media = entry.get("media_content") if getattr(self, "_in_media_content", False) else None
        (media[-1] if media else entry).setdefault(key, text)

    return end_kept


def _keeping_place(start: Any, inside: bool) -> Any:
    def mark(self: Any, *attrs_d: Any) -> None:
        if start is not None:
            start(self, *attrs_d)
        self._in_media_content = inside

    return mark


_Mixin = getattr(feedparser.mixin, "_FeedParserMixin", None)
if _Mixin is not None and not hasattr(_Mixin, "_in_media_content"):  # once; another version: no
    _Mixin._in_media_content = False
    for _name, _key in _MEDIA_TEXTS.items():
        _end = getattr(_Mixin, f"_end_media_{_name}", None)
        if _end is not None:
            setattr(_Mixin, f"_end_media_{_name}", _keeping_text(_end, _key))
    _Mixin._start_media_content = _keeping_place(_Mixin._start_media_content, True)
    _Mixin._end_media_content = _keeping_place(None, False)


def strip_html(value: str | None) -> str:
    """Plain text from a feed's HTML snippet (tags dropped, entities decoded, space folded)."""
    if not value:
        return ""
    value = _HIDDEN_RE.sub(" ", value)
    return _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", value))).strip()


def _utc(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _caption(*holders: Any) -> str | None:
    """The first caption the holders give (a media:content, the entry; an enclosure's title),
    as plain text: media:description before media:title. Stripped twice: the text is as the
    parser read it, which for the loose parser still has the XML's entities ("&lt;b&gt;" where
    the strict one gives "<b>")."""
    for key in ("media_description", "media_title", "title"):
        for holder in holders:
            found = caption_text(strip_html(strip_html(holder.get(key))))
            if found:
                return found
    return None


def _image(entry: Any) -> tuple[str | None, str | None]:
    """The entry's picture and its caption: an image media:content (its own caption, else the
    entry's media text), else one of unknown kind, a thumbnail (the entry's media text), an
    image enclosure (its title) or an iTunes-style image."""
    contents = entry.get("media_content", []) or []
    for media in contents:
        url = media.get("url")
        if url and (
            media.get("medium") == "image" or str(media.get("type", "")).startswith("image/")
        ):
            return url, _caption(media, _media_texts(entry))
    for media in contents:
        if media.get("url") and not media.get("medium") and not media.get("type"):
            return media["url"], _caption(media, _media_texts(entry))
    for thumb in entry.get("media_thumbnail", []) or []:
        if thumb.get("url"):
            return thumb["url"], _caption(_media_texts(entry))
    for link in entry.get("links", []) or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href"), _caption(link)
    image = entry.get("image")
    if isinstance(image, dict) and image.get("href"):
        return image["href"], None
    return None, None


def _media_texts(entry: Any) -> dict[str, str]:
    """The entry's own media:description and media:title (not its title: that is the article's)."""
    return {key: entry[key] for key in _MEDIA_TEXTS.values() if entry.get(key)}


def _content(entry: Any) -> str | None:
    contents = entry.get("content") or []
    best = None
    for item in contents:
        value = item.get("value")
        if value and (best is None or len(value) > len(best)):
            best = value
    return best


def entry_key(guid: str | None, link: str | None, title: str, summary: str | None) -> str:
    """Identity of an entry within its source: guid, else link, else a hash of its text."""
    if guid and guid.strip():
        return guid.strip()
    if link and link.strip():
        return link.strip()
    digest = hashlib.sha256(f"{title}\n{summary or ''}".encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def entry_ident(link: str | None, title: str) -> str | None:
    """Link and title together: the same article even when a feed changes its guids.

    None without a link (a title alone is too weak to merge two entries on).
    """
    if not link or not link.strip():
        return None
    return hashlib.sha256(f"{link.strip()}\n{title.strip()}".encode()).hexdigest()[:32]


def parse_feed(
    content: bytes,
    *,
    url: str = "",
    content_type: str | None = None,
    max_entries: int = 500,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one fetched feed document.

    ``error`` is set only when no entry could be read (invalid XML, HTML instead of a feed, an
    empty body); a feed that is merely sloppy keeps its entries and gets a ``warning``. ``fast``:
    plain RSS 2.0 is read by :mod:`aggregator.fastfeed` (feedparser's result, faster). There is
    no time limit here: the pipeline parses in worker processes
    (:class:`aggregator.pipeline.parsing.ParserPool`) and ends one that overruns its deadline.
    """
    if not content.strip():
        return ParsedFeed(title=None, entries=(), error="empty response (no feed document)")
    parsed = fastfeed.parse(content, url, content_type) if fast else None
    if parsed is None:
        headers = {"content-location": url} if url else {}
        if content_type:
            headers["content-type"] = content_type
        with memoized_base_uris():
            parsed = feedparser.parse(content, response_headers=headers, **FEEDPARSER_OPTIONS)
    return _normalized(parsed, max_entries)


def _normalized(parsed: Any, max_entries: int) -> ParsedFeed:
    """feedparser's (or the fast path's) result as our :class:`ParsedFeed`."""
    problem = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        problem = str(exc).splitlines()[0] if exc else "malformed feed"
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    for raw in parsed["entries"][:max_entries]:
        title = strip_html(raw.get("title")) or "(untitled)"
        link = raw.get("link") or None
        summary = raw.get("summary") or None
        key = entry_key(raw.get("id"), link, title, summary)
        if key in seen:  # the same guid twice in one document: keep the first
            continue
        seen.add(key)
        author = strip_html(raw.get("author")) or None
        published = _utc(dict.get(raw, "published_parsed"))  # no feedparser fallbacks
        updated = _utc(dict.get(raw, "updated_parsed"))
        image, image_caption = _image(raw)
        entries.append(
            FeedEntry(
                key=key,
                link=link,
                title=title,
                author=author,
                published=published or updated,
                updated=updated or published,
                summary=summary,
                content=_content(raw),
                image=image,
                image_caption=image_caption,
            )
        )
    feed_title = strip_html(parsed["feed"].get("title")) or None
    ttl = str(parsed["feed"].get("ttl") or "").strip()
    ttl_minutes = int(ttl) if ttl.isdigit() else None
    if not entries:
        if problem:
            return ParsedFeed(title=feed_title, entries=(), error=f"invalid feed: {problem}")
        if not parsed.get("version"):
            return ParsedFeed(title=feed_title, entries=(), error="not an RSS or Atom feed")
    return ParsedFeed(
        title=feed_title, entries=tuple(entries), warning=problem, ttl_minutes=ttl_minutes
    )


def serve(conn: Connection, parent: int) -> None:
    """A parser worker process's life (:class:`aggregator.pipeline.parsing.ParserPool` starts
    it): set up this process, then run each job read from ``conn`` and send back its answer
    (or the exception it raised), until ``conn`` closes or ``parent`` is gone.

    The set-up is the worker's own, never its parent's: feedparser's base-URI join memoized for
    the worker's life, Ctrl-C left to the parent (which ends its workers), and a watch on the
    parent (:func:`exit_with`). A job and its answer are pickled; a job is a callable taking
    no argument (a ``functools.partial`` of :func:`parse_feed`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _MEMOIZED_JOIN.hold()
    exit_with(parent)
    try:
        conn.send_bytes(b"")  # ready: a document's deadline starts after this
    except OSError:
        return
    while True:
        try:
            job = conn.recv_bytes()
        except (EOFError, OSError):  # the parent closed its end, or is gone
            return
        try:
            answer: tuple[bool, object] = (True, pickle.loads(job)())
        except Exception as exc:  # noqa: BLE001 - raised again in the parent
            answer = (False, exc)
        try:
            reply = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot travel
            reply = pickle.dumps(
                (False, RuntimeError(f"the parser's answer cannot be sent: {exc}"))
            )
        try:
            conn.send_bytes(reply)
        except OSError:
            return


def exit_with(parent: int, every: float = 1.0) -> None:
    """Part of a parser worker's set-up (:func:`serve`): end this worker once ``parent`` is gone.

    A SIGKILLed parent never ends its workers (children of the forkserver, not of the parent).
    Its end of a worker's pipe closes with it, which :func:`serve` notices between two jobs, but
    a parse under way would run on to its end first; this watch ends the worker within
    ``every`` seconds, so no orphan keeps the forkserver and the resource tracker alive.
    """

    def watch() -> None:
        while True:
            time.sleep(every)
            if not _alive(parent):
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed process its own parent has not reaped yet (a zombie)
    counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:  # no /proc (not Linux): the signal said it runs
        return True
