"""How the body is built: the story in the order it was told, each sentence attributed.

What the first reporter reported, then what each other outlet added (claims not yet told),
4 to 8 sentences, every outlet heard where possible; no sentence repeats a claim or a sentence
the summary shows, nor leans on a sentence the reader has not seen. Each is named in prose by
a lead-in that publishing words (:mod:`aggregator.publish.prose`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.models import Sentence
from aggregator.rewrite.attribution import led_in
from aggregator.rewrite.context import StoryContext
from aggregator.rewrite.ranking import REPEAT_SIMILARITY, mmr
from aggregator.rewrite.sentences import refers_back, shown_before, stands_alone
from aggregator.text import cosine

BODY_MIN, BODY_MAX = 4, 8
PARAPHRASE = 0.7  # a short body's fill takes closer paraphrases than this, never repeats


def body_of(
    ctx: StoryContext, shown: Sequence[str] = (), taken: Sequence[str] = ()
) -> tuple[Sentence, ...]:
    """The story in the order it was told: what the first reporter reported, then what each
    other outlet added (claims not yet told), 4 to 8 sentences, each outlet heard where
    possible, every one attributed to the outlet that wrote it. ``shown``: what the reader has
    read before the body (headline, summary); no sentence leans on anything else unseen, and
    none is one of those, nor one of ``taken`` (the views' sentences, shown below it)."""
    chosen = _in_telling_order(ctx, shown, taken)
    if len(chosen) < BODY_MIN:  # few distinct facts: let closer paraphrases in, never repeats
        chosen = _with_paraphrases(ctx, chosen, shown, taken)
    return tuple(_led_in(ctx, chosen))


def _in_telling_order(
    ctx: StoryContext, shown: Sequence[str], taken: Sequence[str]
) -> list[Sentence]:
    """Article by article in reporting order, each one's most central claims not yet told,
    leaving room for one sentence of each later article; the first report gets two more and
    opens with its own opening."""
    by_entry: dict[int, list[Sentence]] = {}
    for s in ctx.news:
        if stands_alone(s.text) or s.index == 0:
            by_entry.setdefault(s.entry_id, []).append(s)
    told: set[int] = set()  # ids of the claims told so far
    chosen: list[Sentence] = []
    news = [a for a in ctx.articles if a.entry_id in by_entry]
    per_article = max(1, BODY_MAX // max(1, len(news)))
    for turn, article in enumerate(news):
        room = BODY_MAX - len(chosen) - max(0, len(news) - turn - 1)  # keep one each for the rest
        want = min(room, per_article + (2 if turn == 0 else 0))
        own = sorted(by_entry[article.entry_id], key=lambda s: (-ctx.scores[s.key], s.index))
        if turn == 0:  # the story opens with the first report's own opening, not its middle
            lead = min(own, key=lambda s: (s.text[:1] in '"\u201c', s.index))
            own = [lead] + [s for s in own if s is not lead]
        said = [*shown, *(c.text for c in chosen)]
        picked = _pick(ctx, own, want, told, said, chosen, taken)
        chosen.extend(sorted(picked, key=lambda s: s.index))
    return chosen


def _pick(
    ctx: StoryContext,
    own: Sequence[Sentence],
    want: int,
    told: set[int],
    said: Sequence[str],
    chosen: Sequence[Sentence],
    taken: Sequence[str],
) -> list[Sentence]:
    """Up to ``want`` of one article's sentences (``own``, best first) whose claims are not
    yet ``told`` (the ids of the claims told: updated), that repeat no sentence ``chosen``
    and lean on nothing but what was ``said`` before (and each other), none of them ``said``
    or ``taken`` already."""
    picked: list[Sentence] = []
    for s in own:
        if len(picked) >= want:
            break
        claim = id(ctx.claim_of[s.key])
        if claim in told:
            continue
        vec = ctx.vectors[s.key]
        if any(cosine(vec, ctx.vectors[c.key]) > REPEAT_SIMILARITY for c in [*chosen, *picked]):
            continue
        if shown_before(s.text, [*said, *taken]) or refers_back(
            s, ctx.texts[s.entry_id], [*said, *(c.text for c in picked)]
        ):
            continue  # shown elsewhere on the page, or leaning on a sentence never shown
        picked.append(s)
        told.add(claim)
    return picked


def _with_paraphrases(
    ctx: StoryContext, chosen: list[Sentence], shown: Sequence[str], taken: Sequence[str]
) -> list[Sentence]:
    """Too few distinct claims: more central sentences, closer paraphrases allowed (never
    repeats), in reporting order; as before, none leaning on a sentence the reader has not
    seen (``shown``, or told before it in the body)."""
    fit = [
        s
        for s in ctx.news
        if (stands_alone(s.text) or s.index == 0)
        and s not in chosen
        and not shown_before(s.text, [*shown, *taken])
        and all(cosine(ctx.vectors[s.key], ctx.vectors[c.key]) <= PARAPHRASE for c in chosen)
    ]
    more = mmr(
        fit,
        ctx.scores,
        ctx.vectors,
        max_count=BODY_MIN - len(chosen),
        repeat=PARAPHRASE,
        contained=1.1,
    )
    chosen = [*chosen, *more]
    chosen.sort(key=lambda s: (ctx.rank[s.entry_id], s.index))
    told = list(shown)
    kept = []
    for s in chosen:
        if not refers_back(s, ctx.texts[s.entry_id], told):
            kept.append(s)
            told.append(s.text)
    return kept


def _led_in(ctx: StoryContext, chosen: Sequence[Sentence]) -> list[Sentence]:
    """Each sentence marked for publishing to name its outlet before it (the lead-ins,
    :func:`aggregator.publish.prose.lead_ins`), its first word judged against the names its
    sources capitalize."""
    return [led_in(s, ctx.names) for s in chosen]
