"""Which picture a story leads with: a decision over its articles (the rewrite stage's).

A reader trusts a news photograph of the event more than an opinion column's illustration, and
the outlet that broke the story is the one credited everywhere else, so the lead image is the
first news article's that has one, in reporting order, and an opinion piece's only when no
news article has one. The picture is shown by its address, credited to its outlet; we never
fetch or store it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urljoin

from aggregator.models import LeadImage, StoryArticle
from aggregator.rewrite import clean_title


def lead_image(articles: Sequence[StoryArticle], usable: Callable[[str], bool]) -> LeadImage | None:
    """The story's lead image, or None when no article has one that ``usable`` accepts (the
    publisher's URL check: an address it would refuse as a link is no image either).

    A relative address (some pages give their og:image so) is read against the article's link.
    The alt text is the picture's own caption (its feed's or its page's), else the article's
    own title.
    """
    ordered = sorted(
        articles,
        key=lambda a: (a.kind == "opinion", a.published, a.fetched or a.published, a.entry_id),
    )
    for article in ordered:
        if not article.image:
            continue
        url = urljoin(article.link or "", article.image.strip())
        if usable(url):
            return LeadImage(
                url=url,
                credit=article.source_name,
                alt=article.image_caption or clean_title(article.title, article.source_name),
            )
    return None
