"""Article text and metadata from a page, with trafilatura.

Kept apart from fetching so that ``balanced-news extract FILE`` and the pipeline run the very
same code on the very same bytes.
"""

from __future__ import annotations

import trafilatura

from aggregator.models import Extracted

MIN_TEXT_CHARS = 200  # below this we say extraction failed and fall back to the feed's text


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
