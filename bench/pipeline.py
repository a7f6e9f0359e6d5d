"""Seconds per stage for a full cycle over the bundled demo outlets (served on 127.0.0.1).

Runs a cold cycle (everything new) and then a warm one (every feed answers 304), into a fresh
temporary database, and prints both side by side:

    python bench/pipeline.py [--rounds N]

Figures are printed, never asserted: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aggregator.config import Config, parse_sources
from aggregator.demo import SITE, SOURCES, SampleWeb
from aggregator.pipeline import STAGES, CycleReport, Pipeline


def one_round(web: SampleWeb, folder: Path) -> tuple[CycleReport, CycleReport, float]:
    settings, sources = parse_sources(web.render(SOURCES.read_text(encoding="utf-8")), "demo")
    config = Config(
        sources=sources,
        settings=settings,
        db_url=f"sqlite:///{folder / 'bench.db'}",
        out_dir=folder / "feeds",
        allow_private_hosts=True,
    )
    started = time.perf_counter()
    cold = Pipeline(config).run_cycle()
    total = time.perf_counter() - started
    warm = Pipeline(config).run_cycle()
    return cold, warm, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh databases to run (median)")
    args = parser.parse_args(argv)
    colds: dict[str, list[float]] = {s: [] for s in STAGES}
    warms: dict[str, list[float]] = {s: [] for s in STAGES}
    totals = []
    with SampleWeb(SITE) as web:
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                cold, warm, total = one_round(web, Path(tmp))
            totals.append(total)
            for stage in STAGES:
                colds[stage].append(cold.seconds.get(stage, 0.0))
                warms[stage].append(warm.seconds.get(stage, 0.0))
            print(
                f"round {n + 1}/{args.rounds}: {len(cold.sources)} sources, "
                f"{cold.new_entries} entries, {cold.stories} stories, {total:.2f}s cold",
                file=sys.stderr,
            )
    print(f"{'stage':<10} {'cold s':>9} {'warm s':>9}   (median of {args.rounds} rounds)")
    for stage in STAGES:
        print(
            f"{stage:<10} {statistics.median(colds[stage]):>9.3f} "
            f"{statistics.median(warms[stage]):>9.3f}"
        )
    cold_total = sum(statistics.median(v) for v in colds.values())
    warm_total = sum(statistics.median(v) for v in warms.values())
    ratio = cold_total / warm_total if warm_total else float("inf")
    print(f"{'total':<10} {cold_total:>9.3f} {warm_total:>9.3f}   cold/warm {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
