"""The grouping's pair model: the probability that an article reports a story's event.

Fitted offline (``bench/train_grouping.py``, scikit-learn, on the ``train`` split only); here
only the weights are read, so the default install needs no machine-learning library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
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
        terms = expand(x, self.degree)
        z = self.bias + sum(w * t for w, t in zip(self.weights, terms, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


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
