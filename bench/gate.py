"""The quality gate CI runs: grouping, the rewrite and extraction, each against a pinned floor.

The tuned weights (grouping's pair model, the summary's weights, the extraction's rules) rest
on bench figures; this gate keeps them from sliding unnoticed. Three sets, each scored
by its bench's own loading and scoring code (nothing is copied here) and read from
``../shared/fixtures`` at run time:

- grouping: all 281 stories of neus-grouping ``val`` (843 articles), streamed as
  ``cluster_quality.py`` streams them (40 stories a day) with seeds 1, 2 and 3, scored by
  pairwise precision and recall and B-cubed F1, each the mean over the three seeds. The whole
  split is the fixed slice: it groups in a few seconds.
- rewrite: our summary's ROUGE-1, -2 and -L F1 against the editors' roundup on the 100 AllSides
  dev stories (``rewrite_quality.py``; ``summary_words`` 66), mean over stories.
- extraction: ``extract_article``'s shingle precision, recall and F1 on the 40 annotated pages
  (``extract_quality.py``).

The computations are deterministic: a refactor that changes no output gives the same figures
to the last digit. The noise is how much a figure moves on another sample of the same size,
which is as much as a change that helps some stories and hurts others can move it on this one.
Each run prints it beside each figure, as a standard deviation: over 1,000 bootstrap resamples
of the stories or pages (``resample.bootstrap``; for grouping the same stories are drawn for
all three seeds), and for grouping combined (in quadrature) with the spread the stream's
arrangement adds to a mean of three seeds (the seeds' standard deviation over the square root
of three; the three seeds' figures are printed too). Each floor is today's figure minus
``MARGIN`` (2) of those standard deviations, rounded down: a drop within it is what another
sample shows by chance, a drop beyond it is unlikely to be chance (about 2%, one-sided) and
fails the run. So the gate catches losses of two standard deviations or more (as measured:
ROUGE 1.5 to 1.7 points, grouping 0.018 to 0.045, extraction 0.024 to 0.041); a smaller
one needs a paired comparison (``rewrite_quality.py --baseline REV``). A change meant to move
a figure re-pins the floors in the same commit (``--pin`` prints the lines for ``FLOORS``),
with the figures in its message.

Which sets were looked at when choosing what: every set here was looked at before (neus val
when choosing the grouping model's form, the dev stories when reverting d34e988, the 40 pages
for e09771c: see each bench's docstring). That is fine for a regression gate, which asks "did
this move?", not "how good is it?"; none of these is a held-out figure. The floors were set on
these sets' own figures (see ``FLOORS``).

Without ``../shared``: under ``CI`` (``CI=true``, as ``.ci/run`` sets it) the gate fails, since
CI promises ../shared and a gate that skipped there would pass everything; elsewhere it says
so in one line and exits 0.

    python bench/gate.py                           # all three; exit 1 on a figure below its floor
    python bench/gate.py --parts rewrite --floor "rewrite R-1=99"   # see it fail
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cluster_quality as cq
import extract_quality as eq
import rewrite_quality as rq
from resample import bootstrap

SEEDS = (1, 2, 3)
RESAMPLES = 1000
MARGIN = 2  # standard deviations of a figure's bootstrap spread between today and its floor
PARTS = ("grouping", "rewrite", "extraction")
NEUS = Path("neus-grouping") / "stories.jsonl"
DEV = Path("allsides") / "dev-stories.jsonl"
EXTRACTION = Path("extraction")

# Today's figure minus MARGIN standard deviations of its noise, rounded down (to 0.001, ROUGE to
# 0.01), measured when the gate was added (main at 379af0e); each run prints the noise again.
FLOORS: dict[str, float] = {
    "grouping P": 0.805,  # 0.8507 - 2 x 0.0223
    "grouping R": 0.678,  # 0.7197 - 2 x 0.0207
    "grouping B3 F1": 0.855,  # 0.8730 - 2 x 0.0088
    "rewrite R-1": 38.72,  # 40.413 - 2 x 0.846
    "rewrite R-2": 14.38,  # 16.004 - 2 x 0.808
    "rewrite R-L": 22.23,  # 23.713 - 2 x 0.738
    "extraction P": 0.941,  # 0.9653 - 2 x 0.0119
    "extraction R": 0.934,  # 0.9758 - 2 x 0.0205
    "extraction F1": 0.940,  # 0.9705 - 2 x 0.0149
}


Unit = TypeVar("Unit")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    spread: float  # its noise: a standard deviation (how it is made: ``note``)
    note: str


def _measured(
    names: Sequence[str],
    units: Sequence[Unit],
    statistic: Callable[[list[Unit]], dict[str, float]],
    resamples: int,
) -> list[Figure]:
    """The named figures of ``units`` and their bootstrap standard deviations."""
    today = statistic(list(units))
    drawn = bootstrap(units, statistic, resamples)
    return [
        Figure(name, today[name], statistics.stdev(d[name] for d in drawn), "bootstrap")
        for name in names
    ]


def grouping(fixtures: Path, resamples: int) -> tuple[str, list[Figure]]:
    stories = cq.neus_stories("val", fixtures / NEUS)
    runs = []
    for seed in SEEDS:
        articles, gold = cq.stream(stories, seed)
        runs.append(cq.story_counts(cq.run(articles), gold))
    keys = {"grouping P": "P", "grouping R": "R", "grouping B3 F1": "B3 F1"}

    def per_seed(drawn: list[object]) -> list[dict[str, float]]:
        return [cq.count_scores(cq.total(counts[story] for story in drawn)) for counts in runs]

    def statistic(drawn: list[object]) -> dict[str, float]:
        scores = per_seed(drawn)
        return {name: statistics.fmean(s[key] for s in scores) for name, key in keys.items()}

    ids: list[object] = [story["id"] for story in stories]
    seeds = per_seed(ids)
    figures = []
    for f in _measured(list(keys), ids, statistic, resamples):
        # The stream's arrangement is noise the story resamples do not see (which stories share
        # days): the mean over the seeds carries the seeds' variance over their number on top.
        by_seed = [s[keys[f.name]] for s in seeds]
        arrangement = statistics.stdev(by_seed) / math.sqrt(len(by_seed))
        figures.append(
            Figure(
                f.name,
                f.value,
                math.hypot(f.spread, arrangement),
                f"bootstrap {f.spread:.3f} (+) seeds {arrangement:.3f}: "
                + " ".join(f"{x:.3f}" for x in by_seed),
            )
        )
    label = f"neus-grouping val: {len(ids)} stories x seeds {', '.join(map(str, SEEDS))}"
    return label, figures


def rewrite(fixtures: Path, resamples: int) -> tuple[str, list[Figure]]:
    scorer = rq.rouge()
    per_story = [
        rq.rouge_f1(scorer, reference, rq.ours(articles, rq.SUMMARY_WORDS)[1])
        for articles, reference, _ in rq.allsides_cases(fixtures / DEV)
    ]
    names = ("rewrite R-1", "rewrite R-2", "rewrite R-L")

    def statistic(drawn: list[tuple[float, float, float]]) -> dict[str, float]:
        return {name: statistics.fmean(s[k] for s in drawn) for k, name in enumerate(names)}

    label = f"allsides dev: our summary's ROUGE F1 x100 on {len(per_story)} stories"
    return label, _measured(names, per_story, statistic, resamples)


def extraction(fixtures: Path, resamples: int) -> tuple[str, list[Figure]]:
    per_page = eq.page_scores(eq.load_pages(fixtures / EXTRACTION), eq.ours)
    names = ("extraction P", "extraction R", "extraction F1")

    def statistic(drawn: list[tuple[float, float, bool]]) -> dict[str, float]:
        return dict(zip(names, eq.summary(drawn)[:3], strict=True))

    label = f"extraction: extract_article's 4-gram shingles on {len(per_page)} pages"
    return label, _measured(names, per_page, statistic, resamples)


MEASURES = {"grouping": grouping, "rewrite": rewrite, "extraction": extraction}
NEEDS = {"grouping": NEUS, "rewrite": DEV, "extraction": EXTRACTION / "ground-truth.json"}


def _floor(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if not sep or name not in FLOORS:
        raise argparse.ArgumentTypeError(f"{text!r}: NAME=VALUE, NAME one of {', '.join(FLOORS)}")
    return name, float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=cq.FIXTURES, help="../shared/fixtures")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--floor",
        type=_floor,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="use VALUE as NAME's floor this run (e.g. to see the gate fail)",
    )
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument(
        "--pin", action="store_true", help="also print FLOORS as today's figures would set it"
    )
    args = parser.parse_args(argv)
    floors = {**FLOORS, **dict(args.floor)}
    missing = [
        args.fixtures / NEEDS[p] for p in args.parts if not (args.fixtures / NEEDS[p]).exists()
    ]
    if missing:
        where = ", ".join(map(str, missing))
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            print(f"gate FAILED: {where} not found; CI promises ../shared", file=sys.stderr)
            return 1
        print(f"gate: {where} not found (../shared is absent): nothing checked")
        return 0
    started, cpu = time.perf_counter(), time.process_time()
    below, pins = [], []
    print(f"quality gate: each figure, its floor, its noise (sd; {args.resamples} bootstrap draws)")
    for part in args.parts:
        part_started = time.perf_counter()
        label, figures = MEASURES[part](args.fixtures, args.resamples)
        print(f"{label} ({time.perf_counter() - part_started:.1f} s)")
        for f in figures:
            floor = floors[f.name]
            verdict = "ok" if f.value >= floor else "BELOW FLOOR"
            margin = (f.value - floor) / f.spread if f.spread else float("inf")
            print(
                f"  {f.name:<15} {f.value:8.3f}  floor {floor:8.3f}  sd {f.spread:6.3f}"
                f"  ({margin:+.1f} sd)  {verdict}  sd: {f.note}"
            )
            step = 0.01 if f.value > 1 else 0.001  # ROUGE is x100; the rest are shares
            pin = math.floor((f.value - MARGIN * f.spread) / step) * step
            pins.append(f'    "{f.name}": {pin:.3f},  # {f.value:.4f} - {MARGIN} x {f.spread:.4f}')
            if f.value < floor:
                below.append(f"{f.name} {f.value:.3f} < {floor:.3f}")
    if args.pin:
        print("FLOORS: dict[str, float] = {", *pins, "}", sep="\n")
    took = f"{time.perf_counter() - started:.1f} s, {time.process_time() - cpu:.1f} s CPU"
    if below:
        print(f"gate FAILED ({took}): below the floor: {'; '.join(below)}", file=sys.stderr)
        return 1
    print(f"gate passed ({took})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
