"""Does a refactor leave what is published alone? The demo and the replayed stories, published
by git revision REV and by this tree, compared file by file.

    python bench/same_output.py --baseline REV [--sets demo dev neus] [--keep DIR]

A change that means to alter nothing a reader sees (issue 21: moving code into new rooms)
proves it here: every file the cycle publishes (the Atom feeds, the JSON Feeds, the story
pages, the OPML) is read in both runs with the loopback address and the run's own clock
times masked, and compared byte for byte. Printed: per set, how many files were compared and
"identical", or the first differing lines of each differing file (at most five files).

- ``demo``: ``balanced-news demo`` (the README's first command) into a fresh folder.
- ``dev`` and ``neus``: the replays of ``bench/replay.py`` (100 dev stories; the 588
  neus-grouping val and test stories): 688 stories in all, one ``run --once`` each.

``--keep DIR`` leaves the published folders there (``DIR/<set>/<run>/``) to look at. Reads
``../shared/fixtures`` for the replays (skipped with a note when absent). Exits 1 when any set
differs, so it can stand in a script.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import cluster_quality as cq
import replay
from revision import checked_out

from aggregator.models import ClusterArticle

# The loopback address differs between runs (a free port each time); so do the clock times.
_BASE = re.compile(r"http://127\.0\.0\.1:\d+")
_CLOCK = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"  # ISO 8601 / RFC 3339
    r"|\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d (?:[+-]\d{4}|GMT)"  # RFC 2822
)
_PUBLISHED = {".atom", ".json", ".html", ".xml", ".opml", ".txt", ".css"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _today() -> str:
    """Today as the pages print it ("07 Dec 2026"): an "updated" time is the run's own clock."""
    return datetime.now(UTC).strftime("%d %b %Y")


def published_files(out: Path) -> dict[str, list[str]]:
    """Every published file under ``out``, its lines with address and clock masked (not the
    hidden ``.balanced-news.json``, which names the run's own folder)."""
    files: dict[str, list[str]] = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in _PUBLISHED and not path.name.startswith("."):
            text = path.read_text(encoding="utf-8", errors="replace")
            text = _CLOCK.sub("<time>", _BASE.sub("<base>", text))
            text = re.sub(_today() + r", \d\d:\d\d UTC", "<today>", text)
            files[str(path.relative_to(out))] = text.splitlines()
    return files


def compare(label: str, before: Path, after: Path) -> bool:
    """Print whether the two published folders hold the same files; True when they do."""
    old, new = published_files(before), published_files(after)
    differing = [name for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]
    if not differing:
        print(f"{label}: {len(new)} published files, identical")
        return True
    print(f"{label}: {len(differing)} of {len(old.keys() | new.keys())} files differ")
    for name in differing[:5]:
        diff = difflib.unified_diff(old.get(name, []), new.get(name, []), "before", "after", n=0)
        print(f"--- {name}")
        for line in list(diff)[2:14]:
            print("   ", line[:200])
    return False


def run_demo(tree: Path | None, out: Path, port: int) -> None:
    """The README's demo, with ``tree``'s code when given (else this tree's)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "demo", "--out", str(out)] + ["--port", str(port)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
    )


def replay_set(name: str) -> tuple[list[ClusterArticle], dict[int, str]] | None:
    """The site of replay set ``name`` as ``bench/replay.py`` writes it (None without data)."""
    if not cq.DEV.is_file():
        print(f"{name}: {cq.DEV} not found (../shared is absent): skipped")
        return None
    if name == "dev":
        articles, _gold, leans = replay.dev_set()
    else:
        stories = [s for split in ("val", "test") for s in cq.neus_stories(split)]
        articles, gold = cq.stream(stories, 1, 20)
        leans = replay.neus_leans(articles, gold)
    return articles, leans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git revision to compare with")
    parser.add_argument("--sets", nargs="+", choices=("demo", "dev", "neus"), default=["demo"])
    parser.add_argument("--keep", type=Path, help="leave the published folders here")
    args = parser.parse_args(argv)
    same = True
    with checked_out(args.baseline) as tree, tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for name in args.sets:
            runs = [work / name / "before", work / name / "after"]
            port = _free_port()  # both runs on one address: story ids derive from the links
            for run in runs:
                shutil.rmtree(run, ignore_errors=True)
                run.mkdir(parents=True)
            if name == "demo":
                for run, code in zip(runs, (tree, None), strict=True):
                    run_demo(code, run / "out", port)
            else:
                found = replay_set(name)
                if found is None:
                    continue
                site = work / name / "site"
                shutil.rmtree(site, ignore_errors=True)
                site.mkdir()
                sources, pages = replay.write_site(site, *found)
                for run, code in zip(runs, (tree, None), strict=True):
                    got = replay.run_cycle(site, run, sources, pages, code, port)
                    if isinstance(got, str):
                        print(f"{name}: {got}")
                        same = False
            label = f"{name} ({args.baseline} -> this tree)"
            same &= compare(label, runs[0] / "out", runs[1] / "out")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
