"""How the body is built: the story in the order it was told, each sentence attributed.

What the first reporter reported, then what each other outlet added (claims not yet told),
4 to 8 sentences, every outlet heard where possible; no sentence repeats a claim, nor leans on
a sentence the reader has not seen. Each is named in prose by a lead-in that varies, never
"also reported that ... also" nor the form just used for that outlet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aggregator.models import Coverage, Sentence, SentenceKey, StoryArticle
from aggregator.rewrite.attribution import (
    AGAIN_LEAD_INS,
    FIRST_LEAD_IN,
    LEAD_INS,
    QUOTE_LEAD_INS,
    attribute,
    proper_words,
)
from aggregator.rewrite.claims import Claim
from aggregator.rewrite.ranking import REPEAT_SIMILARITY, mmr
from aggregator.rewrite.sentences import refers_back, stands_alone
from aggregator.text import cosine

BODY_MIN, BODY_MAX = 4, 8


def body_sentences(
    candidates: list[Sentence],
    scores: dict[SentenceKey, float],
    vectors: dict[SentenceKey, dict[str, float]],
    claim_of: Mapping[SentenceKey, Claim],
    articles: Sequence[StoryArticle],
    coverage: Coverage,
    texts: Mapping[int, Sequence[str]],
    shown: Sequence[str] = (),
) -> list[Sentence]:
    """The story in the order it was told: what the first reporter reported, then what each
    other outlet added (claims not yet told), 4 to 8 sentences, each outlet heard where
    possible, every one attributed to the outlet that wrote it. ``texts``: each article's
    sentences by entry id; ``shown``: what the reader has read before the body (headline,
    summary); no sentence leans on anything else unseen."""
    by_entry: dict[int, list[Sentence]] = {}
    for s in candidates:
        if stands_alone(s.text) or s.index == 0:
            by_entry.setdefault(s.entry_id, []).append(s)
    told: set[int] = set()  # ids of the claims told so far
    chosen: list[Sentence] = []
    news = [a for a in articles if a.entry_id in by_entry]
    per_article = max(1, BODY_MAX // max(1, len(news)))
    for turn, article in enumerate(news):
        room = BODY_MAX - len(chosen) - max(0, len(news) - turn - 1)  # keep one each for the rest
        want = min(room, per_article + (2 if turn == 0 else 0))
        own = sorted(by_entry[article.entry_id], key=lambda s: (-scores[s.key], s.index))
        if turn == 0:  # the story opens with the first report's own opening, not its middle
            lead = min(own, key=lambda s: (s.text[:1] in '"\u201c', s.index))
            own = [lead] + [s for s in own if s is not lead]
        picked: list[Sentence] = []
        for s in own:
            if len(picked) >= want:
                break
            claim = id(claim_of[s.key])
            if claim in told:
                continue
            vec = vectors[s.key]
            if any(cosine(vec, vectors[c.key]) > REPEAT_SIMILARITY for c in chosen + picked):
                continue
            said = [*shown, *(c.text for c in chosen), *(c.text for c in picked)]
            if refers_back(s, texts[article.entry_id], said):
                continue
            picked.append(s)
            told.add(claim)
        chosen.extend(sorted(picked, key=lambda s: s.index))
    if len(chosen) < BODY_MIN:  # few distinct facts: let closer paraphrases in, never repeats
        more = mmr(candidates, scores, vectors, max_count=BODY_MIN, repeat=0.7, contained=1.1)
        chosen.extend(m for m in more if m not in chosen)
        chosen = chosen[:BODY_MIN] if len(chosen) > BODY_MAX else chosen
        rank = {a.entry_id: i for i, a in enumerate(articles)}
        chosen.sort(key=lambda s: (rank[s.entry_id], s.index))
    names = proper_words(a.text for a in articles)
    out: list[Sentence] = []
    heard: dict[str, int] = {}  # sentences so far per outlet
    used: dict[str, str] = {}  # the lead-in last used for each outlet
    turn = 0
    for s in chosen:
        quote = s.text[:1] in '"\u201c'
        if not out and s.source_name == coverage.first_source and not quote:
            pattern = FIRST_LEAD_IN
        elif s.source_name in heard:
            # Not "also reported that ... also raises" nor "said that ... said", and never
            # the form just used.
            forms = [
                p
                for p in AGAIN_LEAD_INS
                if not any(w in p and re.search(rf"\b{w}\b", s.text) for w in ("also", "said"))
                and p != used.get(s.source_name)
            ]
            forms = forms or ["{} noted that "]  # it says "also" and "said", after "wrote"
            pattern = forms[(heard[s.source_name] - 1) % len(forms)]
        elif quote:
            pattern = QUOTE_LEAD_INS[turn % len(QUOTE_LEAD_INS)]
            turn += 1
        else:
            pattern = LEAD_INS[turn % len(LEAD_INS)]
            turn += 1
        if pattern.endswith("that ") and quote:
            pattern = QUOTE_LEAD_INS[0]
        out.append(attribute(s, pattern, names))
        heard[s.source_name] = heard.get(s.source_name, 0) + 1
        used[s.source_name] = pattern
    return out
