"""Grouping: which story does a new article join?

A first, simple method: cosine similarity of weighted terms (title and lead count most), only
against stories whose articles were published near this one. Time is the articles' own
published time, never the wall clock, so replaying old news groups it the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from aggregator.models import ClusterArticle, ClusterStory
from aggregator.text import add_terms, cosine, terms

WINDOW = timedelta(days=3)
THRESHOLD = 0.30
LEAD_WORDS = 80
_STORY_NS = uuid.UUID("6f1d2c1e-9f7a-4c1b-8b0e-2b1f6a2d9c41")


def article_terms(article: ClusterArticle) -> tuple[dict[str, float], dict[str, float]]:
    """(title terms, title+lead terms) of an article: the title is weighted up."""
    title = dict(terms(article.title))
    lead = " ".join(article.text.split()[:LEAD_WORDS])
    full = dict(terms(article.title, weight=2.0))
    add_terms(full, terms(lead))
    return title, full


def similarity(article: ClusterArticle, story: ClusterStory) -> float:
    """How alike an article and a story are, from 0 to 1."""
    title, full = article_terms(article)
    return 0.35 * cosine(title, story.title_terms) + 0.65 * cosine(full, story.terms)


def story_id_for(source_id: str, entry_key: str) -> str:
    """A story's id, fixed forever by the article that opened it."""
    return str(uuid.uuid5(_STORY_NS, f"{source_id}\n{entry_key}"))


def new_story(story_id: str, article: ClusterArticle) -> ClusterStory:
    title, full = article_terms(article)
    return ClusterStory(
        story_id=story_id,
        title_terms=title,
        terms=full,
        first_published=article.published,
        last_published=article.published,
        source_ids={article.source_id},
    )


def join(story: ClusterStory, article: ClusterArticle) -> None:
    """Add an article to a story's term vectors and time span, in place."""
    title, full = article_terms(article)
    add_terms(story.title_terms, title)
    add_terms(story.terms, full)
    story.first_published = min(story.first_published, article.published)
    story.last_published = max(story.last_published, article.published)
    story.source_ids.add(article.source_id)


def best_story(
    article: ClusterArticle, stories: Iterable[ClusterStory], threshold: float = THRESHOLD
) -> tuple[ClusterStory | None, float]:
    """The most similar story near the article's time, if it is similar enough."""
    best: ClusterStory | None = None
    best_score = 0.0
    for story in stories:
        if article.published < story.first_published - WINDOW:
            continue
        if article.published > story.last_published + WINDOW:
            continue
        score = similarity(article, story)
        if score > best_score:
            best, best_score = story, score
    if best is not None and best_score >= threshold:
        return best, best_score
    return None, best_score
