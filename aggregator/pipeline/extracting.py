"""The extract stage: each new entry's article text, from its page or else its feed."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aggregator import extract, robots
from aggregator.config import ExtractSettings, Source
from aggregator.fetch import Fetcher
from aggregator.models import ArticleText, FeedText
from aggregator.parse import strip_html
from aggregator.pipeline.reports import PAGE_ACCEPT, Progress, log
from aggregator.store import StoreType

T = TypeVar("T")


@dataclass(frozen=True)
class _Page:
    """What fetching an article page came to."""

    text: str | None = None
    error: str | None = None
    paywalled: bool = False
    image: str | None = None  # the page's og:image
    image_caption: str | None = None  # and its caption there


def article_text(page: _Page, feed: FeedText) -> ArticleText:
    """The entry's text: its page's, else its feed's own (summary or content, else its title).
    A paywalled or failed page with too little text marks the text unavailable."""
    text = page.text
    if text is None:
        text = strip_html(feed.content or feed.summary) or feed.title
    available = not page.paywalled and (page.error is None or len(text) >= extract.MIN_TEXT_CHARS)
    return ArticleText(text, page.error, available, page.image, page.image_caption)


def _round_robin(items: Sequence[T], key: Callable[[T], str]) -> list[T]:
    """Items reordered so that groups (hosts) take turns, keeping order within a group."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    out: list[T] = []
    for round_ in itertools.zip_longest(*groups.values()):
        out.extend(item for item in round_ if item is not None)
    return out


class Extracting:
    """The extract stage: one page at a time per host, politely; each entry's text stored in
    a transaction of its own."""

    def __init__(
        self,
        store: StoreType,
        sources: Sequence[Source],
        settings: ExtractSettings,
        fetcher: Callable[[], Fetcher],
        *,
        stop: threading.Event,
        progress: Progress,
    ) -> None:
        self.store = store
        self.full_text = {src.id: src.full_text for src in sources}
        self.rules = {src.id: src for src in sources if src.select or src.strip}
        self.settings = settings
        self.fetcher = fetcher
        self.stop = stop
        self.progress = progress

    def extract_pending(self) -> int:
        """Give every entry without text its article text (page, else the feed's own text).

        Pages are fetched politely: robots.txt is asked first (once per host), requests to one
        host are spaced by ``page_delay`` (or its Crawl-delay), and hosts take turns so the
        pauses overlap. A paywalled or truncated page marks the entry's text unavailable, so
        the story says so instead of passing a teaser off as the article.
        """
        pending = self.store.pages_pending()
        if not pending:
            return 0
        pending = _round_robin(pending, lambda p: robots.host_of(p.link or ""))
        with self.fetcher() as fetcher:
            rules = robots.Robots(lambda url: fetcher.get(url, max_bytes=500_000))
            pacer = robots.HostPacer(self.settings.page_delay, self.stop)
            for done, entry in enumerate(pending, start=1):
                if self.stop.is_set():
                    break
                page = _Page()
                link = entry.link
                if self.full_text.get(entry.source_id, False) and link:
                    page = self._extract_page(
                        fetcher, rules, pacer, link, self.rules.get(entry.source_id)
                    )
                decide = functools.partial(article_text, page)
                if not self.store.record_article_text(entry.entry_id, decide):
                    continue
                if page.error:
                    log.debug(
                        "entry %s (%s): extraction failed: %s", entry.entry_id, link, page.error
                    )
                self.progress("extract", done, len(pending), link or "")
        return len(pending)

    def _extract_page(
        self,
        fetcher: Fetcher,
        rules: robots.Robots,
        pacer: robots.HostPacer,
        link: str,
        source: Source | None,
    ) -> _Page:
        """The article on the page at ``link``, read with ``source``'s content rules (its
        ``strip``, then its ``select``) when it has any."""
        if not rules.allowed(link):
            return _Page(error="robots.txt disallows fetching this page")
        pacer.wait(link, rules.crawl_delay(link))
        res = fetcher.get(link, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        if res.error:
            return _Page(error=res.error)
        html = extract.decode_page(res.content or b"", res.content_type)
        if source is not None:
            html = extract.strip_elements(html, source.strip)
        marker = extract.paywall_marker(html)
        try:
            select = source.select if source is not None else None
            found = extract.extract_article(html, res.final_url, select=select)
        except extract.ExtractionError as exc:
            image = extract.page_image(html, res.final_url)  # the picture still serves
            return _Page(
                error=f"paywalled: {marker}" if marker else str(exc),
                paywalled=bool(marker),
                image=image,
                image_caption=extract.image_caption(html, image, res.final_url) if image else None,
            )
        error = f"paywalled: {marker}" if marker else None
        return _Page(found.text, error, bool(marker), found.image, found.image_caption)
