"""Small text tools shared by the grouping, rewrite and publish stages: words, the one stemmer,
weights, the one cosine, sentences, a wire dateline.

Not a stage: it holds no state and does no I/O, so every stage may use it without importing
another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own said same says she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    new one two year years told week monday tuesday wednesday thursday friday saturday sunday
    according mr ms mrs per may might must since still yet already however including would
    """.split()
)

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|\d[\d,.]*\d|\d")
# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) and a space
# before a capital letter, a digit or an opening quote; the closing quote or bracket stays with
# the sentence it closes. Common abbreviations do not end one.
_SENTENCE_END_RE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = (
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "Sens.",
    "Sen.",
    "Reps.",
    "Rep.",
    "Gov.",
    "Gen.",
    "Lt.",
    "Col.",
    "St.",
    "Jr.",
    "Sr.",
    "U.S.",
    "U.K.",
    "U.N.",
    "A.I.",
    "Inc.",
    "Corp.",
    "Co.",
    "No.",
    "Jan.",
    "Feb.",
    "Mar.",
    "Apr.",
    "Jun.",
    "Jul.",
    "Aug.",
    "Sept.",
    "Sep.",  # after "Sept.": "Sept." holds "Sep." and must be hidden first
    "Oct.",
    "Nov.",
    "Dec.",
    "Prof.",
    "Rev.",
    "Ft.",
    "Mt.",
    "Calif.",
    "Fla.",
    "Ariz.",
    "Mass.",
    "Conn.",
    "vs.",
    "D.C.",
    "a.m.",
    "p.m.",
    "Pres.",
    "Sgt.",
    "Capt.",
)


# Abbreviations that may also end a sentence: they do when the next word is one that opens
# sentences rather than names ("in the U.S. The ..." but "the U.S. Senate").
_MAY_END = frozenset(
    {"U.S.", "U.K.", "U.N.", "A.I.", "D.C.", "Inc.", "Corp.", "Co.", "Jr.", "Sr.", "a.m.", "p.m."}
    | {"Calif.", "Fla.", "Ariz.", "Mass.", "Conn."}  # "He moved to Tampa, Fla. The ..."
)
# Abbreviations no sentence ends at: a sentence that stops at one was cut off there ("... a
# rally for Lt. Gov.", an excerpt's last words), not told whole. "Main St." and "No." may end one.
_NEVER_END = frozenset(_ABBREVIATIONS) - _MAY_END - {"St.", "No."}
_NOT_BEFORE_OPENER = (
    r"(?!\s+(?:The|A|An|In|On|At|By|For|He|She|It|They|We|I|His|Her|Their|Its|But|And|This|"
    r"That|These|Those|There|However|Meanwhile|Officials|After|Before|When|While|If|Some|"
    r"Many|Most|Last|Earlier|Later|Still|Now|Yet|So|Also|Both)[\s,])"  # not "U.S. A.I."
)

_INITIAL_RE = re.compile(r"(?<=\s[A-Z])\.(?=\s+[A-Z])" + _NOT_BEFORE_OPENER)
# Initials before a number name a thing ("S.B. 8", "H.R. 1"): the number is not a new sentence.
_INITIALS_NUMBER_RE = re.compile(r"(?<=\b[A-Z]\.[A-Z])\.(?=\s+\d)")
_VERSUS_RE = re.compile(r"(?<=\sv)\.(?=\s)")  # "Roe v. Wade" (but "Kyiv. The" ends one)


def words(text: str) -> list[str]:
    """The words and numbers of a text, in order, as written."""
    return _WORD_RE.findall(text)


def terms(text: str, weight: float = 1.0) -> dict[str, float]:
    """Content terms with weights: stopwords dropped; names and numbers count double.

    Names and figures are what tell one story from another on the same topic, so they weigh
    more than common words.
    """
    counts: dict[str, float] = {}
    for word in words(text):
        low = word.lower().replace("’", "'")
        if low in STOPWORDS or len(low) < 2:
            continue
        strong = word[0].isupper() or word[0].isdigit()
        key = stem(low)
        counts[key] = counts.get(key, 0.0) + weight * (2.0 if strong else 1.0)
    return counts


# Verb and adjective endings: "pledged" and "pledges", "closing" and "closes" (claims).
VERB_ENDINGS = ("ing", "ed", "es", "ly")


def stem(word: str, *, endings: tuple[str, ...] = (), cut: int | None = None) -> str:
    """The one stemmer, light and predictable: lower case, the possessive and the plural off
    ("mayor's", "cities": "mayor", "city"). With ``endings``, the first of them that leaves
    three letters goes too, and then a final "e" ("closing", "closes", "close": "clos"); with
    ``cut``, only the first ``cut`` letters are kept ("vaccinated", "vaccination": "vaccinat").

    :func:`terms` and the rewrite use the plain stem, claims add :data:`VERB_ENDINGS`, and the
    grouping's term keys are cut short (``signals.term_key``).
    """
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if endings:
        for suffix in endings:
            if len(word) >= len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        if len(word) > 3 and word.endswith("e"):
            word = word[:-1]
    return word if cut is None else word[:cut]


