"""Bootstrap resampling for the benches' spreads: one way to draw, so that every spread printed
(``rewrite_quality.py``'s and ``replay.py``'s paired intervals, ``gate.py``'s noise) resamples
the same way."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import TypeVar

Unit = TypeVar("Unit")
Stat = TypeVar("Stat")


def bootstrap(
    units: Sequence[Unit],
    statistic: Callable[[list[Unit]], Stat],
    resamples: int = 2000,
    seed: int = 7,
) -> list[Stat]:
    """``statistic`` of ``resamples`` resamples of ``units`` (as many, drawn with replacement,
    from a fixed seed): its spread is how much the figure would move on another sample of the
    same size."""
    rng = random.Random(seed)
    n = len(units)
    return [statistic([units[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)]


def paired_interval(
    diffs: list[float], resamples: int = 2000, seed: int = 7
) -> tuple[float, float, float]:
    """Mean of per-story differences and its 95% bootstrap interval (stories resampled)."""
    means = sorted(bootstrap(diffs, statistics.fmean, resamples, seed))
    return statistics.fmean(diffs), means[int(0.025 * resamples)], means[int(0.975 * resamples)]
