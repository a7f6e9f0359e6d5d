"""The extractive rewrite: a neutral, attributed story built only from the sources' sentences.

Every sentence we output is a sentence some outlet wrote, carried with its provenance (entry id
and sentence index), so the story can never state what no source said; only the lead-ins that
name outlets ("X first reported that ...", "..., according to X.") are ours. Everything is
built on claims (:mod:`.claims`): the sentences of different outlets that say one thing. No
model, no network: the same articles always give the same story.

This module only puts the sections together; each is decided in its own module:
:mod:`.headline`, :mod:`.summary`, :mod:`.body`, :mod:`.views` (Different Perspectives),
:mod:`.common_ground`, on the sentences of :mod:`.sentences` ranked by :mod:`.ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.config import LEFT_LEANS, RIGHT_LEANS
from aggregator.models import CoverageNote, Rewrite, StoryArticle
from aggregator.rewrite.body import body_sentences
from aggregator.rewrite.claims import align
from aggregator.rewrite.common_ground import common_ground, common_ground_missing
from aggregator.rewrite.coverage import coverage_of, lede
from aggregator.rewrite.headline import choose_headline
from aggregator.rewrite.ranking import centrality
from aggregator.rewrite.sentences import clean_title, sentences_of
from aggregator.rewrite.summary import (
    SUMMARY_WORDS,
    first_sentence,
    summary_budget,
    summary_sentences,
)
from aggregator.rewrite.views import side_missing, side_sentences
from aggregator.text import add_terms, split_sentences, terms

# Part of every story's input hash: a new version rewrites every stored story once.
EXTRACTIVE_VERSION = "claims-3"


def rewrite_story(
    articles: Sequence[StoryArticle],
    summary_words: int = SUMMARY_WORDS,
    notes: Sequence[CoverageNote] = (),
) -> Rewrite:
    """Build the balanced story from its source articles. ``notes`` say what the reader is
    told of each side none of them comes from (``related.coverage_notes``); without them,
    that the side has not covered it."""
    if not articles:
        raise ValueError("a story needs at least one article")
    articles = sorted(articles, key=lambda a: (a.published, a.entry_id))
    by_entry = {a.entry_id: sentences_of(a) for a in articles}
    candidates = [s for a in articles for s in by_entry[a.entry_id]]
    vectors = {s.key: terms(s.text) for s in candidates}
    titles: dict[str, float] = {}
    for a in articles:
        add_terms(titles, terms(clean_title(a.title, a.source_name)))
    leans = {a.entry_id: a.lean for a in articles}
    scores = centrality(candidates, vectors, titles, leans)
    centroid: dict[str, float] = {}
    for vec in vectors.values():
        add_terms(centroid, vec)
    order = {a.entry_id: i for i, a in enumerate(articles)}
    claims = align(candidates, leans, order)
    claim_of = {s.key: c for c in claims for s in c.sentences}
    article_titles = {a.entry_id: clean_title(a.title, a.source_name) for a in articles}

    news = [s for s in candidates if _kind(articles, s.entry_id) == "news"] or candidates
    budget = summary_budget(articles, summary_words)
    summary_sents = summary_sentences(news, scores, vectors, claim_of, max(budget, 1), articles)
    summary_sents = summary_sents or first_sentence(articles)
    headline = choose_headline(articles)
    summary = " ".join(s.attributed or s.text for s in summary_sents) or headline

    coverage = coverage_of(articles)
    shown = [headline, *(s.text for s in summary_sents)]
    texts = {a.entry_id: split_sentences(a.text) for a in articles}
    body = body_sentences(news, scores, vectors, claim_of, articles, coverage, texts, shown)

    left_arts = [a for a in articles if a.lean in LEFT_LEANS]
    right_arts = [a for a in articles if a.lean in RIGHT_LEANS]
    read = [*shown, *(s.text for s in body)]  # what the reader has seen before the views
    progressive = side_sentences(
        articles, LEFT_LEANS, claim_of, "right", centroid, vectors, by_entry, texts, read
    )
    conservative = side_sentences(
        articles, RIGHT_LEANS, claim_of, "left", centroid, vectors, by_entry, texts, read
    )
    opinion = frozenset(a.entry_id for a in articles if a.kind == "opinion")
    common = (
        common_ground(claims, scores, article_titles, opinion) if left_arts and right_arts else ()
    )
    return Rewrite(
        headline=headline,
        summary=summary,
        summary_sentences=tuple(summary_sents),
        lede=lede(coverage),
        body=tuple(body),
        progressive=progressive,
        conservative=conservative,
        common_ground=common,
        progressive_missing=side_missing("left-leaning", left_arts, progressive),
        conservative_missing=side_missing("right-leaning", right_arts, conservative),
        common_ground_missing=common_ground_missing(left_arts, right_arts, common),
        # A side with no article of its own: what the reader is told is a note (``notes``, one
        # per such side: not covered, or a related angle the search found), worded by publish.
        notes=tuple(notes)
        or tuple(
            CoverageNote("no_coverage", side)
            for side, arts in (("left", left_arts), ("right", right_arts))
            if not arts
        ),
        unavailable=tuple(sorted({a.source_name for a in articles if not a.text_available})),
    )


def _kind(articles: Sequence[StoryArticle], entry_id: int) -> str:
    for a in articles:
        if a.entry_id == entry_id:
            return a.kind
    return "news"
