"""Claim alignment: the sentences of different articles that state the same claim, as one claim.

Two outlets rarely write a fact the same way ("has pledged to sign the bill", "has said she
would sign the bill"), so sentences are compared on what they *say* rather than on their
strings: content words lightly stemmed (verb endings too), numbers read as numbers ("$412M" and
"$412 million"), speech verbs ("said", "told") dropped; complete linkage keeps a chain of
loosely alike sentences from becoming one claim. Pure functions over
:class:`~aggregator.models.Sentence`: no state, no I/O, and the same sentences always give the
same claims.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aggregator.models import Sentence
from aggregator.text import STOPWORDS, VERB_ENDINGS, cosine, stem, words
from aggregator.vocab import SIDES, Lean, Side, side_of

SAME_CLAIM = 0.3  # similarity at or above which two sentences state the same claim
CORROBORATED = 0.35  # share of a sentence's features an article states: it reports the claim too
# (0.5 missed plain paraphrases, "heading for recounts" and "there will be recounts": on
# neus-grouping train stories 400-1399, 0.35 leaves 49% of summaries attributing, not 64%)
SHARED_ENTITIES = 3  # ... or if they name this many of the same people, places and bodies
CONTENT_MIN = 0.2  # ... if their words other than names are this alike (two words at least)
# Speech verbs and fillers say who said a thing, not what was said.
_NOISE = frozenset(
    "say said says saying stated state added add adds noted note told tell tells reported report "
    "reports announced announce explained explains called also just".split()
)
_NUMBER_RE = re.compile(r"^\d[\d,.]*\d$|^\d$")
_SCALE = frozenset({"million", "billion", "trillion", "thousand", "percent"})


@dataclass(frozen=True)
class Claim:
    """One claim and every sentence (at most one per article) that states it.

    ``sentences`` are in reporting order: the earliest article's sentence first. ``leans`` holds
    the lean of each sentence's outlet, in the same order.
    """

    sentences: tuple[Sentence, ...]
    leans: tuple[str, ...]

    @property
    def outlets(self) -> tuple[str, ...]:
        """The outlets that report the claim, each once, first reporter first."""
        return tuple(dict.fromkeys(s.source_name for s in self.sentences))

    @property
    def sides(self) -> frozenset[Side]:
        """Which sides report it (an outlet of no known lean counts with the centre)."""
        return frozenset(side_of(lean, Side.CENTER) for lean in self.leans)

    def only(self, keep: Callable[[Sentence], bool]) -> Claim:
        """The claim as stated by the sentences ``keep`` accepts (news ones, say)."""
        pairs = [(s, lean) for s, lean in zip(self.sentences, self.leans, strict=True) if keep(s)]
        return Claim(tuple(s for s, _ in pairs), tuple(lean for _, lean in pairs))

    @property
    def both_sides(self) -> bool:
        """Reported by a left or lean-left outlet and by a right or lean-right one."""
        return set(SIDES) <= self.sides


def features(text: str, *, with_names: bool = False) -> list:
    """What a sentence says, as comparable tokens: content words stemmed, verb endings too
    (:func:`~aggregator.text.stem` with :data:`~aggregator.text.VERB_ENDINGS`), numbers as
    numbers ("3.5%" and "3.5 percent" alike). With ``with_names``, each token comes with whether
    it is a name (capitalized after the first word)."""
    out: list = []
    found = words(text)
    for position, word in enumerate(found):
        low = word.lower().replace("\u2019", "'")
        if _NUMBER_RE.match(word):
            token = word.replace(",", "").rstrip(".")  # "$412M" and "$412 million": 412
        elif low in STOPWORDS or low in _NOISE or low in _SCALE or len(low) < 3:
            continue
        else:
            token = stem(low, endings=VERB_ENDINGS)
        # The first word is a name's when the next one is capitalized too ("Council President").
        after = found[position + 1] if position + 1 < len(found) else ""
        name = word[:1].isupper() and (position > 0 or after[:1].isupper())
        out.append((token, name) if with_names else token)
    return out


# (every feature, the non-name ones, the entities named: each name's last word)
Vector = tuple[dict[str, float], dict[str, float], frozenset[str]]


def vectors(sentences: Sequence[Sentence]) -> list[Vector]:
    """Each sentence's features as counts, with its non-name features and the entities it
    names apart. (Weighting features by rarity within the story was tried: in a story of a
    few leads it drowns the names and verbs two outlets share, and found half as many claims
    stated by two outlets on neus-grouping train.)"""
    out = []
    for sentence in sentences:
        every: dict[str, float] = {}
        content: dict[str, float] = {}
        entities: set[str] = set()
        tokens = features(sentence.text, with_names=True)
        for i, (token, name) in enumerate(tokens):
            every[token] = every.get(token, 0.0) + 1.0
            if not name:
                content[token] = content.get(token, 0.0) + 1.0
            elif i + 1 == len(tokens) or not tokens[i + 1][1]:
                entities.add(token)  # "Council President Ines Duarte": duarte
        out.append((every, content, frozenset(entities)))
    return out


def similarity(a: Vector, b: Vector) -> float:
    """How surely two sentences state the same claim (0 to 1): their features' cosine, but
    only when they also share what is said, not just who (two things one mayor said are two
    claims): two words besides names, or three different entities ("Biden", "Florida",
    "Illinois"), at least."""
    says = len(a[1].keys() & b[1].keys()) >= 2 and cosine(a[1], b[1]) >= CONTENT_MIN
    if not says and len(a[2] & b[2]) < SHARED_ENTITIES:
        return 0.0
    return cosine(a[0], b[0])


def align(
    sentences: Sequence[Sentence],
    leans: Mapping[int, str],
    order: Mapping[int, int] | None = None,
    threshold: float = SAME_CLAIM,
) -> list[Claim]:
    """Group ``sentences`` into claims, most similar pairs first (complete linkage: every two
    sentences of a claim are at least ``threshold`` alike, and no article appears twice).

    ``leans`` maps entry ids to leans; ``order`` maps entry ids to their reporting order (the
    earliest article first); without it, entry ids give the order. Claims come out in the
    order their first sentence appears (reporting order, then position in the article).
    """
    rank = order or {}
    items = sorted(sentences, key=lambda s: (rank.get(s.entry_id, s.entry_id), s.index))
    vecs = vectors(items)
    pairs = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if items[i].entry_id == items[j].entry_id:
                continue
            sim = similarity(vecs[i], vecs[j])
            if sim >= threshold:
                pairs.append((-sim, i, j))
    pairs.sort()
    group = list(range(len(items)))  # each sentence's claim, by the index of a member
    members: dict[int, list[int]] = {i: [i] for i in range(len(items))}
    sims = {(i, j): -s for s, i, j in pairs}
    for _, i, j in pairs:
        gi, gj = group[i], group[j]
        if gi == gj:
            continue
        a, b = members[gi], members[gj]
        if {items[k].entry_id for k in a} & {items[k].entry_id for k in b}:
            continue  # one article states a claim once
        if any((min(x, y), max(x, y)) not in sims for x in a for y in b):
            continue  # some pair is not alike enough
        keep, gone = min(gi, gj), max(gi, gj)
        members[keep] = sorted(a + b)
        del members[gone]
        for k in members[keep]:
            group[k] = keep
    claims = []
    for first in sorted(members):
        picked = [items[k] for k in members[first]]
        claims.append(
            Claim(
                sentences=tuple(picked),
                leans=tuple(leans.get(s.entry_id, Lean.CENTER) for s in picked),
            )
        )
    return claims


def corroborated(sentence: Sentence, text_features: set[str], share: float = CORROBORATED) -> bool:
    """Whether an article (``text_features``: the :func:`features` of its whole text) states
    what ``sentence`` says, even spread over several sentences: at least ``share`` of the
    sentence's features (names and numbers included, two at least) appear in it, and every
    number it gives."""
    mine = set(features(sentence.text))
    if len(mine) < 2:
        return False
    if any(t[:1].isdigit() and t not in text_features for t in mine):
        return False  # a figure the other outlet does not give is this outlet's alone
    return len(mine & text_features) / len(mine) >= share
