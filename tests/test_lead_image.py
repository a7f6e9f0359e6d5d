"""The lead image: a news article's over an opinion piece's, the first reporter's first, only an
address the publisher's link check accepts, read against the article's own link."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from aggregator.lead_image import lead_image
from aggregator.models import LeadImage, StoryArticle
from aggregator.publish import safe_url

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def usable(url: str) -> bool:
    return safe_url(url) is not None


def article(n: int, kind: str = "news", image: str | None = None, **fields: object):
    base = StoryArticle(
        entry_id=n,
        source_id=f"s{n}",
        source_name=f"Outlet {n}",
        lean="center",
        kind=kind,
        title=f"Headline {n} - Outlet {n}",
        link=f"https://outlet{n}.example/news/{n}.html",
        published=T0 + timedelta(hours=n),
        text="Text.",
        image=image,
    )
    return dataclasses.replace(base, **fields)


def test_the_first_reporters_news_image_leads_credited_with_its_title_as_alt() -> None:
    articles = [
        article(3, image="https://outlet3.example/c.jpg"),
        article(1, image="https://outlet1.example/a.jpg"),
        article(2, image="https://outlet2.example/b.jpg"),
    ]
    assert lead_image(articles, usable) == LeadImage(
        "https://outlet1.example/a.jpg", "Outlet 1", "Headline 1"
    )


def test_the_pictures_own_caption_is_its_alt_text_where_it_has_one() -> None:
    caption = "Crews lift the cracked girder onto a barge."
    articles = [
        article(1, image="https://outlet1.example/a.jpg", image_caption=caption),
        article(2, image="https://outlet2.example/b.jpg"),
    ]
    assert lead_image(articles, usable) == LeadImage(
        "https://outlet1.example/a.jpg", "Outlet 1", caption
    )
    assert lead_image(articles[1:], usable) == LeadImage(
        "https://outlet2.example/b.jpg", "Outlet 2", "Headline 2"
    )


def test_news_comes_before_an_earlier_opinion_piece() -> None:
    articles = [
        article(1, kind="opinion", image="https://outlet1.example/column.jpg"),
        article(2),  # no image of its own: the next news article's is taken
        article(3, image="https://outlet3.example/photo.jpg"),
    ]
    image = lead_image(articles, usable)
    assert image is not None and image.url == "https://outlet3.example/photo.jpg"
    only_opinion = [article(1, kind="opinion", image="https://outlet1.example/column.jpg")]
    image = lead_image(only_opinion, usable)
    assert image is not None and image.credit == "Outlet 1"


def test_an_address_the_link_check_refuses_is_passed_over() -> None:
    articles = [
        article(1, image="javascript:alert(1)"),
        article(2, image="data:image/png;base64,AAAA"),
        article(3, image="https://outlet3.example/ok.jpg"),
    ]
    image = lead_image(articles, usable)
    assert image is not None and image.url == "https://outlet3.example/ok.jpg"
    assert lead_image(articles[:2], usable) is None
    assert lead_image([article(1), article(2)], usable) is None


def test_a_relative_address_is_read_against_the_articles_link() -> None:
    image = lead_image([article(1, image="/img/photo.jpg")], usable)
    assert image is not None and image.url == "https://outlet1.example/img/photo.jpg"
    assert lead_image([article(1, image="/img/photo.jpg", link=None)], usable) is None
