"""Grouping: what of an article the index compares (its ``Doc``).

An article becomes a sparse TF-IDF vector (IDF learnt from the articles seen so far) in which
the title and the lead weigh most, and names, numbers and quoted phrases weigh extra: they are
what tells one story from another on the same topic. Past its first ``TEXT_CHARS`` an article
adds detail, not identity, so the vector reads no further. Beside it the ``Doc`` keeps the
title's own vector, the names, numbers and weekdays the text mentions, and what framing does not
change (``aggregator.signals``). No decision is made here: these are the pair model's inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from aggregator.embeddings import Embedder, embedding_text  # plain text: no model library
from aggregator.models import ClusterArticle
from aggregator.signals import ENTITY_TERMS, signals, term_key
from aggregator.text import sentence_pieces, words

LEAD_WORDS = 50
TEXT_CHARS = 1500  # past its first ~250 words an article adds detail, not identity
TITLE_WEIGHT, LEAD_WEIGHT, BODY_WEIGHT = 3.0, 1.5, 1.0
NAME_BOOST, NUMBER_BOOST, QUOTE_WEIGHT = 2.0, 1.5, 1.5
VECTOR_TERMS = 60  # an article keeps its heaviest terms only: the rest is noise
IDF_PRIOR = 20  # pseudo-documents: early in a stream no word is rare yet
# An index rebuilt from days of stories first counts this many articles from before them into
# its document frequencies (``StoryIndex.learn``): the stream that grouped those days had seen
# them, and a rebuild from a few days of a sparse stream (a week's replay, a small deployment)
# would otherwise find every word rare and score pairs as the pair model never saw them (dev
# at the hidden dating, weekly cycles rebuilt from 17 to 31 articles: P .984 where one cycle
# has 1.000). Enough for a month of a few hundred outlets; not fitted.
LEARN_BEFORE = 5000
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_QUOTE_RE = re.compile(r"[“\"]([^”\"]{10,240})[”\"]")

Vector = dict[str, float]


class Doc(NamedTuple):
    """An article as the index compares it: whole vector, title vector, names and numbers,
    and the weekdays its text mentions (an event's "on Wednesday")."""

    vec: Vector
    title: Vector
    names: frozenset[str]
    numbers: frozenset[str] = frozenset()
    days: frozenset[str] = frozenset()
    embedding: Any = None  # a unit sentence vector, only when the index has an embedder
    # What framing does not change, over the whole text (``aggregator.signals``):
    entities: Vector = {}  # its names and numbers, tf-idf (never mutated)
    quotes: frozenset[int] = frozenset()  # six-word runs inside its quotations
    runs: frozenset[int] = frozenset()  # every six-word run (only until it joins a story)
    dates: frozenset[str] = frozenset()  # calendar days it gives


@lru_cache(maxsize=500_000)
def _weighed(word: str) -> tuple[str | None, float]:
    """A mid-sentence word's term key and boost: numbers and names (capitalised) weigh up."""
    if word[0].isdigit():
        return term_key(word), NUMBER_BOOST
    if word[0].isupper():
        return term_key(word), NAME_BOOST
    return term_key(word), 1.0


def _count(
    counts: Vector,
    found: Iterable[str],
    weight: float,
    names: bool,
    named: dict[str, int] | None = None,
) -> None:
    """Add words into ``counts`` in text order (so ties among weights favour earlier words);
    names and numbers are also counted into ``named`` when given."""
    get = counts.get
    for word in found:
        key, boost = _weighed(word)
        if key:
            if not names and boost == NAME_BOOST:
                boost = 1.0
            elif named is not None and boost > 1.0:
                named[key] = named.get(key, 0) + 1
            counts[key] = get(key, 0.0) + weight * boost


class Features(NamedTuple):
    counts: Vector
    names: frozenset[str]  # keys of the names and numbers the text mentions
    numbers: frozenset[str]
    days: frozenset[str]  # weekdays it mentions
    named: dict[str, int]  # how often it names each (in its first ``TEXT_CHARS``)


def features(title: str, text: str) -> Features:
    """Raw weighted term counts of an article (title and lead first, names and numbers up),
    and the names, numbers and weekdays its text mentions."""
    counts: Vector = {}
    named: dict[str, int] = {}
    _count(counts, words(title), TITLE_WEIGHT, names=False)  # titles capitalise everything
    seen = 0
    for piece in sentence_pieces(text[:TEXT_CHARS]):
        head = max(0, min(len(piece), LEAD_WORDS - seen))  # words of the piece in the lead
        for weight, chunk, opens in (
            (LEAD_WEIGHT, piece[:head], True),
            (BODY_WEIGHT, piece[head:], head == 0),
        ):
            if chunk:
                start = 1 if opens else 0  # the word opening a sentence is no name
                _count(counts, chunk[:start], weight, names=False)
                _count(counts, chunk[start:], weight, names=True, named=named)
        seen += len(piece)
    get = counts.get
    for quote in _QUOTE_RE.findall(text):
        keys = [k for k in (term_key(w) for w in words(quote)) if k]
        for a, b in zip(keys, keys[1:], strict=False):
            pair = f"{a}_{b}"
            counts[pair] = get(pair, 0.0) + QUOTE_WEIGHT
    lowered = {w.lower() for w in words(text[:TEXT_CHARS])}
    return Features(
        counts,
        frozenset(named),
        frozenset(k for k in named if k[0].isdigit()),
        frozenset(lowered & _WEEKDAYS),
        named,
    )


def normalised(vec: Vector, keep: int) -> Vector:
    """The ``keep`` heaviest terms, scaled to unit length."""
    # A stable sort: among equal weights the words met first (title, lead) stay.
    top = sorted(vec.items(), key=itemgetter(1), reverse=True)[:keep]
    norm = math.sqrt(sum(v * v for _, v in top)) or 1.0
    return {k: v / norm for k, v in top}


class Vocabulary:
    """The document frequencies learnt from the stream so far, and the IDF they give."""

    def __init__(self) -> None:
        self.df: dict[str, int] = {}
        self.docs = 0
        self._idf: dict[str, float] = {}  # until the next article is learnt

    def idf(self, key: str) -> float:
        """Kept until the next article is learnt: comparing one article with its candidate
        stories asks for the same terms' (its names') again for every story."""
        idf = self._idf.get(key)
        if idf is None:
            idf = self._idf[key] = math.log((self.docs + IDF_PRIOR) / (self.df.get(key, 0) + 1))
        return idf

    def learn(self, raw: Vector) -> None:
        """Count one article's terms (its raw ``features``) into the document frequencies."""
        self._idf.clear()
        self.docs += 1
        df = self.df
        for key in raw:
            df[key] = df.get(key, 0) + 1

    def doc(self, article: ClusterArticle, learn: bool, embedder: Embedder | None) -> Doc:
        """The article's TF-IDF vectors (the whole, and the title alone) and its names;
        ``learn`` counts it into the document frequencies first."""
        raw, names, numbers, days, named = features(article.title, article.text)
        # the lead's names are counted already: the signals read on from there
        framing = signals(article.text, article.kind == "opinion", named, TEXT_CHARS)
        if learn:
            self.learn(raw)
        df = self.df
        docs, log, log1p = self.docs + IDF_PRIOR, math.log, math.log1p
        weights = {k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in raw.items()}
        title: Vector = {}
        _count(title, words(article.title), TITLE_WEIGHT, names=False)
        title = {k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in title.items()}
        entities = {
            k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in framing.entities.items()
        }
        vec, title = normalised(weights, VECTOR_TERMS), normalised(title, VECTOR_TERMS)
        embedding = None
        if embedder is not None:
            (embedding,) = embedder.embed([embedding_text(article.title, article.text)])
        return Doc(
            vec,
            title,
            names,
            numbers,
            days,
            embedding,
            normalised(entities, ENTITY_TERMS),
            framing.quotes,
            framing.runs,
            framing.dates,
        )
