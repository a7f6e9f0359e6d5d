"""How Common Ground is built: the claims both sides report.

Only when the story has left-leaning and right-leaning articles. A claim (:mod:`.claims`)
stated by an outlet of each side is shown once, in its plainest standalone wording (a news
article's, a centre outlet's before a side's), citing every outlet that reports it; the most
widely reported first, at most four, no two saying the same, none in a wording shown above it
on the page (another outlet's wording is taken; a news claim never in an opinion piece's).
With both sides present and no such claim, the reader is told they do not yet report the same
facts, or that what they both report is told above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from aggregator.models import Sentence
from aggregator.rewrite.claims import Claim
from aggregator.rewrite.context import Section, StoryContext
from aggregator.rewrite.ranking import representative
from aggregator.rewrite.sentences import (
    WORD_OVERLAP,
    demonstrative_noun,
    overlap,
    shown_before,
    stands_alone,
)
from aggregator.vocab import Empty

COMMON_GROUND_CLAIMS = 4  # claims shown under Common Ground


def _cited(sentence: Sentence, claim: Claim, titles: Mapping[int, str]) -> Sentence:
    """The sentence carrying every article that states its claim (its own first)."""
    others = [s for s in claim.sentences if s.entry_id != sentence.entry_id]
    return dataclasses.replace(
        sentence,
        reported_by=tuple(
            (s.source_name, titles.get(s.entry_id, ""), s.link) for s in [sentence, *others]
        ),
    )


def _alone(text: str) -> bool:
    """A wording that stands alone and names nothing by a demonstrative ("This bill ..."):
    shown under Common Ground, it could be pointing at any sentence above."""
    return stands_alone(text) and not demonstrative_noun(text)


def common_ground_of(ctx: StoryContext, read: Sequence[str] = ()) -> Section:
    """Common Ground: the claims both sides report, only when both sides have articles; with
    both and no such claim, the reader is told so. A side with no article gets a coverage
    note instead (no ``missing`` here)."""
    if not ctx.left or not ctx.right:
        return Section(())
    common = _shared_claims(ctx, read)
    if not common and any(
        shown_before(s.text, read) for c in ctx.claims if c.both_sides for s in c.sentences
    ):
        return Section((), Empty.TOLD_ABOVE)
    if not common:
        return Section((), Empty.NONE_FOUND)
    return Section(common)


def _shared_claims(
    ctx: StoryContext, read: Sequence[str], limit: int = COMMON_GROUND_CLAIMS
) -> tuple[Sentence, ...]:
    """Claims both sides report, each once in its plainest wording, citing every outlet that
    reports it; the most widely reported first, then in the order the story was told."""
    scores, opinion = ctx.scores, ctx.opinion
    both = [c for c in ctx.claims if c.both_sides]
    both.sort(key=lambda c: (-len(c.outlets), -max(scores.get(s.key, 0.0) for s in c.sentences)))
    chosen: list[Sentence] = []
    for claim in both:
        fresh = claim.only(lambda s: _alone(s.text) and not shown_before(s.text, read))
        if not fresh.sentences or (
            all(s.entry_id in opinion for s in fresh.sentences)
            and not all(s.entry_id in opinion for s in claim.sentences)
        ):
            continue  # no wording not shown above; a news claim not in an opinion's words
        pick = representative(fresh, scores, opinion)
        if any(overlap(pick.text, c.text) >= WORD_OVERLAP for c in chosen):
            continue
        chosen.append(_cited(pick, claim, ctx.titles))
        if len(chosen) >= limit:
            break
    return tuple(chosen)
