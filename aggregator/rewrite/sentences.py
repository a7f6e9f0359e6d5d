"""Which of an article's sentences the rewrite may quote, and what a sentence leans on.

Every sentence the story prints is a source's own, so each is judged alone: long enough, not
boilerplate, not cut off, not opening with "But" or "He" or a speakerless quotation
(:func:`usable`); whether it stands without the one before it (:func:`stands_alone`), and
whether it names something only an unseen earlier sentence introduced (:func:`refers_back`):
"the lease", a surname alone, or a demonstrative's own noun ("These targets ..."). The noun
test comes first (:func:`demonstrative_noun`): "This bill would ..." names a bill, which the
reader may have read of; "This is ..." stands for a statement the reader has not seen.
A sentence never stands in for the title it repeats (:func:`clean_title`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from aggregator.models import Sentence, StoryArticle
from aggregator.rewrite.lexicon import (
    ADJECTIVAL,
    ALWAYS_CAPITAL,
    BOILERPLATE_RE,
    CATAPHORA_BLOCKERS,
    CONTEXT_RE,
    DANGLING_START_RE,
    DEFINITE_RE,
    DEICTIC,
    DEMONSTRATIVE_RE,
    IMPERATIVE_RE,
    IRREGULAR_PLURALS,
    LOWERABLE,
    NAME_RE,
    NOT_A_NOUN,
    OPENERS,
    OUTLET_SUFFIX_RE,
    OWN_VOICE_RE,
    PART_OF_THEM_RE,
    PRONOUN_RE,
    ROLE_RE,
    SELF_DEFINING,
    SINGULAR_S,
    TOKEN_RE,
    names_speaker,
)
from aggregator.text import (
    STOPWORDS,
    bare_outlet,
    comparable,
    cut_at_abbreviation,
    split_sentences,
    stem,
    strip_dateline,
    word_count,
    words,
)


def clean_title(title: str, outlet: str = "") -> str:
    """A title without the outlet's suffix (" - WSJ", " | Fox News") and shouting.

    Knowing the outlet, only a tail that names it goes (its words, or its initials): "... -
    or worse" and "... – CDC" are the headline's own words, which "how each side headlined
    it" must show whole. Not knowing it, a short tail after a dash is taken as its name."""
    title = " ".join(title.split())
    if outlet and title.lower().endswith(outlet.lower()):
        title = title[: -len(outlet)]
        title = re.sub(r"\s+[-–—|:]\s+the\s*$", "", title, flags=re.I).rstrip(" -–—|:")
    suffix = OUTLET_SUFFIX_RE.search(title) if len(title.split()) > 5 else None
    if suffix and (not outlet or _is_outlets_name(suffix.group(1), outlet)):
        title = title[: suffix.start()]
    if title.isupper():
        title = title.capitalize()
    return title.strip()


_OUTLET_FILLER = frozenset({"the", "news", "online", "com", "and", "&"})


def _is_outlets_name(tail: str, outlet: str) -> bool:
    """Whether a title's tail ("WSJ", "Fox News", "AP News") names the outlet ("Wall Street
    Journal (News)", "Fox News (Online News)", "AP Politics & Fact Check"): its words are the
    outlet's, or it is the outlet's initials."""
    name = bare_outlet(outlet).casefold()
    words = set(re.findall(r"[\w&]+", name))
    said = set(re.findall(r"[\w&]+", tail.casefold().replace(".com", ""))) - _OUTLET_FILLER
    initials = "".join(w[0] for w in re.findall(r"\w+", name) if w != "the")
    return bool(said) and (said <= words or said == {initials})


# A sentence opening in a small letter is the tail of one cut before it, unless its first word
# is a name written so ("iPhone", "eBay").
_FRAGMENT_RE = re.compile(r"[\"'\u201c\u2018(\[]?[a-z](?![a-z]*[A-Z])")


def usable(sentence: str) -> bool:
    """A sentence fit to quote on its own: whole, of a sensible length, in the reporter's
    voice, leaning on no unnamed speaker."""
    n = word_count(sentence)
    if n < 6 or n > 60:
        return False
    if _FRAGMENT_RE.match(sentence):
        return False  # 'titled "The NRA And Russia" ...': an excerpt that starts mid-sentence
    if DANGLING_START_RE.match(sentence) or OWN_VOICE_RE.search(sentence):
        return False
    if (
        sentence.startswith(("This", "That", "These", "Those"))
        and demonstrative_noun(sentence) == ""
    ):
        return False  # "This is ...", "That means ...": a statement the reader has not seen
    if BOILERPLATE_RE.search(sentence):
        return False
    if sentence.count("\u201c") != sentence.count("\u201d") or sentence.count('"') % 2:
        return False  # a dangling quote: it needs the sentence around it
    if sentence.endswith(("...", "\u2026")) or cut_at_abbreviation(sentence):
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
        if not named and not ROLE_RE.search(before) and not _cataphoric(text, pronoun.start()):
            return False
    if demonstrative_noun(text) == "" or _part_of_unnamed(text):
        return False  # "Sadly, this is ...", "September 12, 2001, was one of them"
    return not CONTEXT_RE.search(text)


def _cataphoric(text: str, at: int) -> bool:
    """Whether the pronoun at ``at`` is in an opening phrase whose subject follows it ("In
    his first speech, President Biden said ...", "As she left, the senator ..."): it points
    forward, not at a sentence before."""
    first = text.split(" ", 1)[0].lower()
    comma = text.find(", ", at)
    if first not in LOWERABLE | OPENERS or comma < 0 or "," in text[:at]:
        return False
    subject = text[comma + 2 :].split(" ", 1)[0]
    return subject.lower() not in CATAPHORA_BLOCKERS


