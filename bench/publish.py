"""Publishing N stories (default 1,000) as Atom (+ archives, blindspot), JSON Feed and HTML.

The stories are the bundled demo's real rewrites (one demo cycle on 127.0.0.1), repeated with
new ids, headlines and times until there are N, each a rewrite of its own. Timed as the
publish stage runs: every stored story's summary and HTML rendered from its rewrite
(``publish.rendered``), what readers are shown hashed (``publish.shown_hash``), then every
file written (``publish_site``); the ``render`` column is the first two. Three timings, side
by side:

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
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import Config, PublishSettings, load_config
from aggregator.demo import SITE, SOURCES, SampleWeb
from aggregator.models import PublishedStory
from aggregator.pipeline import Pipeline
from aggregator.publish import atom, clean_html, publish_site, rendered, shown_hash, story

TARGET_SECONDS = 1.0
CACHES = (clean_html, atom._story_entry)  # emptied for each cold publish, with forget_rendered


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
        headline = f"{model.headline} ({i})"
        rewrite = model.rewrite and dataclasses.replace(model.rewrite, headline=headline)
        out.append(
            dataclasses.replace(
                model,
                id=f"00000000-0000-5000-8000-{i:012d}",
                headline=headline,
                content_html="" if rewrite else f"{model.content_html}<p>Story {i}.</p>",
                rewrite=rewrite,  # as stored: rendered at every publish, no two alike
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


def publish_stage(
    stories: list[PublishedStory], config: Config, settings: PublishSettings, out: Path
) -> tuple[float, float]:
    """(render seconds, total seconds) of one publish of ``stories`` as stored."""
    started = time.perf_counter()
    shown = [rendered(s) for s in stories]
    hashes = [shown_hash(s) for s in shown]
    render = time.perf_counter() - started
    shown = [dataclasses.replace(s, content_hash=h) for s, h in zip(shown, hashes, strict=True)]
    publish_site(shown, settings, [], out, config.sources, datetime(2027, 1, 1, tzinfo=UTC))
    return render, time.perf_counter() - started


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
        first = stories[0]
        changed = [
            dataclasses.replace(
                first,
                updated=datetime(2027, 1, 1, tzinfo=UTC),
                rewrite=first.rewrite and dataclasses.replace(first.rewrite, summary="Changed."),
            )
        ]
        changed += stories[1:]
        cold: list[tuple[float, float]] = []
        warm: list[tuple[float, float]] = []
        one: list[tuple[float, float]] = []
        for n in range(args.rounds):
            out = Path(tmp) / f"out{n}"
            for cached in CACHES:
                cached.cache_clear()
            story.forget_rendered()
            cold.append(publish_stage(stories, config, settings, out))
            warm.append(publish_stage(stories, config, settings, out))
            one.append(publish_stage(changed, config, settings, out))
        files = sum(1 for p in (Path(tmp) / "out0").rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in (Path(tmp) / "out0").rglob("*") if p.is_file())
    print(
        f"output in {tmp}; "
        f"{args.stories} stories from {len(base)} demo rewrites, feed_size {args.feed_size}: "
        f"{files} files, {size / 1e6:.1f} MB (Atom + {args.stories // args.feed_size} archive "
        "pages + blindspot, JSON Feed, index + story pages, OPML)",
        file=sys.stderr,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MB", file=sys.stderr)
    print(
        f"{'publish':<14} {'median s':>9} {'min s':>7} {'render s':>9} {'stories/s':>10} "
        f"{'vs 1 s target':>14}"
    )
    for name, runs in (("cold", cold), ("warm", warm), ("one-changed", one)):
        med = statistics.median(total for _, total in runs)
        render = statistics.median(r for r, _ in runs)
        print(
            f"{name:<14} {med:>9.3f} {min(t for _, t in runs):>7.3f} {render:>9.3f} "
            f"{args.stories / med:>10.0f} {TARGET_SECONDS / med:>13.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