def cosine(a: Mapping[str, float], b: Mapping[str, float], *, unit: bool = False) -> float:
    """Cosine similarity of two sparse term vectors (0.0 when either is empty).

    ``unit``: both are L2-normalised already (the grouping's vectors), so the cosine is their
    dot product, over the shared keys found at C speed (most keys of two articles are not
    shared). ``fsum`` is exact, so the set's order, which changes with the process's hash seed,
    never changes a decision.
    """
    if unit:
        return math.fsum([a[k] * b[k] for k in a.keys() & b.keys()])
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    if not dot:
        return 0.0
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm


def cosines(
    a: Mapping[str, float], shared: set[str], others: Sequence[Mapping[str, float]]
) -> list[float]:
    """``cosine(a, other, unit=True)`` for each of ``others``, given ``shared``: the keys of
    ``a`` that any of them has. The same exact sum (``fsum``) of the same products over the
    same keys, so the same to the last bit; with no key shared, every one is 0.0 at once (the
    grouping's side search compares an article with many stories that share no word)."""
    if not shared:
        return [0.0] * len(others)
    fsum = math.fsum
    return [fsum([a[k] * other[k] for k in shared if k in other]) for other in others]


def add_terms(total: dict[str, float], more: Mapping[str, float]) -> None:
    """Add ``more`` into ``total`` in place."""
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def bare_outlet(name: str) -> str:
    """An outlet's name without the kind in brackets after it ("NBC News (Online)", "Wall
    Street Journal (News)"), as its sentences and titles name it."""
    return re.sub(r"\s*\([^)]*\)$", "", name)


def cut_at_abbreviation(sentence: str) -> bool:
    """Whether a sentence stops at an abbreviation that never ends one ("... for Lt. Gov.",
    "... the victims of the Sep."): the rest of it was cut off, as an excerpt's last words are."""
    words = sentence.split()
    return bool(words) and words[-1].lstrip("(\"'\u201c\u2018") in _NEVER_END


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences, paragraph by paragraph."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        protected = paragraph
        for i, abbr in enumerate(_ABBREVIATIONS):
            hidden = abbr.replace(".", f"\x00{i}\x00")
            if abbr in _MAY_END:  # "... in the U.S. The ..." ends a sentence
                protected = re.sub(re.escape(abbr) + _NOT_BEFORE_OPENER, hidden, protected)
            else:
                protected = protected.replace(abbr, hidden)
        # A middle initial ("Michael R. Bloomberg") is not a sentence end; "Plan B. The" is.
        protected = _INITIAL_RE.sub("\x00-\x00", protected)
        protected = _INITIALS_NUMBER_RE.sub("\x00-\x00", protected)
        protected = _VERSUS_RE.sub("\x00-\x00", protected)
        for piece in _SENTENCE_END_RE.split(protected):
            piece = re.sub(r"\x00-?\d*\x00", ".", piece).strip()
            if piece:
                sentences.append(piece)
    return sentences


def comparable(text: str) -> str:
    """Text as two copies of one line compare: case, punctuation and spacing set aside."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def word_count(text: str) -> int:
    return len(text.split())


def join_names(names: Iterable[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# A wire dateline opening a sentence: "HALDEN (Wire) \u2014 ", "(CNN)", "(Reuters) - ".
_DATELINE_RE = re.compile(
    r"^(?:[A-Z][A-Z .,'-]{2,40}(?:\([^)]{1,40}\))?\s*[\u2014\u2013-]+\s+"
    r"|\([A-Z][A-Za-z ]{1,20}\)\s*(?:[\u2014\u2013-]+\s*)?)(?=[A-Z])"
)


def strip_dateline(text: str) -> str:
    """The sentence without a wire dateline ("PELL CREEK (Civic Wire) \u2014 "): once the outlet
    is named in prose, the dateline only repeats it and breaks the sentence."""
    return _DATELINE_RE.sub("", text, count=1)


_SENTENCE_OPEN_RE = re.compile(r"[.!?:][\"'”’)\]]*\s+|\n|[“\"]")


def sentence_pieces(text: str) -> list[list[str]]:
    """The words of each sentence (or quoted stretch), in order; the first one opens it.

    Capitals mean a name only mid-sentence, so callers need to know which word opens one.
    """
    return [found for found in map(_WORD_RE.findall, _SENTENCE_OPEN_RE.split(text)) if found]


CAPTION_CHARS = 300  # a caption longer than this is cut at a word (an alt text is read aloud)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def caption_text(text: str | None) -> str | None:
    """A picture's caption as one plain line: control and invisible formatting characters
    dropped, every run of space one space, cut at a word with an ellipsis past
    ``CAPTION_CHARS``; None when nothing is left. ``text`` is already plain (tags dropped,
    entities decoded: :func:`aggregator.parse.strip_html`, or an element's text)."""
    if not text:
        return None
    line = " ".join(_CONTROL_RE.sub(" ", text).split())
    if len(line) > CAPTION_CHARS:
        cut = line[: CAPTION_CHARS - 1]
        line = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(",;:- ") + "…"
    return line or None
