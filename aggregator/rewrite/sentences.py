"""Which of an article's sentences the rewrite may quote, and what a sentence leans on.

Every sentence the story prints is a source's own, so each is judged alone: long enough, not
boilerplate, not cut off, not opening with "But" or "He" or a speakerless quotation
(:func:`usable`); whether it stands without the one before it (:func:`stands_alone`), and
whether it names something only an unseen earlier sentence introduced (:func:`refers_back`).
A sentence never stands in for the title it repeats (:func:`clean_title`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from aggregator.models import Sentence, StoryArticle
from aggregator.rewrite.lexicon import (
    ALWAYS_CAPITAL,
    BOILERPLATE_RE,
    CONTEXT_RE,
    DANGLING_START_RE,
    DEFINITE_RE,
    IMPERATIVE_RE,
    LOWERABLE,
    NAME_RE,
    OPENERS,
    OUTLET_SUFFIX_RE,
    OWN_VOICE_RE,
    PRONOUN_RE,
    TOKEN_RE,
    names_speaker,
)
from aggregator.text import STOPWORDS, comparable, split_sentences, stem, word_count, words


def clean_title(title: str, outlet: str = "") -> str:
    """A title without the outlet's suffix (" - WSJ", " | Fox News") and shouting."""
    title = " ".join(title.split())
    if outlet and title.lower().endswith(outlet.lower()):
        title = title[: -len(outlet)].rstrip(" -–—|:")
    title = OUTLET_SUFFIX_RE.sub("", title) if len(title.split()) > 5 else title
    if title.isupper():
        title = title.capitalize()
    return title.strip()


def usable(sentence: str) -> bool:
    n = word_count(sentence)
    if n < 6 or n > 60:
        return False
    if DANGLING_START_RE.match(sentence) or OWN_VOICE_RE.search(sentence):
        return False
    if BOILERPLATE_RE.search(sentence):
        return False
    if sentence.count("\u201c") != sentence.count("\u201d") or sentence.count('"') % 2:
        return False  # a dangling quote: it needs the sentence around it
    if sentence.endswith(("...", "\u2026")):
        return False  # cut off: an excerpt's last words, not a whole sentence
    if _speakerless_quote(sentence):
        return False  # its speaker is named in another sentence: shown alone, it has none
    return sentence[-1] in ".!?\"'\u201d\u2019"


def _speakerless_quote(sentence: str) -> bool:
    """A sentence that opens with a quotation and names no speaker outside it
    ("We want every kid who is ready ..."): the speaker is in the sentence before."""
    return sentence[:1] in '"\u201c' and not names_speaker(sentence)


def sentences_of(article: StoryArticle) -> list[Sentence]:
    """The article's sentences fit to quote, without its own headline where the text repeats
    it (a feed's summary, or text stored before extraction dropped it): a title is no fact."""
    title = comparable(clean_title(article.title, article.source_name))
    return [
        sentence_at(article, index, text)
        for index, text in enumerate(split_sentences(article.text))
        if usable(text) and comparable(text) != title
    ]


def sentence_at(article: StoryArticle, index: int, text: str) -> Sentence:
    return Sentence(
        text=text,
        entry_id=article.entry_id,
        index=index,
        source_id=article.source_id,
        source_name=article.source_name,
        link=article.link,
    )


def stands_alone(text: str) -> bool:
    """A sentence a reader understands without the one before it: no rhetorical question,
    no bare imperative ("Consider who rides ..."), no "he" or "she" before anyone is named."""
    if text.rstrip("\"'\u201d\u2019").endswith("?") or IMPERATIVE_RE.match(text):
        return False
    pronoun = PRONOUN_RE.search(text)
    if pronoun:
        before = text[: pronoun.start()]
        first = before.split(" ", 1)[0].strip(",")
        named = NAME_RE.search(before) or (
            first[:1].isupper() and first.lower() not in LOWERABLE | OPENERS
        )
        if not named:
            return False
    return not CONTEXT_RE.search(text)


@functools.lru_cache(maxsize=4096)
def _names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The capitalized words of a text that end a name of two words or more ("Priya
    Nandakumar", "Sen. Ward"), and those standing alone ("Nandakumar said")."""
    tokens = [t.rstrip(".") for t in TOKEN_RE.findall(text)]
    caps = [
        len(t) > 2
        and t[0].isupper()
        and any(c.islower() for c in t[1:])
        and t.lower() not in LOWERABLE
        for t in tokens
    ]
    ending, alone = set(), set()
    for i, token in enumerate(tokens):
        if not caps[i] or token in ALWAYS_CAPITAL:
            continue
        after = i + 1 < len(tokens) and caps[i + 1]
        if i and caps[i - 1]:
            ending.add(token)
        elif not after:
            alone.add(token)
    return frozenset(ending), frozenset(alone)


def refers_back(sentence: Sentence, article_sentences: Sequence[str], shown: Iterable[str]) -> bool:
    """Whether a sentence names something as known ("defended *the lease*") or someone by
    surname alone ("Nandakumar said") that only an earlier sentence of its article introduced
    ("a $4.1 million, 10-year lease", "Priya Nandakumar"), not one the reader has seen
    (``shown``): told without that sentence, it has no antecedent. A thing its article never
    introduced ("the ballot", "the state") is taken as known to everyone."""
    earlier = article_sentences[: sentence.index]
    shown = list(shown)
    seen_text = " ".join(shown)
    surnames = set().union(*(_names(t)[0] for t in earlier))
    if any(w in surnames and w not in seen_text for w in _names(sentence.text)[1]):
        return True  # "Nandakumar said": the full name was in a sentence not shown
    named = {stem(m.group(1)) for m in DEFINITE_RE.finditer(sentence.text)} - STOPWORDS
    introduced = named & set().union(*(_stems(t) for t in earlier))
    return bool(introduced and introduced - set().union(*(_stems(t) for t in shown)))


@functools.lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    """The stems of a text's words. A body asks this of the same sentences for every
    candidate it weighs, so each sentence is stemmed once."""
    return frozenset(stem(w.lower()) for w in words(text))


WORD_OVERLAP = 0.6  # at or above this word-set overlap, two sentences say the same thing


def overlap(a: str, b: str) -> float:
    """Word-set overlap: shared words over the smaller set's words (case and punctuation
    aside), so a sentence and its near-copy in another outlet score close to 1."""
    wa, wb = {w.lower() for w in words(a)}, {w.lower() for w in words(b)}
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))
