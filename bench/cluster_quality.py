"""Clustering quality on real news: pairwise and B-cubed scores against gold story ids.

Reads ``../shared/fixtures/allsides/dev-stories.jsonl`` (100 AllSides stories, each covered by
up to three outlets of different leans; the texts are ~90-word excerpts), streams the articles
in published-time order through the project's own online clustering (``cluster.StoryIndex``,
the code the pipeline runs) and prints the scores:

    python bench/cluster_quality.py [--file PATH] [--threshold X] [--errors]

An article's published time is the date in its URL when there is one (noon UTC, at most a week
before the roundup), else the roundup's own date: the dataset gives no per-article times.
Figures are printed, never asserted. Exits 0 with a note when ../shared is absent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator import cluster
from aggregator.models import ClusterArticle

DEV = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "allsides" / "dev-stories.jsonl"
_URL_DATE = re.compile(r"/(20\d\d)[/-](\d\d)[/-](\d\d)(?:/|-|$)")
_SIDE_MINUTES = {"left": 0, "center": 7, "right": 13}  # a stable order within one day


def published_time(link: str, story_date: datetime, side: str) -> datetime:
    """The date in the article's URL when it is plausible, else the roundup's date."""
    offset = timedelta(minutes=_SIDE_MINUTES.get(side, 0))
    match = _URL_DATE.search(link or "")
    if match:
        try:
            day = datetime(*map(int, match.groups()), 12, tzinfo=UTC)
        except ValueError:
            day = None
        if day and timedelta(0) <= story_date - day <= timedelta(days=7):
            return day + offset
    return story_date + offset


def load(path: Path) -> tuple[list[ClusterArticle], dict[int, int]]:
    """Articles in published-time order, and each article's gold story id."""
    articles: list[ClusterArticle] = []
    gold: dict[int, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        story = json.loads(line)
        story_date = datetime.fromisoformat(story["date"]).astimezone(UTC)
        for side, item in story["news"].items():
            entry_id = len(articles) + 1
            title = (item.get("newsTitle") or "").strip()
            body = " ".join(item.get("newBody") or [])
            articles.append(
                ClusterArticle(
                    entry_id=entry_id,
                    source_id=item.get("newsSource") or side,
                    title=title,
                    text=body,
                    published=published_time(item.get("newsLink", ""), story_date, side),
                    kind="opinion" if item.get("opinionTag") == "OPINION" else "news",
                )
            )
            gold[entry_id] = story["id"]
    articles.sort(key=lambda a: (a.published, a.entry_id))
    return articles, gold


def pairwise(pred: dict[int, str], gold: dict[int, int]) -> tuple[float, float, float]:
    """Precision, recall and F1 over all pairs of articles put in one story."""
    ids = sorted(gold)
    tp = fp = fn = 0
    for a, b in itertools.combinations(ids, 2):
        same_pred = pred[a] == pred[b]
        same_gold = gold[a] == gold[b]
        tp += same_pred and same_gold
        fp += same_pred and not same_gold
        fn += same_gold and not same_pred
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def bcubed(pred: dict[int, str], gold: dict[int, int]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 (per-article averages)."""
    by_pred: dict[str, set[int]] = defaultdict(set)
    by_gold: dict[int, set[int]] = defaultdict(set)
    for item in gold:
        by_pred[pred[item]].add(item)
        by_gold[gold[item]].add(item)
    precision = recall = 0.0
    for item in gold:
        overlap = len(by_pred[pred[item]] & by_gold[gold[item]])
        precision += overlap / len(by_pred[pred[item]])
        recall += overlap / len(by_gold[gold[item]])
    precision /= len(gold)
    recall /= len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def _groups(labels: dict[int, object]) -> list[list[int]]:
    by_label: dict[object, list[int]] = defaultdict(list)
    for item, label in labels.items():
        by_label[label].append(item)
    return list(by_label.values())


def run(articles: list[ClusterArticle], threshold: float | None) -> dict[int, str]:
    index = cluster.StoryIndex() if threshold is None else cluster.StoryIndex(threshold=threshold)
    for art in articles:
        index.add(art)
    return index.assignments()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEV)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--errors", action="store_true", help="print wrong merges and splits")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file} not found (../shared is absent): nothing to measure.")
        return 0
    articles, gold = load(args.file)
    pred = run(articles, args.threshold)
    p, r, f1 = pairwise(pred, gold)
    bp, br, bf1 = bcubed(pred, gold)
    sizes = Counter(Counter(pred.values()).values())
    print(f"articles {len(articles)}, gold stories {len(set(gold.values()))}, ", end="")
    print(f"predicted stories {len(set(pred.values()))} (sizes {dict(sorted(sizes.items()))})")
    print(f"{'':10}{'precision':>10}{'recall':>10}{'F1':>10}")
    print(f"{'pairwise':10}{p:10.3f}{r:10.3f}{f1:10.3f}   target: P >= 0.95, F1 >= 0.92")
    print(f"{'B-cubed':10}{bp:10.3f}{br:10.3f}{bf1:10.3f}")
    if args.errors:
        title = {a.entry_id: f"{a.published:%m-%d} {a.source_id}: {a.title}" for a in articles}
        for members in _groups(pred):
            if len({gold[m] for m in members}) > 1:
                print("WRONG MERGE:", *(f"  [{gold[m]}] {title[m]}" for m in members), sep="\n")
        for members in _groups(gold):
            if len({pred[m] for m in members}) > 1:
                print("SPLIT:", *(f"  {pred[m][:6]} {title[m]}" for m in members), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
