"""Publishing N stories (default 1,000) as Atom (+ archives, blindspot), JSON Feed and HTML.

The stories are the bundled demo's real rewrites (one demo cycle on 127.0.0.1), repeated with
new ids, headlines and times until there are N. Three timings, side by side:

- cold: a fresh output folder and empty in-process caches (a new process's first publish):
  every story sanitized and rendered, every file written and synced;
- warm: the same stories again in the same process, nothing changed, nothing rewritten;
- one-changed: one story updated, the rest unchanged (the usual case for a running service).

    python bench/publish.py [--stories N] [--feed-size N] [--rounds N] [--dir DIR]

Target: under 1 second for 1,000 stories. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import Config, load_config
from aggregator.demo import SITE, SOURCES, SampleWeb
from aggregator.models import PublishedStory
from aggregator.pipeline import Pipeline
from aggregator.publish import atom, clean_html, publish_site

TARGET_SECONDS = 1.0


def demo_stories(folder: Path) -> tuple[Config, list[PublishedStory]]:
    with SampleWeb(SITE) as web:
        path = folder / "sources.toml"
        path.write_text(web.render(SOURCES.read_text(encoding="utf-8")), encoding="utf-8")
        config = load_config(path, f"sqlite:///{folder / 'bench.db'}", folder / "demo", True)
        pipeline = Pipeline(config)
        pipeline.run_cycle()
        return config, pipeline.published_stories(everything=True)


def many(base: list[PublishedStory], n: int) -> list[PublishedStory]:
    """``n`` stories cycling through ``base``, each with its own id, headline and time."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        model = base[i % len(base)]
        when = start + timedelta(minutes=37 * i)
        out.append(
            dataclasses.replace(
                model,
                id=f"00000000-0000-5000-8000-{i:012d}",
                headline=f"{model.headline} ({i})",
                content_html=f"{model.content_html}<p>Story {i}.</p>",  # no two alike
                published=when,
                updated=when,
            )
        )
    out.reverse()  # newest first, as the pipeline hands them over
    return out


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--feed-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="fresh folders to time (median)")
    parser.add_argument(
        "--dir", help="where to write (default: the system temp folder); /dev/shm shows CPU alone"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        config, base = demo_stories(Path(tmp))
        settings = dataclasses.replace(config.settings, feed_size=args.feed_size)
        stories = many(base, args.stories)
        changed = [dataclasses.replace(stories[0], updated=datetime(2027, 1, 1, tzinfo=UTC))]
        changed += stories[1:]
        now = datetime(2027, 1, 1, tzinfo=UTC)
        cold, warm, one = [], [], []
        for n in range(args.rounds):
            out = Path(tmp) / f"out{n}"
            clean_html.cache_clear()
            atom._story_entry.cache_clear()
            cold.append(
                timed(lambda o=out: publish_site(stories, settings, [], o, config.sources, now))
            )
            warm.append(
                timed(lambda o=out: publish_site(stories, settings, [], o, config.sources, now))
            )
            one.append(
                timed(lambda o=out: publish_site(changed, settings, [], o, config.sources, now))
            )
        files = sum(1 for p in (Path(tmp) / "out0").rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in (Path(tmp) / "out0").rglob("*") if p.is_file())
    print(
        f"output in {tmp}; "
        f"{args.stories} stories from {len(base)} demo rewrites, feed_size {args.feed_size}: "
        f"{files} files, {size / 1e6:.1f} MB (Atom + {args.stories // args.feed_size} archive "
        "pages + blindspot, JSON Feed, index + story pages, OPML)",
        file=sys.stderr,
    )
    print(f"{'publish':<14} {'median s':>9} {'min s':>7} {'stories/s':>10} {'vs 1 s target':>14}")
    for name, runs in (("cold", cold), ("warm", warm), ("one-changed", one)):
        med = statistics.median(runs)
        print(
            f"{name:<14} {med:>9.3f} {min(runs):>7.3f} {args.stories / med:>10.0f} "
            f"{TARGET_SECONDS / med:>13.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
