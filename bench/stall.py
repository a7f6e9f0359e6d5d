"""A host that never answers, against the same cycle without it: `run --once`, side by side.

The bundled demo outlets are served on 127.0.0.1; "with" adds three sources on 127.0.0.2, a host
that takes every connection, reads the request and never answers (more sources than its two
per-host slots). Each round runs the real command, ``balanced-news run --once``, into a fresh
database, once without the silent host and once with it, and prints both wall-clock times and
their ratio (the goal: with / without <= 1.2). The read timeout is the default (20 s).

    python bench/stall.py [--rounds N] [--baseline REV]

``--baseline REV`` runs the same rounds with git revision REV checked out beside this tree
(bench/revision.py), e.g. ``--baseline b10380c`` for the figures before the cycle went on
without a stalled host. No data set is involved (the demo's fictional outlets only). Figures
are printed, never asserted: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from revision import checked_out

from aggregator.demo import SITE, SOURCES, SampleWeb

ROOT = Path(__file__).resolve().parents[1]
STALLED = 3  # sources on the silent host: more than its per-host limit of 2


def silent_host(host: str = "127.0.0.2") -> tuple[str, socket.socket]:
    """A listening socket whose connections are read and never answered."""
    sock = socket.create_server((host, 0))

    def hold(conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=hold, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://{host}:{sock.getsockname()[1]}", sock


def sources_file(web: SampleWeb, folder: Path, silent: str | None) -> Path:
    text = web.render(SOURCES.read_text(encoding="utf-8"))
    if silent:
        for n in range(STALLED):
            text += (
                f'\n[[source]]\nid = "silent{n}"\nname = "Silent {n}"\n'
                f'homepage = "{silent}/"\nfeed = "{silent}/feed{n}.xml"\nlean = "center"\n'
            )
    path = folder / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_once(tree: Path, web: SampleWeb, silent: str | None) -> float:
    """Seconds ``balanced-news run --once`` of ``tree`` takes, into a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        command = [
            *(sys.executable, "-c", "from aggregator.cli import main; raise SystemExit(main())"),
            *("run", "--once", "--allow-private-hosts"),
            *("--sources", str(sources_file(web, folder, silent))),
            *("--db", f"sqlite:///{folder / 'bench.db'}", "--out", str(folder / "feeds")),
        ]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode not in (0, 1):  # 1: some sources failed (the silent ones)
            raise SystemExit(f"run --once failed in {tree}:\n{proc.stderr[-2000:]}")
        return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds to run (each printed)")
    parser.add_argument("--baseline", help="a git revision to measure beside this tree")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        web = stack.enter_context(SampleWeb(SITE))
        silent, sock = silent_host()
        stack.callback(sock.close)
        trees = [("this tree", ROOT)]
        if args.baseline:
            trees.append((args.baseline, stack.enter_context(checked_out(args.baseline))))
        print(f"run --once over the demo outlets; with: + {STALLED} sources on a silent host")
        print(f"{'tree':<10} {'round':>5} {'without':>8} {'with':>8} {'with/without':>13}")
        for n in range(1, args.rounds + 1):
            for name, tree in trees:
                without = run_once(tree, web, None)
                with_silent = run_once(tree, web, silent)
                print(
                    f"{name:<10} {n:>5} {without:>7.2f}s {with_silent:>7.2f}s "
                    f"{with_silent / without:>12.2f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
