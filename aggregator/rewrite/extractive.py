"""The extractive rewrite: a neutral, attributed story built only from the sources' sentences.

Every sentence we output is a sentence some outlet wrote, carried with its provenance (entry id
and sentence index), so the story can never state what no source said; only the lead-ins that
name outlets ("X first reported that ...", "..., according to X.") are ours, and publishing
words them (:mod:`aggregator.publish.prose`). Everything is built on claims (:mod:`.claims`):
the sentences of different outlets that say one thing. No model, no network: the same articles
always give the same story.

This module only puts the sections together, in the order a reader meets them; each is a
function of the story's :class:`~.context.StoryContext` (read once: sentences, vectors,
centrality, claims) and of what the reader has read before it, and each is decided in its own
module: :mod:`.headline`, :mod:`.summary`, :mod:`.coverage` (who was first), :mod:`.body`,
:mod:`.views` (Different Perspectives), :mod:`.common_ground`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.models import CoverageNote, Rewrite, StoryArticle
from aggregator.rewrite.body import body_of
from aggregator.rewrite.common_ground import common_ground_of
from aggregator.rewrite.context import StoryContext, story_context
from aggregator.rewrite.headline import choose_headline
from aggregator.rewrite.summary import SUMMARY_WORDS, summary_of
from aggregator.rewrite.views import view_of
from aggregator.vocab import Side

# Part of every story's input hash: a new version rewrites every stored story once.
EXTRACTIVE_VERSION = "claims-12"


def rewrite_story(
    articles: Sequence[StoryArticle],
    summary_words: int = SUMMARY_WORDS,
    notes: Sequence[CoverageNote] = (),
) -> Rewrite:
    """Build the balanced story from its source articles. ``notes`` say what the reader is
    told of each side none of them comes from (``related.coverage_notes``); without them,
    that the side has not covered it."""
    ctx = story_context(articles)
    headline = choose_headline(ctx.articles)
    summary = summary_of(ctx, summary_words, [headline])
    shown = [headline, *(s.text for s in summary)]  # what the reader has read so far
    # No sentence twice on the page. Each section below the summary keeps what only it can
    # show: the views what only one side says, Common Ground what both say (in a wording the
    # summary does not show), citing them; the body tells the rest of the story in order.
    progressive = view_of(ctx, Side.LEFT, shown)
    conservative = view_of(ctx, Side.RIGHT, [*shown, *(s.text for s in progressive.sentences)])
    views = [s.text for s in (*progressive.sentences, *conservative.sentences)]
    common = common_ground_of(ctx, [*shown, *views])
    body = body_of(ctx, shown, taken=[*views, *(s.text for s in common.sentences)])
    return Rewrite(
        headline=headline,
        summary="",  # worded by publishing, from ``summary_sentences``
        summary_sentences=summary,
        body=body,
        progressive=progressive.sentences,
        conservative=conservative.sentences,
        common_ground=common.sentences,
        progressive_missing=progressive.missing,
        conservative_missing=conservative.missing,
        common_ground_missing=common.missing,
        notes=tuple(notes) or _no_coverage(ctx),
        unavailable=tuple(sorted({a.source_name for a in ctx.articles if not a.text_available})),
    )


def _no_coverage(ctx: StoryContext) -> tuple[CoverageNote, ...]:
    """A side with no article of its own: what the reader is told is a note, one per such
    side (worded by publish); without a note from the caller, that it has not covered it."""
    return tuple(
        CoverageNote("no_coverage", side)
        for side, arts in ((Side.LEFT, ctx.left), (Side.RIGHT, ctx.right))
        if not arts
    )
