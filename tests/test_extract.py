"""Article pages to text and metadata, with the site's navigation, ads and footer left out."""

from __future__ import annotations

import pytest

from aggregator.demo import SampleWeb
from aggregator.extract import ExtractionError, extract_article
from aggregator.parse import parse_feed
from tests.conftest import FIXTURES

BOILERPLATE = ("Advertisement", "newsletter", "cookie", "©", "All rights reserved")


def article_pages() -> list[str]:
    return sorted(
        str(p.relative_to(FIXTURES / "site")) for p in (FIXTURES / "site").glob("*/articles/*.html")
    )


@pytest.mark.parametrize("page", article_pages())
def test_article_text_without_boilerplate(web: SampleWeb, page: str) -> None:
    found = extract_article(web.body(page) or b"", web.url(page))
    assert len(found.text) > 500
    for marker in BOILERPLATE:
        assert marker.lower() not in found.text.lower(), marker
    assert found.title


def test_metadata_matches_the_feed(web: SampleWeb) -> None:
    entry = parse_feed(web.body("alpha/rss.xml") or b"").entries[0]
    assert entry.link is not None
    page = entry.link.removeprefix(web.base + "/")
    found = extract_article(web.body(page) or b"", entry.link)
    assert found.title and found.title.split()[0] in entry.title
    assert found.author and found.date and found.date.startswith("2026-11")
    assert found.image and found.image.startswith(web.base)


def test_pages_without_an_article_are_an_error() -> None:
    with pytest.raises(ExtractionError, match="empty page"):
        extract_article(b"  ")
    with pytest.raises(ExtractionError):
        extract_article((FIXTURES / "feeds" / "not-a-feed.html").read_bytes())
