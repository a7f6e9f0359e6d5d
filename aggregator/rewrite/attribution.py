"""How a quoted sentence names its outlet in prose: the lead-ins ("X first reported that ",
"According to X, "), "..., according to X." for a claim only some outlets report, and which
first word may lose its capital behind a lead-in (not a name the sources capitalize). The
sentence's own words stay verbatim; only the lead-in is ours.
"""

from __future__ import annotations

import dataclasses
import re
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
# The next sentence of the same outlet, right after one that named it: "It added that ...".
RUN_LEAD_INS = ("It added that ", "It also reported that ", "It said that ", "It noted that ")
RUN_QUOTE_LEAD_INS = ("It added: ", "It also wrote: ")
ALL_LEAD_INS = tuple(
    dict.fromkeys(
        (
            FIRST_LEAD_IN,
            *LEAD_INS,
            *AGAIN_LEAD_INS,
            *QUOTE_LEAD_INS,
            *RUN_LEAD_INS,
            *RUN_QUOTE_LEAD_INS,
        )
    )
)


def lead_ins(sentences: Sequence[Sentence], first_source: str) -> list[str]:
    """The lead-in of each of the body's sentences, in order (formats of :func:`attribute`).

    The first reporter's opening "first reported that"; an outlet is named once per run of
    its consecutive sentences, the rest of the run going on with "It added that ...", "It
    said that ..."; an outlet heard again after another gets another form ("also reported",
    "wrote"); a quotation never follows "that". No form is used twice in a row, and none
    says "also" or "said" twice ("said that ... said").
    """
    patterns: list[str] = []
    heard: dict[str, int] = {}  # sentences so far per outlet
    turn = 0  # outlets named for the first time so far
    run = 0  # sentences so far that went on with "It ..." after the outlet was named
    for i, s in enumerate(sentences):
        quote = s.text[:1] in '"\u201c'
        previous = patterns[-1] if patterns else None  # no form twice in a row
        if i == 0 and s.source_name == first_source and not quote:
            forms: Sequence[str] = (FIRST_LEAD_IN,)
        elif i and sentences[i - 1].source_name == s.source_name:
            run += 1
            forms = _rotated(RUN_QUOTE_LEAD_INS if quote else RUN_LEAD_INS, run - 1)
        elif s.source_name in heard:  # "noted" last: it says neither "also" nor "said"
            again = _rotated(QUOTE_LEAD_INS if quote else AGAIN_LEAD_INS, heard[s.source_name])
            forms = [*again, "{} noted that "]
        else:
            forms = _rotated(QUOTE_LEAD_INS if quote else LEAD_INS, turn)
            turn += 1
        forms = [p for p in forms if not (quote and p.endswith("that "))] or QUOTE_LEAD_INS
        fresh = [p for p in forms if _verb(p) != _verb(previous)]
        fitting = [p for p in fresh if not _clashes(p, s.text)]
        patterns.append((fitting or fresh or forms)[0])
        run = run if patterns[-1].startswith("It ") else 0
        heard[s.source_name] = heard.get(s.source_name, 0) + 1
    return patterns


def _verb(pattern: str | None) -> str:
    """A lead-in's form, whoever it names ("{} added that " and "It added that " are one)."""
    return (pattern or "").replace("{}", "").removeprefix("It ").strip()


def _rotated(forms: Sequence[str], start: int) -> list[str]:
    """The forms, beginning at the ``start``-th (and round again), so that an outlet heard
    again, or the next new one, opens with another form than the last."""
    start %= len(forms)
    return [*forms[start:], *forms[:start]]


def _clashes(pattern: str, text: str) -> bool:
    """A lead-in that says "also" or "said" before a sentence that says it too ("also
    reported that ... also raises", "said that ... said")."""
    return any(w in pattern and re.search(rf"\b{w}\b", text) for w in ("also", "said"))


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
