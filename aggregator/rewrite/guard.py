"""The guard on model output: nothing in it that its cited sources did not say.

A language model can write a fluent sentence with a wrong number or a person nobody mentioned.
Before a model's rewrite is used, every number, every quoted string and every name (a run of
capitalised words: people, organisations, places) in each paragraph must appear in the
sources that paragraph cites. One miss rejects the whole rewrite, and the story falls back to
the extractive one: a plainer story is better than a false one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTE_RE = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{3,}?)[\"\u201d]")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\u2019.\-]*")
# Capitalised words that name nothing on their own: sentence openers and connectives.
_COMMON = frozenset(
    """
    a an the in on at for of as after before during while when with by from under over some many
    most several officials it its this that these those there here he she they we i but and or so
    yet also however still meanwhile instead according both each other others another all no not
    if though although because since until while one two three according
    """.split()
)


def numbers(text: str) -> set[str]:
    """The numbers in a text, normalised ("86,000" and "86000" are the same number)."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER_RE.findall(text)}


def quotations(text: str) -> list[str]:
    """The strings a text puts in quotation marks."""
    return [q.strip() for q in _QUOTE_RE.findall(text) if q.strip()]


def names(text: str) -> list[str]:
    """Runs of capitalised words, as written ("Mayor Dana Whitcomb", "Harbor Bridge").

    A run that opens a sentence loses its first word when that word is a common opener
    ("The", "After"), so "The Senate" is checked as "Senate".
    """
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        run: list[str] = []
        for token in sentence.split() + [""]:
            word = token.strip("\"'\u201c\u201d\u2018\u2019(),;:!?")
            word = word[:-1] if word.endswith(".") and len(word) > 2 else word
            if word[:1].isupper() and _WORD_RE.fullmatch(word):
                run.append(word)
                if token.endswith((",", ";", ":", ")")) or token.rstrip(".").endswith(("'s",)):
                    found.append(run)
                    run = []
                continue
            if run:
                found.append(run)
            run = []
    out = []
    for run in found:
        while run and run[0].lower() in _COMMON:
            run = run[1:]
        if run:
            out.append(" ".join(run))
    return out


def _normal(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split())


def _name_found(name: str, source: str) -> bool:
    """True when the name, or a cover of it by runs of two or more words, is in the source."""
    if re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![a-z])", source):
        return True
    words = name.split()
    if len(words) == 1:
        return False
    # "Port Ellery Mayor Dana Whitcomb" may join two names the sources give apart; a lone
    # first name glued to another's surname ("Rick Whitcomb") may not.
    i = 0
    while i < len(words):
        for j in range(len(words), i + 1, -1):
            if " ".join(words[i:j]) in source:
                i = j
                break
        else:
            return False
    return True


def check(text: str, cited: Iterable[str], allowed_names: Iterable[str] = ()) -> list[str]:
    """What in ``text`` the ``cited`` source texts do not contain; empty when all is sourced.

    ``allowed_names`` (the outlets' names, for attribution) may appear without a source.
    """
    source = _normal("\n".join(cited))
    clean = _normal(text)
    for outlet in sorted(allowed_names, key=len, reverse=True):
        clean = clean.replace(_normal(outlet), " ")
    problems = []
    source_numbers = numbers(source)
    for number in sorted(numbers(clean) - source_numbers):
        problems.append(f"number {number!r} is not in its sources")
    lowered = source.lower()
    for quote in quotations(clean):
        if quote.lower().strip(" ,.") not in lowered:
            problems.append(f"quotation {quote!r} is not in its sources")
    words = set(re.findall(r"[a-z][a-z'\-]*", lowered))
    for name in names(clean):
        if " " not in name and name.lower() in words:
            continue  # one capitalised word the sources use ("Residents said ...")
        if not _name_found(name, source):
            problems.append(f"name {name!r} is not in its sources")
    return problems
