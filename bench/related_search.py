"""The looser search behind "no left-leaning outlet has covered this story yet" (issue 19),
measured on the grouping alone: which threshold of the pair model's probability finds the
other side's article of a split story, and how often it names an article of another story.

    python bench/related_search.py [--sets dev neus] [--splits train val test] [--seeds 1]

The dev stories with their real sides (``replay.dev_set``); each neus-grouping story is
streamed as ``cluster_quality`` streams it (40 stories a day) and its three articles taken as
its left, centre and right one (as ``replay.py`` takes them).
Every article-to-story probability the index computes is kept, as the group stage records it.
Then, for each threshold and each story the grouping made that lacks a side: the claim
"not covered" is false when its gold story has that side's article elsewhere and the search
found none; a related angle is named when the search found one (the most probable), and is
wrong when it is of another gold story. ``related.RELATED`` is chosen on ``train`` only (the
highest threshold whose false claims plus wrong names are within 1% of the fewest); ``val``,
``test`` and dev are reported as they come. Exits 0 with a note when ../shared is absent.

``--complete [T ...]`` sweeps the side-completion join instead (``cluster.index.SIDE_JOIN``;
1.01 is none, today's grouping): per threshold, pairwise P, R, F1 and B-cubed F1, the claims
left at ``related.RELATED`` and how many are false, and (dev) opinion pairs joined.
``SIDE_JOIN`` is chosen on ``train`` seed 1 only: the threshold with the best pairwise F1 among
those whose precision is within 0.01 of no completion's. ``--complete ... --close`` sweeps the
floor for stories within ``SIDE_HOURS`` of the article (``SIDE_JOIN_CLOSE``) instead, with
``SIDE_JOIN`` as shipped.

``--within 180`` dates each neus story's articles within 180 minutes of its first, as the hidden
replay dates them, instead of hours apart; the shipped values are chosen on train under both.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import replace

import cluster_quality as cq
from replay import dev_set, neus_leans

from aggregator import cluster, related
from aggregator.cluster.index import SIDE_HOURS, SIDE_JOIN, SIDE_JOIN_CLOSE, SIDE_SEARCH
from aggregator.models import ClusterArticle
from aggregator.vocab import SIDES, Side, side_of

THRESHOLDS = (1.01, 0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)
# side-completion join thresholds (``--complete``); 1.01 is none (today's grouping)
COMPLETE_SWEEP = (1.01, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)


def measure(
    articles: list[ClusterArticle],
    gold: cq.Gold,
    leans: dict[int, str],
    thresholds: tuple[float, ...] = THRESHOLDS,
    side_join: float = 1.01,
    side_search: int = 0,
    side_hours: float = 0.0,
    side_join_close: float = 1.01,
) -> tuple[dict[float, tuple[int, int, int, int, int]], dict[int, str]]:
    """Per threshold: (one-sided claims, false claims left, related angles named, wrong ones,
    stories); a threshold above 1 is no search (today's claims). With the grouping's
    assignments, its side-completion joins at ``side_join`` (above 1: none; at
    ``side_join_close`` for stories within ``side_hours``)."""
    index = cluster.StoryIndex(
        side_join=side_join,
        side_join_close=side_join_close,
        side_search=side_search,
        side_hours=side_hours,
    )
    links: list[tuple[int, str, float]] = []  # (entry, story then, p)
    for art in articles:
        found = index.add(replace(art, side=side_of(leans[art.entry_id], Side.CENTER)))
        links += [
            (art.entry_id, s.story_id, s.score)
            for s in related.related_steps(
                art.entry_id, found.story_id, found.near, min(thresholds)
            )
        ]
    story_of = index.assignments()
    members: dict[str, list[int]] = defaultdict(list)
    for entry, sid in story_of.items():
        members[sid].append(entry)
    by_gold: dict[object, list[int]] = defaultdict(list)
    for entry, g in gold.items():
        by_gold[g].append(entry)
    out = {}
    for t in thresholds:
        rel: dict[str, dict[int, float]] = defaultdict(dict)  # story -> entry -> p
        for entry, sid, p in links:
            if p < t:
                continue
            sid = index.resolve(sid)
            own = story_of[entry]
            if own == sid:
                continue
            # both ways: the entry for the story, the story's members for the entry's story
            rel[sid][entry] = max(p, rel[sid].get(entry, 0.0))
            for other in members[sid]:
                rel[own][other] = max(p, rel[own].get(other, 0.0))
        claims = false = named = wrong = 0
        for sid, mine in members.items():
            sides = {side_of(leans[e]) for e in mine}
            golds = {gold[e] for e in mine}
            for side in SIDES:
                if side in sides:
                    continue
                claims += 1
                found = [
                    (p, e)
                    for e, p in rel[sid].items()
                    if side_of(leans[e]) == side and story_of[e] != sid
                ]
                if found:
                    named += 1
                    best = max(found)[1]
                    wrong += gold[best] not in golds
                elif any(
                    side_of(leans[e]) == side and e not in mine for g in golds for e in by_gold[g]
                ):
                    false += 1
        out[t] = (claims, false, named, wrong, len(members))
    return out, story_of


def completion_rows(
    label: str,
    articles: list[ClusterArticle],
    gold: cq.Gold,
    leans: dict[int, str],
    thresholds: tuple[float, ...],
    close: bool = False,
) -> None:
    """The grouping and the claims of absence at each side-completion threshold (the shipped
    side search at ``related.RELATED``): pairwise and B-cubed scores, false "not covered"
    claims left, related angles named and wrong, opinion pairs joined (where opinion pieces
    are known). With ``close``, the thresholds are ``side_join_close``'s, beside the shipped
    ``SIDE_JOIN``."""
    opinion = {a.entry_id for a in articles if a.kind == "opinion"}
    for t in thresholds:
        got, pred = measure(
            articles,
            gold,
            leans,
            (related.RELATED,),
            side_join=SIDE_JOIN if close else t,
            side_search=SIDE_SEARCH,
            side_hours=SIDE_HOURS,
            side_join_close=t if close else 1.01,
        )
        claims, false, named, wrong, n = got[related.RELATED]
        figures = cq.scores(pred, gold)
        (oj, on), _ = cq.join_rates(pred, gold, opinion)
        print(
            f"{label:18}{t:10.3f}"
            + "".join(f"{figures[c]:7.3f}" for c in ("P", "R", "F1", "B3 F1"))
            + f"{n:8d}{claims:8d}{false:8d}{named:8d}{wrong:8d}"
            + (f"  opinion pairs {oj}/{on}" if on else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=("dev", "neus"), default=["dev", "neus"])
    parser.add_argument("--splits", nargs="+", choices=cq.SPLITS, default=list(cq.SPLITS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument(
        "--complete",
        nargs="*",
        type=float,
        help="side-completion join thresholds to sweep (none given: COMPLETE_SWEEP)",
    )
    parser.add_argument(
        "--close",
        action="store_true",
        help="with --complete: sweep the floor for stories within SIDE_HOURS "
        "(cluster.index.SIDE_JOIN_CLOSE), SIDE_JOIN as shipped",
    )
    parser.add_argument(
        "--side-search",
        nargs="+",
        type=int,
        default=[SIDE_SEARCH],
        help="how many more stories without its side a sided article is compared with "
        "(cluster.index.SIDE_SEARCH), each measured in turn (default: the shipped value)",
    )
    parser.add_argument(
        "--side-hours",
        nargs="+",
        type=float,
        help="the side search also takes stories within this many hours "
        "(cluster.index.SIDE_HOURS), each measured in turn (default: the shipped value)",
    )
    parser.add_argument(cq.WITHIN_FLAG, type=float, help=cq.WITHIN_HELP)
    args = parser.parse_args(argv)
    if not cq.NEUS.is_file():
        print(f"{cq.NEUS} not found (../shared is absent): nothing to measure.")
        return 0
    print(f"shipped threshold related.RELATED = {related.RELATED}")
    print(
        f"{'':18}{'threshold':>10}{'stories':>8}{'claims':>8}{'false':>8}{'named':>8}{'wrong':>8}"
    )
    runs = []
    if "dev" in args.sets:
        runs.append(("dev", *dev_set()))
    for split in args.splits if "neus" in args.sets else ():
        for seed in args.seeds:
            articles, gold = cq.stream(cq.neus_stories(split), seed, cq.DENSITY, args.within)
            runs.append((f"{split} seed {seed}", articles, gold, neus_leans(articles, gold)))
    if args.complete is not None:
        print(
            f"shipped side-completion thresholds cluster.index.SIDE_JOIN = {SIDE_JOIN}, "
            f"SIDE_JOIN_CLOSE = {SIDE_JOIN_CLOSE} (within SIDE_HOURS = {SIDE_HOURS:g} h)"
        )
        print(
            f"{'':18}{'side join':>10}{'P':>7}{'R':>7}{'F1':>7}{'B3 F1':>7}"
            f"{'stories':>8}{'claims':>8}{'false':>8}{'named':>8}{'wrong':>8}"
        )
        for label, articles, gold, leans in runs:
            sweep = tuple(args.complete or COMPLETE_SWEEP)
            completion_rows(label, articles, gold, leans, sweep, args.close)
        return 0
    for label, articles, gold, leans in runs:
        for wide in args.side_search:
            for hours in args.side_hours or [SIDE_HOURS]:
                rows = measure(
                    articles,
                    gold,
                    leans,
                    side_join=SIDE_JOIN,
                    side_search=wide,
                    side_hours=hours,
                    side_join_close=SIDE_JOIN_CLOSE,
                )[0]
                for t, (claims, false, named, wrong, n) in rows.items():
                    print(
                        f"{f'{label} +{wide} {hours:g}h':24}{t:6.3f}{n:8d}{claims:8d}{false:8d}"
                        f"{named:8d}{wrong:8d}  (named wrong {wrong / max(named, 1):.0%})"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
