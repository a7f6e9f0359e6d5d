"""How Different Perspectives are chosen: what one side reports or argues that the other does
not.

For each side (left-leaning, right-leaning), claims no outlet of the other side states: from
the side's opinion pieces first (they carry its arguments), then its news, at most three, each
standing alone and leaning on nothing the reader has not read. A side with articles but no such
claim says so; a side with no article gets a coverage note instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aggregator.models import Sentence, SentenceKey, StoryArticle
from aggregator.rewrite.claims import Claim
from aggregator.rewrite.ranking import mmr
from aggregator.rewrite.sentences import WORD_OVERLAP, overlap, refers_back, stands_alone
from aggregator.text import cosine

PERSPECTIVE_SENTENCES = 3


def side_sentences(
    articles: Sequence[StoryArticle],
    leans: frozenset[str],
    claim_of: Mapping[SentenceKey, Claim],
    other: str,
    centroid: dict[str, float],
    vectors: dict[SentenceKey, dict[str, float]],
    by_entry: dict[int, list[Sentence]],
    texts: Mapping[int, Sequence[str]],
    read: Sequence[str] = (),
) -> tuple[Sentence, ...]:
    """What one side reports or argues that the other (``other``: "left" or "right") does not.

    Claims no outlet of the other side states, from the side's opinion pieces first (they carry
    its arguments), then its news; each sentence must stand on its own, leaning on nothing
    the reader has not ``read`` (headline, summary, body); ``texts``: each article's
    sentences by entry id.
    """
    side = [a for a in articles if a.lean in leans]
    if not side:
        return ()
    picked: list[Sentence] = []
    for kind in ("opinion", "news"):
        pool = [
            s
            for a in side
            if a.kind == kind
            for s in by_entry.get(a.entry_id, [])
            if other not in claim_of[s.key].sides
            and stands_alone(s.text)
            and not refers_back(s, texts[s.entry_id], read)
        ]
        if not pool or len(picked) >= PERSPECTIVE_SENTENCES:
            continue
        scores = {s.key: cosine(vectors[s.key], centroid) + 0.1 / (1 + s.index) for s in pool}
        more = mmr(pool, scores, vectors, max_count=PERSPECTIVE_SENTENCES - len(picked))
        more = [m for m in more if all(overlap(m.text, c.text) < WORD_OVERLAP for c in picked)]
        picked.extend(sorted(more, key=lambda s: s.key))
    return tuple(picked)


def side_missing(
    side: str, articles: Sequence[StoryArticle], view: Sequence[Sentence]
) -> str | None:
    """What the reader is told of a side (``side``: "left-leaning", "right-leaning") that has
    articles but nothing only it reports or argues; ``None`` otherwise (a side with no
    article gets a coverage note instead)."""
    if articles and not view:
        return f"Nothing here that only {side} outlets report or argue."
    return None
