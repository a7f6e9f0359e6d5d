"""Signals of one event that survive framing, for the grouping's pair model.

Two outlets report one event in other words (a left outlet's "cuts" are a right outlet's
"savings"), and an opinion piece argues about it days later in words of its own; what they
keep in common is what framing does not change: the people, places and organisations they
name, the numbers and dates they give, and the words they quote. This module finds those in an
article's whole text (not only its lead): no state, no I/O, so the grouping's hot path can call
it once per article.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from aggregator.text import STOPWORDS, sentence_pieces, stem, words

STEM_CHARS = 8  # a crude stemmer: "vaccinated", "vaccination" and "vaccinations" meet
QUOTE_WORDS = 6  # a quoted run this long found in two articles is one speaker's one statement
ENTITY_TERMS = 40  # an article's most named entities: the rest are passing mentions
_QUOTED_RE = re.compile(r"[“\"]([^”\"]{12,1200})[”\"]")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "Jan January",
            "Feb February",
            "Mar March",
            "Apr April",
            "May",
            "Jun June",
            "Jul July",
            "Aug August",
            "Sep Sept September",
            "Oct October",
            "Nov November",
            "Dec December",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# "March 3", "Sept. 12th", "3 March": the day an event happened, however a story frames it.
# Capitalised only: "may 3" is rarely a date.
_DATE_RE = re.compile(
    rf"\b(?=[JFMASOND0-9])(?:({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\b)"
)


_NAME_OPENERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@lru_cache(maxsize=500_000)
def term_key(word: str) -> str | None:
    """A word's term key (lower case, stemmed, cut short), or None for stopwords."""
    low = word.lower()
    if low in STOPWORDS or len(low) < 2:
        return None
    return stem(low, cut=STEM_CHARS)


class Signals(NamedTuple):
    """What an article names, quotes and dates, over its whole text."""

    entities: dict[str, int]  # name and number keys -> how often the text names them
    quotes: frozenset[int]  # every run of QUOTE_WORDS words inside its quotation marks
    runs: frozenset[int]  # every run of QUOTE_WORDS words of its text (quoted or not)
    dates: frozenset[str]  # calendar days it gives ("03-12")


def entity_counts(text: str) -> dict[str, int]:
    """Names (capitalised mid-sentence) and numbers of the whole text, with their counts: what
    a framing keeps. A sentence's first word is no name; titles are not read (they capitalise
    every word)."""
    counts: dict[str, int] = {}
    get = counts.get
    for piece in sentence_pieces(text):
        for word in piece[1:]:
            if word[0] in _NAME_OPENERS:  # words are ASCII-led (text.words)
                key = term_key(word)
                if key:
                    counts[key] = get(key, 0) + 1
    return counts


def _runs(found: list[str]) -> set[int]:
    """Hashes of every run of ``QUOTE_WORDS`` words (lower case). Compared only within one
    process, so the string hash's per-process seed never changes a decision."""
    low = [w.lower() for w in found]
    return {hash(tuple(low[i : i + QUOTE_WORDS])) for i in range(len(low) - QUOTE_WORDS + 1)}


def quoted_runs(text: str) -> frozenset[int]:
    """Runs of six words within the text's quotations."""
    runs: set[int] = set()
    for quote in _QUOTED_RE.findall(text):
        runs |= _runs(words(quote))
    return frozenset(runs)


def dates(text: str) -> frozenset[str]:
    """The calendar days the text gives, as "MM-DD" (no year: news rarely gives one)."""
    found = set()
    for month, day, day2, month2 in _DATE_RE.findall(text):
        number = int(day or day2)
        if 1 <= number <= 31:
            found.add(f"{_MONTHS[month or month2]:02d}-{number:02d}")
    return frozenset(found)


def signals(
    text: str, runs: bool = True, lead_names: Mapping[str, int] | None = None, lead: int = 0
) -> Signals:
    """An article's entities, quotations and dates, over its whole text. ``runs``: also every
    six-word run (to find others' quotations in it: costly, so only where it is needed);
    ``lead_names``: the names of the first ``lead`` characters, which the caller has counted."""
    entities = dict(lead_names or {})
    for key, count in entity_counts(text[lead:]).items():
        entities[key] = entities.get(key, 0) + count
    every = frozenset(_runs(words(text))) if runs else frozenset()
    return Signals(entities, quoted_runs(text), every, dates(text))


def shares_quote(runs: frozenset[int], quotes: set[int] | frozenset[int]) -> bool:
    """A quotation of six words or more of one article is found in the other's text."""
    return not runs.isdisjoint(quotes)


def named_share(entities: Mapping[str, float], named: set[str]) -> float:
    """The share of an article's names and numbers (a unit tf-idf vector: squared weights sum
    to one) that a story names: how much of what a piece talks about that story is about."""
    return sum(w * w for k, w in entities.items() if k in named)
