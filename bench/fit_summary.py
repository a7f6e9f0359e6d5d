"""Fit the summary's sentence weights (``SUMMARY_WEIGHTS`` in aggregator/rewrite/extractive.py)
on neus-grouping ``train`` only, the one set the summary may be tuned on.

For every usable sentence of every train story, the features :func:`sentence_features` gives
(plus ``aligned``: another outlet's sentence states the same claim) and how much of the editors'
summary the sentence alone says (ROUGE-1 + ROUGE-2 + ROUGE-L F1, stemming on). Least squares
within each story (features and target centred per story: only the order of a story's own
sentences matters) gives the weights, printed as a Python dict. The shipped weights are these
times three (the scale the rest of the summary's scores are on), then refined one at a time
against the summary's ROUGE on the same split (``bench/rewrite_quality.py --split train``).
Needs the ``bench`` extra (rouge-score, scikit-learn's numpy); exits 0 when ``../shared`` is
absent:

    python bench/fit_summary.py
"""

from __future__ import annotations

import sys

from rewrite_quality import NEUS_GROUPING, neus_grouping_cases

from aggregator.rewrite.claims import align
from aggregator.rewrite.extractive import _sentences, sentence_features
from aggregator.text import terms


def main() -> int:
    if not NEUS_GROUPING.is_file():
        print(f"fit_summary: {NEUS_GROUPING} not found (../shared is absent); nothing to fit")
        return 0
    import numpy as np
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    names: list[str] = []
    rows: list[list[float]] = []
    target: list[float] = []
    story: list[int] = []
    for n, (articles, reference, _) in enumerate(neus_grouping_cases("train")):
        candidates = [s for a in articles for s in _sentences(a)]
        vectors = {(s.entry_id, s.index): dict(terms(s.text)) for s in candidates}
        found = sentence_features(candidates, vectors, articles)
        claims = align(candidates, {a.entry_id: a.lean for a in articles})
        aligned = {(s.entry_id, s.index): len(c.outlets) >= 2 for c in claims for s in c.sentences}
        for s in candidates:
            key = (s.entry_id, s.index)
            names = names or [*sorted(found[key]), "aligned"]
            rows.append([*(found[key][k] for k in names[:-1]), float(aligned[key])])
            scores = scorer.score(reference, s.text)
            target.append(sum(scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")))
            story.append(n)
    x, y, ids = np.array(rows), np.array(target), np.array(story)
    for i in np.unique(ids):
        mask = ids == i
        x[mask] -= x[mask].mean(axis=0)
        y[mask] -= y[mask].mean()
    weights, *_ = np.linalg.lstsq(x, y, rcond=None)
    print(f"{len(y)} sentences of {len(np.unique(ids))} train stories")
    print({k: round(float(w), 3) for k, w in zip(names, weights, strict=True)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
