"""The grouping's pair model: the probability that an article reports a story's event.

Fitted offline (``bench/train_grouping.py``, scikit-learn, on the ``train`` split only); here
only the weights are read, so the default install needs no machine-learning library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources


@dataclass(frozen=True)
class PairModel:
    """Logistic regression over the pair features and their pairwise products.

    Fitted offline (``bench/train_grouping.py``, scikit-learn, on the ``train`` split only);
    here only the weights are read, so the default install needs no machine-learning library.
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]  # one per expanded term (see ``expand``), scaling folded in
    bias: float
    join: float  # probability at which an article joins a story (the same event)
    degree: int = 1  # 2: the pairwise products of the features count too

    def probability(self, x: Sequence[float]) -> float:
        """The logistic of the bias plus the weighted terms of ``expand(x)``, summed in that
        order but only over the terms of features that are not zero: the others add zeros, so
        the sum is the same to the last bit, and against a story that shares few words (most
        of the side search's) most features are zero."""
        pairs = self._pairs
        if len(x) != len(pairs):
            raise ValueError(f"{len(x)} features given, the model has {len(pairs)}")
        weights = self.weights
        present = [(i, v) for i, v in enumerate(x) if v]
        terms = [weights[i] * v for i, v in present]
        if self.degree != 1:
            for at, (i, v) in enumerate(present):
                row = pairs[i]
                terms += [row[j] * (v * u) for j, u in present[at:]]
        z = self.bias + sum(terms)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    @cached_property
    def _pairs(self) -> tuple[tuple[float, ...], ...]:
        """Per feature i, the weight of its product with each feature j >= i (``expand``'s
        order; 0.0 before i): one row per feature."""
        n, weights = len(self.features), self.weights
        if len(weights) != len(expand([0.0] * n, self.degree)):
            raise ValueError(f"{len(weights)} weights for {n} features, degree {self.degree}")
        rows = [[0.0] * n for _ in range(n)]
        if self.degree != 1:
            at = iter(weights[n:])
            for i in range(n):
                for j in range(i, n):
                    rows[i][j] = next(at)
        return tuple(map(tuple, rows))


def expand(x: Sequence[float], degree: int) -> list[float]:
    """The features, and for degree 2 every product of two of them (squares included)."""
    if degree == 1:
        return list(x)
    n = len(x)
    return [*x, *(x[i] * x[j] for i in range(n) for j in range(i, n))]


@cache
def default_model(name: str = "grouping_model.json") -> PairModel:
    """The shipped model (``aggregator/grouping_model.json``; with sentence embeddings,
    ``grouping_model_embed.json``)."""
    data = json.loads(resources.files("aggregator").joinpath(name).read_text())
    return PairModel(
        features=tuple(data["features"]),
        weights=tuple(data["weights"]),
        bias=data["bias"],
        join=data["join"],
        degree=data.get("degree", 1),
    )
