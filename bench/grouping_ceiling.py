"""How far can the grouping's pair model go on neus-grouping? Three measurements of a ceiling.

    python bench/grouping_ceiling.py [--embeddings] [--splits val test]

1. **Capacity** (train only). The pair model is a logistic regression over the features and
   their products. Does a stronger learner see more in the same features? Fitted on one half of
   ``train`` and scored on the other half, pair by pair (article against candidate story):
   ROC AUC, average precision, the best F1 over all thresholds, and the recall left at 0.95
   precision, for the logistic regression beside gradient-boosted trees (scikit-learn).
2. **Where recall goes** (train, the shipped model, streamed as ``cluster_quality`` does):
   for each article whose gold story is already in the index, is that story among the
   candidates, and does the model's probability reach the join threshold? And the same
   decisions with a perfect history, to tell the model's misses from mistakes piling up.
3. **In-sample ceiling** (``--splits``, val and test by default). The pair model is fitted on
   the very split it is then scored on (its own three seeds' pairs), and the join threshold is
   the best of a fine sweep on the same streams: what no honest fit of these features can beat,
   since it has seen the answers. ``dev`` (the 100 dated dev stories, one stream) may be
   named too. Nothing here is shipped or feeds a shipped choice: it only
   bounds what re-weighting the features could buy.

Reads ``../shared/fixtures/neus-grouping`` (exits 0 with a note when it is absent). Needs the
``bench`` extra (scikit-learn); ``--embeddings`` adds the sentence-vector features (the
``embeddings`` extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter

import cluster_quality as cq
import train_grouping as tg

from aggregator import cluster, pair_model

SEEDS = (1, 2, 3)
JOINS = tuple(j / 20 for j in range(4, 17))  # 0.20 .. 0.80


def _pair_report(name: str, y: object, p: object) -> None:
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    pr, rc, _ = precision_recall_curve(y, p)
    f1 = 2 * pr * rc / np.maximum(pr + rc, 1e-12)
    best = int(f1.argmax())
    at95 = rc[pr >= 0.95]
    print(
        f"  {name:26} AUC {roc_auc_score(y, p):.4f}  AP {average_precision_score(y, p):.4f}  "
        f"best F1 {f1[best]:.3f} (P {pr[best]:.3f} R {rc[best]:.3f})  "
        f"R at P>=0.95 {at95.max() if len(at95) else 0.0:.3f}"
    )


def capacity(embedder: object) -> None:
    """A logistic regression and gradient-boosted trees, fitted on train half A, on half B."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    stories = cq.neus_stories("train")
    half = len(stories) // 2
    features = tg.feature_names(embedder is not None)

    def data(part: list[dict], seeds: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        xs: list[list[float]] = []
        ys: list[int] = []
        for seed in seeds:
            x, y = tg.pairs(*cq.stream(part, seed), embedder)
            xs += x
            ys += y
        return np.array(xs), np.array(ys)

    xa, ya = data(stories[:half], SEEDS)
    xb, yb = data(stories[half:], SEEDS[:1])
    print(f"1. capacity: fitted on train half A ({len(ya)} pairs), scored on half B ({len(yb)})")
    weights, bias = tg.fit(xa.tolist(), ya.tolist(), tg.DEGREE)
    model = pair_model.PairModel(features, tuple(weights), bias, 0.5, tg.DEGREE)
    _pair_report("logistic regression deg 2", yb, [model.probability(r) for r in xb])
    for rounds, leaves in ((300, 31), (600, 63)):
        trees = HistGradientBoostingClassifier(
            max_iter=rounds, learning_rate=0.1 if rounds == 300 else 0.05,
            max_leaf_nodes=leaves, random_state=0,
        ).fit(xa, ya)  # fmt: skip
        _pair_report(f"boosted trees {rounds}x{leaves}", yb, trees.predict_proba(xb)[:, 1])


def recall_losses(embedder: object) -> None:
    """Why an article misses its gold story: not a candidate, or below the join threshold."""
    counts: Counter[str] = Counter()
    for seed in SEEDS:
        articles, gold = cq.stream(cq.neus_stories("train"), seed)
        index = cluster.StoryIndex(embedder=embedder)  # type: ignore[arg-type]
        placed: dict[str, set[str]] = {}
        for art in articles:
            index._forget_old(art.published)
            earlier = {index.resolve(s) for s in placed.get(str(gold[art.entry_id]), ())}
            earlier &= index.stories.keys()
            if earlier:
                doc = index.doc(art, learn=False)
                scored = {s.story_id: p for p, s in index.scored(doc, art.published)}
                found = earlier & scored.keys()
                if not found:
                    counts["its story is no candidate"] += 1
                elif max(scored[s] for s in found) < index.threshold:
                    counts["below the join threshold"] += 1
                else:
                    counts["at or above the threshold"] += 1
            sid = index.add(art).story_id
            placed.setdefault(str(gold[art.entry_id]), set()).add(sid)
    total = sum(counts.values())
    print(f"2. where recall goes (train, seeds 1-3, {total} articles whose story was open):")
    for what, n in counts.most_common():
        print(f"  {what:28} {n:6}  {n / total:.3f}")


def teacher_forced(embedder: object) -> None:
    """The same decisions with a perfect history (every earlier article in its gold story): if
    recall were lost to earlier mistakes piling up, it would come back here."""
    counts: Counter[str] = Counter()
    for seed in SEEDS:
        articles, gold = cq.stream(cq.neus_stories("train"), seed)
        index = cluster.StoryIndex(near_duplicates=False, embedder=embedder)  # type: ignore[arg-type]
        for art in articles:
            index._forget_old(art.published)
            target = str(gold[art.entry_id])
            doc = index.doc(art)  # as ``StoryIndex.add`` makes it: its words counted first
            scored = index.scored(doc, art.published)
            joined = scored[0][1].story_id if scored and scored[0][0] >= index.threshold else None
            if target not in index.stories:
                counts["opens, rightly" if joined is None else "joins, should open"] += 1
            elif joined is None:
                counts["opens, should join"] += 1
            else:
                counts["joins its story" if joined == target else "joins another story"] += 1
            index._attach(art, doc, target)
    joinable = sum(n for what, n in counts.items() if what in _JOINABLE)
    print(f"   with a perfect history (teacher-forced; {joinable} articles whose story was open):")
    for what in _JOINABLE:
        print(f"  {what:28} {counts[what]:6}  {counts[what] / joinable:.3f}")
    print(f"  {'joins, should open':28} {counts['joins, should open']:6}")


_JOINABLE = ("joins its story", "opens, should join", "joins another story")


def in_sample(split: str, embedder: object) -> None:
    """Fit and choose the threshold on ``split`` itself, then score ``split``: a ceiling."""
    if split == "dev":  # the 100 dated dev stories: one stream, their own times
        streams = [cq.load()]
    else:
        streams = [cq.stream(cq.neus_stories(split), seed) for seed in SEEDS]
    xs: list[list[float]] = []
    ys: list[int] = []
    for articles, gold in streams:
        x, y = tg.pairs(articles, gold, embedder)
        xs += x
        ys += y
    weights, bias = tg.fit(xs, ys, tg.DEGREE)
    features = tg.feature_names(embedder is not None)
    best: tuple[float, float, list[dict[str, float]]] | None = None
    for join in JOINS:
        model = pair_model.PairModel(features, tuple(weights), bias, join, tg.DEGREE)
        runs = [cq.scores(cq.run(a, model=model, embedder=embedder), g) for a, g in streams]
        f1 = statistics.mean(r["F1"] for r in runs)
        if best is None or f1 > best[0]:
            best = (f1, join, runs)
    assert best is not None
    print(f"3. in-sample ceiling on {split} (fitted and thresholded on it; join {best[1]:.2f})")
    for seed, figures in zip(SEEDS, best[2], strict=False):
        print(f"  {split} seed {seed}" + "".join(f"  {c} {figures[c]:.3f}" for c in cq.COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="*", default=["val", "test"])
    parser.add_argument("--embeddings", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["capacity", "losses"])
    args = parser.parse_args(argv)
    if not cq.NEUS.is_file():
        print(f"{cq.NEUS} not found (../shared is absent): nothing to measure.")
        return 0
    embedder = None
    if args.embeddings:
        embedder = cq.CachedEmbedder()
        embedder.warm(cq.stream(cq.neus_stories("train"), 1)[0])
        for split in args.splits:
            stream = cq.load() if split == "dev" else cq.stream(cq.neus_stories(split), 1)
            embedder.warm(stream[0])
    if "capacity" not in args.skip:
        capacity(embedder)
    if "losses" not in args.skip:
        recall_losses(embedder)
        teacher_forced(embedder)
    for split in args.splits:
        in_sample(split, embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
