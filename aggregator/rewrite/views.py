"""How Different Perspectives are chosen: what one side reports or argues that the other does
not.

For each side (left-leaning, right-leaning), claims no outlet of the other side states: from
the side's opinion pieces first (they carry its arguments), then its news, at most three, each
standing alone, not shown above (summary, body, the other view) and leaning on nothing the
reader has not read. A side with articles but no such claim says so (or that what only it
reports is told above); a side with no article gets a coverage note instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.models import Sentence, StoryArticle
from aggregator.rewrite.context import Section, StoryContext
from aggregator.rewrite.ranking import mmr
from aggregator.rewrite.sentences import (
    WORD_OVERLAP,
    overlap,
    refers_back,
    shown_before,
    stands_alone,
)
from aggregator.text import cosine
from aggregator.vocab import Empty, Side

PERSPECTIVE_SENTENCES = 3


def view_of(ctx: StoryContext, side: Side, read: Sequence[str] = ()) -> Section:
    """One side's perspective (``side``: left or right): what it reports or argues that
    the other side does not, leaning on nothing the reader has not ``read`` (headline,
    summary, body). A side with articles but no such claim is told so; a side with none gets
    a coverage note instead (no ``missing`` here)."""
    articles = ctx.left if side == Side.LEFT else ctx.right
    other = Side.RIGHT if side == Side.LEFT else Side.LEFT
    sentences = _side_sentences(ctx, articles, other, read)
    if articles and not sentences:
        if any(
            shown_before(s.text, read) and other not in ctx.claim_of[s.key].sides
            for a in articles
            for s in ctx.quotable.get(a.entry_id, [])
        ):
            return Section((), Empty.TOLD_ABOVE)
        return Section((), Empty.NONE_FOUND)
    return Section(sentences)


def _side_sentences(
    ctx: StoryContext, side: Sequence[StoryArticle], other: Side, read: Sequence[str]
) -> tuple[Sentence, ...]:
    """What one side's articles (``side``) report or argue that the other (``other``) does
    not.

    Claims no outlet of the other side states, from the side's opinion pieces first (they carry
    its arguments), then its news; each sentence must stand on its own, leaning on nothing
    the reader has not ``read``.
    """
    if not side:
        return ()
    picked: list[Sentence] = []
    for kind in ("opinion", "news"):
        pool = [
            s
            for a in side
            if a.kind == kind
            for s in ctx.quotable.get(a.entry_id, [])
            if other not in ctx.claim_of[s.key].sides
            and stands_alone(s.text)
            and not shown_before(s.text, read)
            and not refers_back(s, ctx.texts[s.entry_id], read)
        ]
        if not pool or len(picked) >= PERSPECTIVE_SENTENCES:
            continue
        scores = {
            s.key: cosine(ctx.vectors[s.key], ctx.centroid) + 0.1 / (1 + s.index) for s in pool
        }
        more = mmr(pool, scores, ctx.vectors, max_count=PERSPECTIVE_SENTENCES - len(picked))
        more = [m for m in more if all(overlap(m.text, c.text) < WORD_OVERLAP for c in picked)]
        picked.extend(sorted(more, key=lambda s: (ctx.rank[s.entry_id], s.index)))
    return tuple(picked)
