"""Grouping: how alike an article and a story are (the pair model's features).

Cosines alone cannot tell two events of one topic apart ("FDA authorizes boosters", "CDC
recommends boosters"): the names and numbers each side mentions, rare shared terms, the weekday
each gives and the time gap carry that. ``pair_features`` measures them all, in the order of
``FEATURES``; the pair model (``aggregator.pair_model``, fitted on the ``train`` split by
``bench/train_grouping.py``) weighs them into the probability that the two report one event.
``later_event`` is the one rule kept outside the model: an article that dates itself to a later
day than the story's first report is the next event, however alike the words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from aggregator.cluster.story import Story
from aggregator.cluster.vectors import Doc
from aggregator.text import cosine, cosines

RARE_IDF = 3.0  # a shared term this rare (idf) is a sign of the same event
NEXT_EVENT_GAP = timedelta(hours=24)

FEATURES = (
    "text_mean",  # mean cosine of the article's vector to the members'
    "text_max",
    "title_mean",  # the same, title against title
    "title_max",
    "centroid",  # cosine to the story's centroid
    "name_cover",  # share (idf-weighted) of the article's names and numbers the story has
    "story_name_cover",  # share of the story's names the article has
    "title_cover",  # weight of the article's title terms found in the story's members
    "gap_days",  # time between the article and the story's span
    # Not the story's size: the training stories have three articles, live ones dozens.
    "has_names",
    "title_text_max",  # article title against member texts
    "text_title_max",  # article text against member titles
    "rare_shared",  # shared rare terms (idf >= RARE_IDF), up to 5, as a share of 5
    # The next event of a story shares its names but not its numbers or its day: "voted 412
    # to 96 on Wednesday" after "a tentative deal on Monday".
    "numbers_new",  # the article's numbers the story lacks, up to 3, as a share of 3
    "numbers_shared",  # share of the article's numbers the story has
    "day_shared",  # both mention a weekday, and a common one
    "day_conflict",  # both mention weekdays, none in common
)
# Appended to ``FEATURES`` only when the index has an embedder (the embeddings extra).
EMBEDDING_FEATURES = (
    "embed_mean",  # mean cosine of the article's sentence vector to the members'
    "embed_max",
)
EMBED_MODEL = "grouping_model_embed.json"


def pair_features(
    doc: Doc, story: Story, when: datetime, idf: Callable[[str], float], embedded: bool
) -> list[float]:
    """What the pair model sees of an article against a story (``FEATURES``, then
    ``EMBEDDING_FEATURES`` when ``embedded``, in order)."""
    members = story.members
    if not members:
        return [0.0] * (len(FEATURES) + (len(EMBEDDING_FEATURES) if embedded else 0))
    vec, title, names, numbers, days = doc[:5]
    vocabulary, headlines = story.vocabulary, story.headlines
    # A cosine to a member sums over the terms the two share, so over the article's terms
    # that some member has (in its text or title) alone; most of the side search's stories
    # share none, and then each cosine is 0.0, as ``cosine`` gives it.
    in_texts, titled_in_texts = vec.keys() & vocabulary, title.keys() & vocabulary
    texts, heads = [m.vec for m in members], [m.title for m in members]
    text = cosines(vec, in_texts, texts)
    titles = cosines(title, title.keys() & headlines, heads)
    # The centroid's terms are the compared members' when none was let go: ``Story.total``
    # holds the terms of every member ever, of which ``vocabulary`` is a subset.
    if len(story.total) == len(vocabulary):
        (centroid,) = cosines(vec, in_texts, [story.centroid])
    else:
        centroid = cosine(vec, story.centroid, unit=True)
    # Sums over sets are exact (fsum): a set's order changes with the hash seed, and a
    # replay must decide the same in every process. With no name shared both covers are
    # 0.0, as these sums give them.
    cover = story_cover = 0.0
    if not names.isdisjoint(story.names):
        fsum = math.fsum
        total = fsum([idf(k) for k in names])
        cover = fsum([idf(k) for k in names if k in story.names]) / total if total else 0.0
        story_total = fsum([idf(k) for k in story.names])
        story_cover = (
            fsum([idf(k) for k in story.names if k in names]) / story_total if story_total else 0.0
        )
    rare = sum(1 for k in in_texts if idf(k) >= RARE_IDF)
    n = len(members)
    row = [
        sum(text) / n,
        max(text),
        sum(titles) / n,
        max(titles),
        centroid,
        cover,
        story_cover,
        sum(v for k, v in title.items() if k in vocabulary) if titled_in_texts else 0,
        story.gap(when).total_seconds() / 86400,
        1.0 if names else 0.0,
        max(cosines(title, titled_in_texts, texts)),
        max(cosines(vec, vec.keys() & headlines, heads)),
        min(rare, 5) / 5,
        min(len(numbers - story.numbers), 3) / 3,
        len(numbers & story.numbers) / len(numbers) if numbers else 0.0,
        1.0 if days & story.days else 0.0,
        1.0 if days and story.days and not days & story.days else 0.0,
    ]
    if embedded:
        row += embedding_features(doc, members)
    return row


def embedding_features(doc: Doc, members: Sequence[Doc]) -> list[float]:
    """``EMBEDDING_FEATURES``: sentence-vector cosines to the members (unit vectors)."""
    sims = [float(doc.embedding @ m.embedding) for m in members]
    return [sum(sims) / len(sims), max(sims)]


def later_event(doc: Doc, story: Story, when: datetime) -> bool:
    """The article dates itself to another day than the story, a day or more after the
    story's first report: "voted on Wednesday" two days after "a deal on Monday" is the next
    event, however alike the words. Counted from the first report, not the newest one, so
    that late follow-ups of Wednesday's event cannot carry Thursday's into it. An opinion
    piece on Monday's deal names Monday and still joins."""
    return (
        bool(doc.days and story.days)
        and not doc.days & story.days
        and when - story.first_published >= NEXT_EVENT_GAP
    )
