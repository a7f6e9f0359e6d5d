"""How a quoted sentence names its outlet in prose: the lead-ins ("X first reported that ",
"According to X, "), "..., according to X." for a claim only some outlets report, and which
first word may lose its capital behind a lead-in (not a name the sources capitalize). The
sentence's own words stay verbatim; only the lead-in is ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from aggregator.models import Sentence
from aggregator.rewrite.lexicon import ALWAYS_CAPITAL, DATELINE_RE, LOWERABLE
from aggregator.text import join_names, split_sentences

# How the body names its sources: the first reporter, then what each outlet added.
FIRST_LEAD_IN = "{} first reported that "
LEAD_INS = (
    "According to {}, ",
    "{} added that ",
    "{} reported that ",
    "As {} reported, ",
    "{} noted that ",
)
AGAIN_LEAD_INS = ("{} also reported that ", "{} wrote that ", "{} said that ")
QUOTE_LEAD_INS = ("As {} reported, ", "According to {}, ")
ALL_LEAD_INS = tuple(dict.fromkeys((FIRST_LEAD_IN, *LEAD_INS, *AGAIN_LEAD_INS, *QUOTE_LEAD_INS)))


def proper_words(texts: Iterable[str]) -> frozenset[str]:
    """Words the sources capitalize mid-sentence and never write in lower case there: names,
    which keep their capital. "Parents" in "Cedar Hollow Parents for Excellence" is not one
    when the same sources also write "parents"."""
    capital: set[str] = set()
    lower: set[str] = set()
    for text in texts:
        for sentence in split_sentences(text):
            for word in sentence.split()[1:]:
                word = word.strip("\"'“”‘’(),.;:!?")
                if word[:1].isupper():
                    capital.add(word)
                elif word[:1].islower():
                    lower.add(word)
    return frozenset(w for w in capital if w[0].lower() + w[1:] not in lower)


def attribute(
    sentence: Sentence,
    turn: int | str = 0,
    names: frozenset[str] = frozenset(),
) -> Sentence:
    """The sentence with its outlet named in prose; the words themselves stay verbatim.

    ``turn`` picks a lead-in from :data:`LEAD_INS` (or is the lead-in's format string).
    The first word loses its capital only when it is plainly not a name: a common opener
    ("The", "In", ...) or a word the sources never capitalize mid-sentence (``names``).
    """
    text = strip_dateline(sentence.text)
    first, _, rest = text.partition(" ")
    first = first.strip("\"'“”‘’(),.;:!?")
    title_of_name = rest[:1].isupper()  # "Mayor Dana Whitcomb", "Senate Republicans"
    common = first.lower() in LOWERABLE or (
        bool(names)
        and first not in names
        and first not in ALWAYS_CAPITAL  # "March 5", even in a story about a march
        and not title_of_name
        and not first.isupper()
        and first != "I"
    )
    if common and first[:1].isupper():
        text = text[0].lower() + text[1:]
    pattern = turn if isinstance(turn, str) else LEAD_INS[turn % len(LEAD_INS)]
    lead_in = pattern.format(sentence.source_name)
    if lead_in[:1].islower():
        lead_in = lead_in[0].upper() + lead_in[1:]
    return dataclasses.replace(sentence, attributed=lead_in + text)


def strip_dateline(text: str) -> str:
    """The sentence without a wire dateline ("PELL CREEK (Civic Wire) — "): once the outlet
    is named in prose, the dateline only repeats it and breaks the sentence."""
    return DATELINE_RE.sub("", text, count=1)


def attributed_claim(sentence: Sentence, outlets: Sequence[str]) -> Sentence:
    """A sentence only some outlets report, in the summary: "..., according to X." (or
    "According to X, ..." where the sentence ends in a quotation or already cites someone)."""
    who = join_names(outlets)
    text = strip_dateline(sentence.text)
    if text.endswith(".") and text[-2:-1] not in "\"'\u201d\u2019" and "according to" not in text:
        prose = f"{text[:-1]}, according to {who}."
    else:
        prose = attribute(
            dataclasses.replace(sentence, source_name=who), "According to {}, "
        ).attributed
    return dataclasses.replace(sentence, attributed=prose)
