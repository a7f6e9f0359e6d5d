"""How central each sentence is, and which central sentences say something new.

A sentence that the *other* outlets also say is a fact the sources agree on: its mean
best-match similarity to every other source weighs most, with its place in the similarity
graph (LexRank), the titles' words and an early position (:func:`centrality`, weights tuned
with ``bench/rewrite_quality.py``). Maximal marginal relevance (:func:`mmr`) then takes the
central sentences without saying one fact twice. :func:`representative` picks the plainest
wording of a claim several outlets state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aggregator.models import Sentence, SentenceKey
from aggregator.rewrite.claims import Claim
from aggregator.rewrite.lexicon import loadedness, side_taking_words
from aggregator.text import add_terms, cosine, word_count
from aggregator.vocab import Lean

Vector = Mapping[str, float]  # a text's terms and their weights (aggregator.text.terms)

# Summary weights, tuned with bench/rewrite_quality.py (NeuS val, AllSides dev): see centrality.
TITLE_WEIGHT = 0.2
LEAD_WEIGHT = 0.6
GRAPH_WEIGHT = 0.3  # LexRank weight, scaled so an average sentence scores 0
QUOTE_PENALTY = 0.3  # a sentence opening with a quotation is someone's words, not a fact
REPEAT_SIMILARITY = 0.4  # above this, two sentences state the same fact
LOADED_PENALTY = 0.3  # per loaded or sensational word ("slams", "fiasco")
LEAN_BONUS: dict[str, float] = {
    Lean.CENTER: 0.02
}  # a tie-break only: more cost ROUGE on the AllSides set
CONTAINED = 0.5  # at or above this share of its words already said, a sentence adds too little
OVERRUN = 1.3  # the last summary sentence may run this far past summary_words


def centrality(
    candidates: Sequence[Sentence],
    vectors: Mapping[SentenceKey, Vector],
    titles: Mapping[str, float],
    leans: Mapping[int, str],
) -> dict[SentenceKey, float]:
    """How much of each sentence the *other* sources also say, with the titles and the lead.

    Mean best-match similarity to every other source is the strongest sign that a sentence is a
    fact the sources agree on (measured on the NeuS and AllSides sets by
    ``bench/rewrite_quality.py``); its place in the graph of all the sentences (LexRank), the
    titles' words and an early position add a little. Of two equally central sentences, the
    centre outlet's and the one without loaded words win.
    """
    found = sentence_features(candidates, vectors, titles)
    return {
        key: (
            f["support"]
            + GRAPH_WEIGHT * f["graph"]
            + TITLE_WEIGHT * f["title"]
            + LEAD_WEIGHT * f["lead"]
            + LEAN_BONUS.get(leans.get(key[0], ""), 0.0)
            - QUOTE_PENALTY * f["quote"]
            - LOADED_PENALTY * f["loaded"]
        )
        for key, f in found.items()
    }


def sentence_features(
    candidates: Sequence[Sentence],
    vectors: Mapping[SentenceKey, Vector],
    titles: Mapping[str, float],
) -> dict[SentenceKey, dict[str, float]]:
    """What the scores weigh, per sentence: ``support`` (mean best-match similarity to each
    other source), ``graph`` (LexRank, 0 for an average sentence), ``title`` (cosine with the
    titles' words), ``lead`` (1 / (1 + index)), ``centroid`` (cosine with all the sentences'
    words), ``words`` (length / 30), ``quote`` (opens with a quotation) and ``loaded`` (loaded
    words)."""
    keys = [s.key for s in candidates]
    similar: list[dict[int, float]] = [{} for _ in keys]  # only the pairs that share a term
    for i, a in enumerate(keys):
        for j in range(i + 1, len(keys)):
            sim = cosine(vectors[a], vectors[keys[j]])
            if sim:
                similar[i][j] = similar[j][i] = sim
    sources = sorted({s.source_id for s in candidates})
    others = max(1, len(sources) - 1)
    rank = _graph_rank(similar)
    centroid: dict[str, float] = {}
    for key in keys:
        add_terms(centroid, vectors[key])
    found = {}
    for i, s in enumerate(candidates):
        best = dict.fromkeys(sources, 0.0)
        for j, sim in similar[i].items():
            theirs = candidates[j].source_id
            best[theirs] = max(best[theirs], sim)
        support = sum(sim for source_id, sim in best.items() if source_id != s.source_id)
        found[keys[i]] = {
            "support": support / others,
            "graph": rank[i] * len(keys) - 1.0,
            "title": cosine(vectors[keys[i]], titles),
            "lead": 1.0 / (1 + s.index),
            "centroid": cosine(vectors[keys[i]], centroid),
            "words": word_count(s.text) / 30,
            "quote": 1.0 if s.text[:1] in '"\u201c' else 0.0,
            "loaded": float(side_taking_words(s.text)),
        }
    return found


def _graph_rank(similar: Sequence[Mapping[int, float]], damping: float = 0.85) -> list[float]:
    """LexRank (Erkan & Radev 2004): the stationary weight of each sentence in a random walk
    over the similarity graph, so a sentence that many central sentences resemble is central.
    A few dozen steps of power iteration settle it to well within what the score can use."""
    n = len(similar)
    if not n:
        return []
    totals = [1.0 + sum(row.values()) for row in similar]  # each sentence is like itself
    rank = [1.0 / n] * n
    for _ in range(50):
        nxt = [(1.0 - damping) / n] * n
        for i, row in enumerate(similar):
            share = damping * rank[i] / totals[i]
            nxt[i] += share
            for j, sim in row.items():
                nxt[j] += share * sim
        done = max(abs(x - y) for x, y in zip(nxt, rank, strict=True)) < 1e-6 / n
        rank = nxt
        if done:
            break
    return rank


def mmr(
    candidates: Sequence[Sentence],
    scores: Mapping[SentenceKey, float],
    vectors: Mapping[SentenceKey, Vector],
    *,
    max_words: float | None = None,
    max_count: int | None = None,
    redundancy: float = 0.5,
    repeat: float = REPEAT_SIMILARITY,
    contained: float = CONTAINED,
    extra_words: Mapping[SentenceKey, int] | None = None,
    claim_of: Mapping[SentenceKey, Claim] | None = None,
) -> list[Sentence]:
    """Maximal marginal relevance: the central sentences, without saying anything twice.

    A sentence closer than ``repeat`` to one already chosen is a near-repeat (the same fact in
    another outlet's words) and is never taken. With ``max_words``, the last sentence may run
    past the target by up to a third rather than leave the summary short.
    """
    chosen: list[Sentence] = []
    words_used = 0
    pool = list(candidates)
    while pool and (max_count is None or len(chosen) < max_count):

        def gain(s: Sentence) -> float:
            vec = vectors[s.key]
            overlap = max((cosine(vec, vectors[c.key]) for c in chosen), default=0.0)
            return scores[s.key] - redundancy * overlap

        best = max(pool, key=lambda s: (gain(s), -s.index, s.source_id))
        pool.remove(best)
        vec = vectors[best.key]
        if any(cosine(vec, vectors[c.key]) > repeat for c in chosen):
            continue  # a near-repeat of a sentence we already have
        if chosen and _contained(vec, [vectors[c.key] for c in chosen]) >= contained:
            continue  # nearly every word of it already said, if spread over several sentences
        if claim_of and any(claim_of[c.key] is claim_of[best.key] for c in chosen):
            continue  # the same claim in another outlet's words
        n = word_count(best.text) + (extra_words or {}).get(best.key, 0)
        if max_words is not None and chosen and words_used + n > max_words * OVERRUN:
            continue
        chosen.append(best)
        words_used += n
        if max_words is not None and words_used >= max_words:
            break
    return chosen


def _contained(vec: Mapping[str, float], chosen: Sequence[Mapping[str, float]]) -> float:
    """The share of a sentence's term weight that the chosen sentences already use."""
    total = sum(vec.values())
    if not total:
        return 1.0
    said = set().union(*chosen)
    return sum(w for t, w in vec.items() if t in said) / total


def representative(
    claim: Claim,
    scores: Mapping[SentenceKey, float],
    opinion: frozenset[int] = frozenset(),
) -> Sentence:
    """The claim in its least loaded wording, a news article's before an opinion piece's
    (entry ids in ``opinion``) and a centre outlet's before a side's; of equally plain ones,
    the most central."""
    lean = dict(zip((s.key for s in claim.sentences), claim.leans, strict=True))
    return min(
        claim.sentences,
        key=lambda s: (
            loadedness(s.text),
            s.entry_id in opinion,
            lean[s.key] != Lean.CENTER,
            s.text[:1] in '"\u201c',
            -scores.get(s.key, 0.0),
            s.entry_id,
            s.index,
        ),
    )
