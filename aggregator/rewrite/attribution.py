"""What naming an outlet in prose needs to know of a source's sentence, decided here because
only here are its articles' words at hand: whether the sentence's first word is a name, which
keeps its capital behind a lead-in ("Mayor Dana Whitcomb ...", "March 5 ..."), or a common word
that takes a small letter ("X reported that the council ..."). The lead-ins themselves ("X
first reported that ", "..., according to X.") are publishing's (:mod:`aggregator.publish.prose`),
worded at every publish like every other sentence of ours.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from aggregator.models import Sentence
from aggregator.rewrite.lexicon import ALWAYS_CAPITAL, LOWERABLE
from aggregator.text import split_sentences, strip_dateline

_POSSESSIVE_RE = re.compile(r"['’]s$")


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


def opens_lower(text: str, names: frozenset[str] = frozenset()) -> bool:
    """Whether the sentence's first word (after a wire dateline) takes a small letter behind a
    lead-in: it is plainly not a name. A common opener ("The", "In", ...) always is; with
    ``names`` (:func:`proper_words`), so is a word the sources never capitalize mid-sentence."""
    first, _, rest = strip_dateline(text).partition(" ")
    first = first.strip("\"'“”‘’(),.;:!?")
    # "Mayor Dana Whitcomb", "Senate Republicans", "Amendment 4", "Section 230"
    title_of_name = rest[:1].isupper() or rest[:1].isdigit()
    common = first.lower() in LOWERABLE or (
        bool(names)
        and first not in names
        and _POSSESSIVE_RE.sub("", first) not in names  # "America’s" where "America" is one
        and first not in ALWAYS_CAPITAL  # "March 5", even in a story about a march
        and not title_of_name
        and not first.isupper()
        and first != "I"
    )
    return common and first[:1].isupper()


def led_in(sentence: Sentence, names: frozenset[str] = frozenset()) -> Sentence:
    """The sentence, marked for publishing to name its outlet before it (:func:`opens_lower`)."""
    return dataclasses.replace(sentence, opens_lower=opens_lower(sentence.text, names))


def attributed_to(
    sentence: Sentence, outlets: Iterable[str], names: frozenset[str] = frozenset()
) -> Sentence:
    """A claim only some outlets report, marked for publishing to attribute it to them
    ("..., according to X."). Its first word is judged as a lead-in's is, against the
    sources' ``names``: where the claim opens "According to X, ...", "Climate change is ..."
    takes a small letter and "Manchin said ..." keeps its capital."""
    return dataclasses.replace(led_in(sentence, names), according_to=tuple(outlets))
