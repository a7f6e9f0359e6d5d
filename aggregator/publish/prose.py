"""How the story names its outlets in prose: the body's lead-ins ("X first reported that ",
"It added that ...") and a summary claim only some outlets report ("..., according to X.").

The rewrite chooses the sentences, who reported each and whether a first word is a name; the
words around them are ours, worded here at every publish, so a change to them reaches every
stored story. The sentences' own words stay verbatim, bar a wire dateline.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from aggregator.models import Rewrite, Sentence
from aggregator.text import join_names, strip_dateline

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

# Words a lead-in must not say before a sentence that says them too ("said that ... said").
_CLASHING = {w: re.compile(rf"\b{w}\b") for w in ("also", "said")}


def worded(rewrite: Rewrite, first_source: str) -> Rewrite:
    """The rewrite with our words in it: each body sentence behind its lead-in
    (:func:`lead_ins`), each summary sentence as shown (:func:`claim` where it is attributed)
    and the summary they make. ``first_source``: the outlet that reported first. A rewrite
    that carries its own words (a model's, or one stored before publishing worded them) is
    returned as it is."""
    if rewrite.summary:
        return rewrite
    patterns = lead_ins(rewrite.body, first_source)
    body = tuple(
        dataclasses.replace(s, attributed=attribute(s, p))
        for s, p in zip(rewrite.body, patterns, strict=True)
    )
    summary = tuple(
        dataclasses.replace(s, attributed=claim(s) if s.according_to else _shown(s.text))
        for s in rewrite.summary_sentences
    )
    return dataclasses.replace(
        rewrite,
        body=body,
        summary_sentences=summary,
        summary=" ".join(s.attributed or s.text for s in summary) or rewrite.headline,
    )


def _shown(text: str) -> str:
    """A summary sentence stated plainly: without its wire dateline; "" when it has none (the
    sentence is shown as the source wrote it)."""
    shown = strip_dateline(text)
    return "" if shown == text else shown


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
    return any(w in pattern and said.search(text) for w, said in _CLASHING.items())


def attribute(sentence: Sentence, pattern: str) -> str:
    """The sentence in prose behind a lead-in (``pattern``, one of :data:`ALL_LEAD_INS`
    naming ``sentence.source_name``): its words verbatim, bar a wire dateline and the first
    word's capital where the rewrite found it is no name (``Sentence.opens_lower``)."""
    text = strip_dateline(sentence.text)
    if sentence.opens_lower:
        text = text[0].lower() + text[1:]
    lead_in = pattern.format(sentence.source_name)
    if lead_in[:1].islower():
        lead_in = lead_in[0].upper() + lead_in[1:]
    return lead_in + text


def claim(sentence: Sentence) -> str:
    """A summary claim only some outlets report (``Sentence.according_to``): "..., according
    to X." (or "According to X, ..." where the sentence ends in a quotation or already cites
    someone)."""
    who = join_names(sentence.according_to)
    text = strip_dateline(sentence.text)
    if text.endswith(".") and text[-2:-1] not in "\"'\u201d\u2019" and "according to" not in text:
        return f"{text[:-1]}, according to {who}."
    return attribute(dataclasses.replace(sentence, source_name=who), "According to {}, ")
