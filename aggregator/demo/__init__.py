"""The bundled sample outlets: a small offline web for ``balanced-news demo``, tests and benches."""

from aggregator.demo.server import SITE, SOURCES, SampleWeb

__all__ = ["SITE", "SOURCES", "SampleWeb"]
