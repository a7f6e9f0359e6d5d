"""How the headline is chosen: one outlet's own title, cleaned, never one we write.

Of the news articles' titles (opinion titles only when the story is all opinion: an opinion
source's, or a piece its news outlet files as opinion, :func:`reads_as_opinion`), the one with
the fewest loaded words wins; then the one that names the event the other titles report
(agreement with them), less whatever makes a title shout (capitals, a question, an explainer,
scare quotes, a run-on); a centre outlet breaks ties.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.models import StoryArticle
from aggregator.rewrite.lexicon import (
    EXPLAINER_RE,
    SCARE_QUOTE_RE,
    SENSATIONAL_RE,
    SHOUT_RE,
    loaded_words,
)
from aggregator.rewrite.sentences import clean_title
from aggregator.text import cosine, terms, word_count
from aggregator.vocab import Lean, article_kind


def choose_headline(articles: Sequence[StoryArticle]) -> str:
    """A neutral title from the news articles (opinion titles only when no news article has
    one): the fewest loaded words first, then the one that names the event the others report
    (agreement with the other titles), centre outlets breaking ties."""
    titles = [(a, clean_title(a.title, a.source_name)) for a in articles if not reads_as_opinion(a)]
    titles = [(a, t) for a, t in titles if t]
    if not titles:
        titles = [(a, clean_title(a.title, a.source_name)) for a in articles]
    vectors = [terms(t) for _, t in titles]

    def score(i: int) -> tuple[int, float, int, str]:
        article, title = titles[i]
        agree = sum(cosine(vectors[i], v) for j, v in enumerate(vectors) if j != i)
        bonus = 0.3 if article.lean == Lean.CENTER else 0.0
        return (-loaded_words(title), agree + bonus - _loaded(title), -len(title), title)

    best = max(range(len(titles)), key=score)
    return titles[best][1]


def reads_as_opinion(article: StoryArticle) -> bool:
    """An opinion piece: from an opinion source, or one a news outlet files as opinion
    (``vocab.article_kind``), as a news source's feed also carries its columns."""
    return article_kind(article.kind, article.link, article.title) == "opinion"


def _loaded(title: str) -> float:
    """How far a title is from a plain news headline: loaded words, shouting, questions,
    explainers, scare quotes and run-on length all count against it."""
    n = word_count(title)
    return (
        1.0 * len(SENSATIONAL_RE.findall(title))
        + 0.5 * len(SHOUT_RE.findall(title))
        + (0.5 if "?" in title else 0.0)
        + (0.5 if EXPLAINER_RE.match(title) else 0.0)
        + 0.2 * len(SCARE_QUOTE_RE.findall(title))
        + 0.05 * max(0, n - 14)
    )
