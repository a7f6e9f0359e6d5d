"""What every section of a story reads, worked out once per story: :class:`StoryContext`.

The articles in reporting order, their quotable sentences (:mod:`.sentences`) with their words
as term vectors and their centrality (:mod:`.ranking`), the claims they state
(:mod:`.claims`), each article's cleaned title, who covered the story, which articles are on
the left or the right, and who owns each outlet. Built once, frozen: each section (headline,
summary, body, views, Common Ground) is a function of it and of what the reader has read
before that section, so no section's result depends on another's working state, only on what
it printed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aggregator.models import Coverage, Sentence, SentenceKey, StoryArticle
from aggregator.rewrite.attribution import proper_words
from aggregator.rewrite.claims import Claim, align
from aggregator.rewrite.coverage import coverage_of
from aggregator.rewrite.ranking import Vector, centrality
from aggregator.rewrite.sentences import clean_title, sentences_of
from aggregator.text import add_terms, split_sentences, terms
from aggregator.vocab import Empty, Side, side_of


@dataclass(frozen=True)
class StoryContext:
    """One story as the sections see it. Sentences are looked up by :attr:`Sentence.key`."""

    articles: tuple[StoryArticle, ...]  # reporting order: published, then the store's order
    rank: Mapping[int, int]  # each article's place in that order, by entry id
    quotable: Mapping[int, Sequence[Sentence]]  # each article's quotable sentences, by entry id
    candidates: tuple[Sentence, ...]  # every quotable sentence, article by article
    news: tuple[Sentence, ...]  # those of the news articles (all of them, if none is news)
    texts: Mapping[int, Sequence[str]]  # each article's sentences, every one, by entry id
    vectors: Mapping[SentenceKey, Vector]  # each quotable sentence's terms
    centroid: Vector  # the terms of all the quotable sentences
    scores: Mapping[SentenceKey, float]  # each quotable sentence's centrality
    claims: tuple[Claim, ...]
    claim_of: Mapping[SentenceKey, Claim]  # the claim each quotable sentence states
    titles: Mapping[int, str]  # each article's title without the outlet's suffix, by entry id
    coverage: Coverage
    left: tuple[StoryArticle, ...]  # the left-leaning articles (left, lean-left)
    right: tuple[StoryArticle, ...]  # the right-leaning ones
    opinion: frozenset[int]  # entry ids of the opinion pieces
    # Each outlet's owner, by outlet name: its configured owner, or the outlet itself when
    # that is not known (an unknown owner is an owner of its own).
    owner_of: Mapping[str, str]
    # Words the sources capitalize mid-sentence and never write in lower case there: names,
    # which keep their capital behind a lead-in (attribution.proper_words).
    names: frozenset[str]


def story_context(articles: Sequence[StoryArticle]) -> StoryContext:
    """Read a story's articles once: their sentences, vectors, centrality and claims."""
    if not articles:
        raise ValueError("a story needs at least one article")
    # Ties keep the order given (the store's: published, fetched, source, entry key), never
    # the row id, which depends on which source answered first.
    ordered = tuple(sorted(articles, key=lambda a: a.published))
    quotable = {a.entry_id: sentences_of(a) for a in ordered}
    candidates = tuple(s for a in ordered for s in quotable[a.entry_id])
    vectors = {s.key: terms(s.text) for s in candidates}
    title_terms: dict[str, float] = {}
    for a in ordered:
        add_terms(title_terms, terms(clean_title(a.title, a.source_name)))
    leans = {a.entry_id: a.lean for a in ordered}
    centroid: dict[str, float] = {}
    for vec in vectors.values():
        add_terms(centroid, vec)
    rank = {a.entry_id: i for i, a in enumerate(ordered)}
    claims = tuple(align(candidates, leans, rank))
    kind: dict[int, str] = {}
    for a in ordered:
        kind.setdefault(a.entry_id, a.kind)
    return StoryContext(
        articles=ordered,
        rank=rank,
        quotable=quotable,
        candidates=candidates,
        news=tuple(s for s in candidates if kind[s.entry_id] == "news") or candidates,
        texts={a.entry_id: split_sentences(a.text) for a in ordered},
        vectors=vectors,
        centroid=centroid,
        scores=centrality(candidates, vectors, title_terms, leans),
        claims=claims,
        claim_of={s.key: c for c in claims for s in c.sentences},
        titles={a.entry_id: clean_title(a.title, a.source_name) for a in ordered},
        coverage=coverage_of(ordered),
        left=tuple(a for a in ordered if side_of(a.lean) == Side.LEFT),
        right=tuple(a for a in ordered if side_of(a.lean) == Side.RIGHT),
        opinion=frozenset(a.entry_id for a in ordered if a.kind == "opinion"),
        owner_of={a.source_name: a.owner or a.source_name for a in ordered},
        names=proper_words(a.text for a in ordered),
    )


@dataclass(frozen=True)
class Section:
    """A section's sentences, and why it has none (``None``: a coverage note says why)."""

    sentences: tuple[Sentence, ...]
    missing: Empty | None = None
