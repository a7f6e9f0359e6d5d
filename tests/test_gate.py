"""The quality gate (bench/gate.py) fails the run when a figure is under its floor, and says
which; without ../shared it fails under CI and steps aside elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHARED, unavailable

ROOT = Path(__file__).resolve().parents[1]


def _gate(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gate.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_figure_under_its_floor_fails_the_run_and_is_named() -> None:
    """Each part can fail: one floor per part set above today's figure (as a drop would leave
    it), and the run exits 1 naming each of them, while the figures above their floors pass."""
    if not (SHARED / "fixtures").is_dir():
        unavailable(f"{SHARED / 'fixtures'} not found (../shared is absent)")
    raised = {"grouping B3 F1": "0.99", "rewrite R-1": "99", "extraction F1": "0.99"}
    floors = [arg for name, value in raised.items() for arg in ("--floor", f"{name}={value}")]
    done = _gate(*floors, "--resamples", "50", ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = done.stderr.strip().splitlines()[-1]
    assert failed.startswith("gate FAILED")
    for name, value in raised.items():
        assert f"{name} " in failed and f" < {float(value):.3f}" in failed
    assert done.stdout.count("BELOW FLOOR") == len(raised)
    assert done.stdout.count("  ok  ") == 9 - len(raised)  # the others still pass their floors


def test_without_shared_it_fails_in_ci_and_steps_aside_elsewhere(tmp_path: Path) -> None:
    in_ci = _gate("--fixtures", str(tmp_path), ci=True)
    assert in_ci.returncode == 1
    assert "gate FAILED" in in_ci.stderr and "CI promises ../shared" in in_ci.stderr
    assert str(tmp_path / "neus-grouping" / "stories.jsonl") in in_ci.stderr
    elsewhere = _gate("--fixtures", str(tmp_path), ci=False)
    assert elsewhere.returncode == 0
    assert "nothing checked" in elsewhere.stdout


def test_a_floor_for_no_figure_is_refused() -> None:
    done = _gate("--floor", "grouping F2=0.5", ci=False)
    assert done.returncode == 2
    assert "grouping F2=0.5" in done.stderr and "NAME one of" in done.stderr
