"""Article text and metadata from a page, with trafilatura.

Kept apart from fetching so that ``balanced-news extract FILE`` and the pipeline run the very
same code on the very same bytes.
"""

from __future__ import annotations

import re

import trafilatura

from aggregator.models import Extracted

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


def paywall_marker(html: bytes | str) -> str | None:
    """Why a page looks paywalled (schema.org ``isAccessibleForFree: false`` or a
    subscribe-to-continue phrase), or None; so a teaser is never passed off as the article."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    if _NOT_FREE_RE.search(html):
        return "page marked isAccessibleForFree: false"
    lowered = " ".join(html.lower().split())
    for phrase in PAYWALL_PHRASES:
        if phrase in lowered:
            return f"paywall notice ({phrase!r})"
    return None


class ExtractionError(Exception):
    """The page gave no usable article text."""


def extract_article(html: bytes | str, url: str | None = None) -> Extracted:
    """Extract the main text and metadata of an article page.

    Raises :class:`ExtractionError` when there is no text worth using, so callers record why
    and use the feed's own summary instead.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    if not html.strip():
        raise ExtractionError("empty page")
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            favor_precision=True,
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on hostile markup
        raise ExtractionError(f"extraction crashed: {exc}") from None
    if doc is None:
        raise ExtractionError("no article text found")
    data = doc if isinstance(doc, dict) else doc.as_dict()
    text = (data.get("text") or "").strip()
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionError(f"article text too short ({len(text)} characters)")
    return Extracted(
        text=text,
        title=data.get("title") or None,
        author=data.get("author") or None,
        date=data.get("date") or None,
        image=data.get("image") or None,
    )
