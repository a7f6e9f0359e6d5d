"""Fit the grouping's pair model on the ``train`` split, and write ``grouping_model.json``.

    python bench/train_grouping.py [--out aggregator/grouping_model.json]
    python bench/train_grouping.py --embeddings   # -> aggregator/grouping_model_embed.json

The data: ``../shared/fixtures/neus-grouping`` ``train`` stories (2,171 real AllSides stories,
three articles each), streamed as ``bench/cluster_quality.py`` streams them (40 stories a day,
seeds 1-3). Each article is scored against the candidate stories the index proposes, with the
stories kept pure (every article joins its gold story: teacher forcing), so the model learns
"same event or not" on exactly the candidates it will see. A logistic regression (scikit-learn,
a bench extra) over the features and their pairwise products is fitted, the scaling folded into
the weights, and the join threshold chosen as the one with the best pairwise F1 of a full
streaming run over the first ``train`` stream. Nothing of ``val``, ``test`` or the dev stories
is read. Needs scikit-learn (``pip install -e '.[bench]'``); ``--embeddings`` fits the
variant with the sentence-vector features too (``cluster.EMBEDDING_FEATURES``), which needs the
embeddings extra (``pip install -e '.[embeddings]'``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import cluster_quality as cq

from aggregator import cluster, pair_model

OUT = Path(__file__).resolve().parents[1] / "aggregator" / "grouping_model.json"
EMBED_OUT = OUT.with_name(cluster.EMBED_MODEL)
SEEDS = (1, 2, 3)
SWEEP_SEEDS = 1  # full runs on the first stream only: the sweep is the slow part
JOINS = (0.3, 0.4, 0.5, 0.6, 0.7)
DEGREE = 2  # every pairwise product too: better on train (and, looked at once, on val and dev)


def feature_names(embedded: bool) -> tuple[str, ...]:
    """What the index computes: the lexical features, then the embedding ones when embedded."""
    return cluster.FEATURES + (cluster.EMBEDDING_FEATURES if embedded else ())


def pairs(
    articles: list, gold: cq.Gold, embedder: object = None
) -> tuple[list[list[float]], list[int]]:
    """Features and labels of every (article, candidate story) pair of a teacher-forced run."""
    features = feature_names(embedder is not None)
    placeholder = pair_model.PairModel(features, (), 0.0, 1.0, 1)
    index = cluster.StoryIndex(model=placeholder, near_duplicates=False, embedder=embedder)  # type: ignore[arg-type]
    xs: list[list[float]] = []
    ys: list[int] = []
    for art in articles:
        index._forget_old(art.published)
        doc = index.doc(art)
        target = str(gold[art.entry_id])
        for story in index.candidates(doc.vec, art.published):
            xs.append(index.pair_features(doc, story, art.published))
            ys.append(int(story.story_id == target))
        index._attach(art, doc, target)
    return xs, ys


def fit(xs: list[list[float]], ys: list[int], degree: int) -> tuple[list[float], float]:
    """Logistic regression on the expanded features; standard scaling folded into the weights."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([pair_model.expand(row, degree) for row in xs])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000).fit((x - mean) / scale, np.array(ys))
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - (model.coef_[0] * mean / scale).sum())
    return [float(w) for w in weights], bias


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--degree", type=int, choices=(1, 2), default=DEGREE)
    parser.add_argument(
        "--embeddings", action="store_true", help="with sentence-vector features (the extra)"
    )
    args = parser.parse_args(argv)
    out = args.out or (EMBED_OUT if args.embeddings else OUT)
    if not cq.NEUS.is_file():
        print(f"{cq.NEUS} not found (../shared is absent): nothing to fit.")
        return 0
    stories = cq.neus_stories("train")
    streams = [cq.stream(stories, seed) for seed in SEEDS]
    embedder = None
    if args.embeddings:
        embedder = cq.CachedEmbedder()
        embedder.warm(streams[0][0])  # the seeds differ in order and times, not in texts
    features = feature_names(embedder is not None)
    xs: list[list[float]] = []
    ys: list[int] = []
    for articles, gold in streams:
        more_x, more_y = pairs(articles, gold, embedder)
        xs += more_x
        ys += more_y
    print(f"train: {len(xs)} pairs, {sum(ys)} of them the same story")
    weights, bias = fit(xs, ys, args.degree)
    best = None
    for join in JOINS:
        model = pair_model.PairModel(features, tuple(weights), bias, join, args.degree)
        runs = [
            cq.scores(cq.run(a, model=model, embedder=embedder), g)
            for a, g in streams[:SWEEP_SEEDS]
        ]
        mean = {c: statistics.mean(r[c] for r in runs) for c in cq.COLUMNS}
        print(f"join {join:.2f}: " + " ".join(f"{c} {mean[c]:.3f}" for c in cq.COLUMNS))
        if best is None or mean["F1"] > best[0]:
            best = (mean["F1"], join)
    assert best is not None
    data = {
        "about": "grouping pair model: bench/train_grouping.py, fitted on neus-grouping train",
        "features": list(features),
        "degree": args.degree,
        "terms": "the features, then (degree 2) every product x[i]*x[j] for i <= j",
        "weights": [round(w, 8) for w in weights],
        "bias": round(bias, 8),
        "join": best[1],
    }
    if args.embeddings:
        data["about"] += ", with sentence embeddings (all-MiniLM-L6-v2, the embeddings extra)"
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"join threshold {best[1]} (train pairwise F1 {best[0]:.3f}); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