_PHRASE_RE = re.compile(r"[\w$'\u2019%.-]+|[^\w\s]")


def demonstrative_noun(text: str) -> str | None:
    """The noun a sentence's opening demonstrative names ("These ambitious targets have ..."
    -> "targets", "This $4 billion package would ..." -> "package"); "" when the demonstrative
    stands alone for a statement ("This is ...", "That means ...", "Sadly, these were ...");
    None when the sentence opens with none, or with one that points at the present ("This
    year, ...", "This week's vote ...")."""
    found = DEMONSTRATIVE_RE.match(text)
    if not found:
        return None
    word = (found.group(1) or found.group(2)).lower()
    plural = word in ("these", "those")
    phrase: list[str] = []
    for raw in _PHRASE_RE.findall(found.group("rest"))[:6]:
        token = raw.rstrip(".").lower().replace("\u2019", "'")
        if token[:1].isdigit() or token[:1] == "$":
            continue  # a figure before its noun: "This $4 billion package"
        if not token[:1].isalpha() or token in NOT_A_NOUN or _verb_form(token, plural):
            break
        phrase.append(token)
        if plural and (_plural(token) or token in IRREGULAR_PLURALS):
            break  # "These ambitious targets": the plural is the noun
    if word in ("this", "these") and any(stem(t) in DEICTIC for t in phrase):
        return None
    return phrase[-1] if phrase else ""


def _verb_form(token: str, plural: bool) -> bool:
    """Whether a word after a demonstrative reads as a verb: a past form ("This prompted",
    "the bill passed") or, after a singular one, a third person ("That leaves", "this bill
    raises"); not "This proposed rule", "This news", "This process"."""
    if len(token) > 4 and token.endswith("ed") and not token.endswith("eed"):
        return token not in ADJECTIVAL
    return (
        not plural
        and token.endswith("s")
        and not token.endswith(("ss", "us", "is", "ics", "'s"))
        and token not in SINGULAR_S
    )


def _part_of_unnamed(text: str) -> bool:
    """Whether a sentence names a part of a group ("one of them") with no plural before it
    in the sentence that could be the group: the group was in a sentence before."""
    found = PART_OF_THEM_RE.search(text)
    if not found:
        return False
    before = [w.lower() for w in words(text[: found.start()])]
    return not any(w in IRREGULAR_PLURALS or (len(w) > 3 and _plural(w)) for w in before)


def _plural(word: str) -> bool:
    """Whether a word reads as a regular plural ("targets", not "ambitious", "process")."""
    return word.endswith("s") and not word.endswith(("ss", "us", "is", "'s"))


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
    noun = demonstrative_noun(sentence.text)
    if noun and stem(noun) not in set().union(*(_stems(t) for t in shown)):
        return True  # "These targets have ...": no targets the reader has read of
    seen_text = " ".join(shown)
    surnames = set().union(*(_names(t)[0] for t in earlier))
    if any(w in surnames and w not in seen_text for w in _names(sentence.text)[1]):
        return True  # "Nandakumar said": the full name was in a sentence not shown
    before = set().union(*(_stems(t) for t in earlier))
    read = set().union(*(_stems(t) for t in shown))
    return any(
        phrase[0] in before and not read.intersection(phrase)
        for phrase in _definite_phrases(sentence.text)
    )


@functools.lru_cache(maxsize=4096)
def _definite_phrases(text: str) -> tuple[tuple[str, ...], ...]:
    """The stems of what a sentence names as known, phrase by phrase ("defended the lease",
    "at the southern border": ("southern", "border")), leaving out a phrase that says itself
    which thing it means ("the case involving a Mississippi law", "the goal to cut ...")."""
    phrases = []
    for found in DEFINITE_RE.finditer(text):
        if stem(found.group(1)) in STOPWORDS:
            continue
        phrase = [found.group(1)]
        after = _PHRASE_RE.findall(text[found.end() :])[:3]
        for token in after[:2]:
            if (
                not token[:1].islower()
                or token in STOPWORDS | NOT_A_NOUN | SELF_DEFINING
                or _verb_form(token, True)
            ):
                break
            phrase.append(token)
        following = after[len(phrase) - 1] if len(after) >= len(phrase) else ""
        if following not in SELF_DEFINING:
            phrases.append(tuple(stem(w) for w in phrase))
    return tuple(phrases)


@functools.lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    """The stems of a text's words. A body asks this of the same sentences for every
    candidate it weighs, so each sentence is stemmed once."""
    return frozenset(stem(w.lower()) for w in words(text))


def shown_before(text: str, read: Iterable[str]) -> bool:
    """Whether the page already shows this sentence (``read``: what it shows above): the same
    words, whichever article carried them (a syndicated copy), case, punctuation and a wire
    dateline aside (publishing drops the dateline where it names the outlet)."""
    said = comparable(strip_dateline(text))
    return any(comparable(strip_dateline(t)) == said for t in read)


WORD_OVERLAP = 0.6  # at or above this word-set overlap, two sentences say the same thing


def overlap(a: str, b: str) -> float:
    """Word-set overlap: shared words over the smaller set's words (case and punctuation
    aside), so a sentence and its near-copy in another outlet score close to 1."""
    wa, wb = {w.lower() for w in words(a)}, {w.lower() for w in words(b)}
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))
