"""The extractive rewrite: a neutral, attributed story built only from the sources' sentences.

Every sentence we output is a sentence some outlet wrote, carried with its provenance (entry id
and sentence index), so the story can never state what no source said; only the lead-ins that
name outlets ("X first reported that ...", "..., according to X.") are ours. Everything is
built on claims (:mod:`.claims`): the sentences of different outlets that say one thing. No
model, no network: the same articles always give the same story.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping, Sequence

from aggregator.config import LEFT_LEANS, RIGHT_LEANS
from aggregator.models import Coverage, CoverageNote, Rewrite, Sentence, StoryArticle
from aggregator.rewrite.claims import Claim, align, corroborated, features
from aggregator.text import (
    STOPWORDS,
    add_terms,
    comparable,
    cosine,
    join_names,
    split_sentences,
    stem,
    terms,
    word_count,
    words,
)

# Part of every story's input hash: a new version rewrites every stored story once.
EXTRACTIVE_VERSION = "claims-3"
LEANS_ORDER = ("left", "lean-left", "center", "lean-right", "right")
SUMMARY_WORDS = 60
BODY_MIN, BODY_MAX = 4, 8
PERSPECTIVE_SENTENCES = 3
COMMON_GROUND_CLAIMS = 4  # claims shown under Common Ground
# Summary weights, tuned with bench/rewrite_quality.py (NeuS val, AllSides dev): see _centrality.
TITLE_WEIGHT = 0.2
LEAD_WEIGHT = 0.6
GRAPH_WEIGHT = 0.3  # LexRank weight, scaled so an average sentence scores 0
QUOTE_PENALTY = 0.3  # a sentence opening with a quotation is someone's words, not a fact
REPEAT_SIMILARITY = 0.4  # above this, two sentences state the same fact
LOADED_PENALTY = 0.3  # per loaded or sensational word ("slams", "fiasco")
LEAN_BONUS = {"center": 0.02}  # a tie-break only: more cost ROUGE on the AllSides set
CONTAINED = 0.5  # at or above this share of its words already said, a sentence adds too little
OVERRUN = 1.3  # the last summary sentence may run this far past summary_words
# A summary is at most this share of all the sources' words (so it does not restate them). A
# story of one or two articles (often one the grouping split) may instead take as many words as
# its longest article: one short lead gets its lead, not one sentence of it. Fitted on
# neus-grouping train leads (summary_words 60), the floor for every story size against none:
# one article R-1 32.9 -> 34.8 (its own lead-2: 36.4), two 36.8 -> 37.5, but three 39.30 ->
# 39.22 (and R-L -0.19, outside the paired 95% interval), so three or more keep the share only.
# Replayed through the pipeline (bench/replay.py, neus train): R-1 37.60 -> 37.86, the stories
# the grouping split or joined 33.20 -> 34.00 (their centre lead: 33.05).
SOURCE_SHARE = 0.35
FEW_ARTICLES = 2  # ... up to this many articles, the longest one's length is allowed
# A claim two or more outlets report is what a summary states plainly: it ranks above one
# outlet's claim of the same centrality (tuned on 400 neus-grouping train stories).
CLAIM_BONUS = 0.5
# ... and a claim reported across leans above one a single lean reports, per further side. The
# tuning sets carry no leans, so this is a tie-break set by hand, not tuned.
ACROSS_LEANS_BONUS = 0.1

_OUTLET_SUFFIX_RE = re.compile(r"\s+(?:[-–—|:]\s+)[^-–—|:]{2,40}$")
_DANGLING_START_RE = re.compile(
    r"^(?:But|And|Or|So|Yet|Also|However|Still|Meanwhile|Instead|He|She|It|They|Them|His|Her|"
    r"Its|Their|This|That|These|Those|There|Here|Such|"
    # connectives that continue an argument the reader has not seen ("Finally, any settlement")
    r"Finally|Moreover|Furthermore|Additionally|Likewise|Similarly|Otherwise|Nonetheless|"
    r"Nevertheless|Besides|Thus|Therefore|Hence|Consequently|Indeed|Even so|In addition|"
    r"As a result|In other words|For example|For instance|By contrast|In contrast|"
    r"On the other hand|Worse|Better yet)\b(?!-)"  # not "Worse-than-expected"
)
# The outlet speaking for itself ("We're still looking into ...", "I was there"): in our story
# "we" would read as balanced-news, so such a sentence is never quoted without its context.
_OWN_VOICE_RE = re.compile(r"^(?:We|Our|Us|I|My|Me)\b|\bthis (?:article|story|piece|report)\b")
_BOILERPLATE_RE = re.compile(
    r"(?i)\b(?:advertisement|subscribe|sign up|newsletter|click here|read more|all rights "
    r"reserved|follow us|copyright|cookies?)\b|^(?:Watch|Listen|Read|See)\b|"
    r"\((?:video|audio|photos?|watch|listen)\)"  # a pointer to more, not a fact
)
_SENSATIONAL_RE = re.compile(
    r"(?i)\b(?:slams?|blasts?|destroys?|shocking|bombshell|outrage\w*|rips?|epic|furious|"
    r"meltdown|chaos|humiliat\w*|brutal|stunning|insane|fiasco|debacle|mess|"
    r"firestorm|scandal\w*|hammers?|torches?|eviscerat\w*|smack\w*|wrecks?|caves in|"
    r"radical|extremist|lies|lying|rammed|amnesty|illegals|illegal aliens?|"
    r"crazy|unhinged|savage\w*|explosive|horrif\w*|terrifying|fumes?|fuming|"
    r"ax(?:e|es|ed)|slash(?:es|ed)?|guts?|gutted|jacks? up|jacked up|hikes?|deception|"
    r"scheme|sky-high|pricey|inferno|blaze|cold water|slap on the wrist|courage|"
    r"assault on|war on|caves?|caved|shreds?|shredded|dumps?|dumped|disgraceful|sham|hoax|"
    r"witch hunt)\b|!"
)
# Words that take a side or shout, in a sentence we would print without quotation marks.
_LOADED_RE = re.compile(
    r"(?i)\b(?:rammed|slams?|blasts?|rips?|destroys?|illegals|illegal aliens?|amnesty|radical|"
    r"extremist|meltdown|fiasco|debacle|unhinged|insane|crazy|humiliat\w*|bombshell|"
    r"shocking|outrageous|disgraceful|sham|hoax|witch hunt)\b"
)
_EXPLAINER_RE = re.compile(r"^(?:What|Why|How|Who|Here's|Here is|Opinion|Analysis)\b")
_SCARE_QUOTE_RE = re.compile(r"[\u2018\u201c\"'][^\u2019\u201d\"']{1,40}[\u2019\u201d\"']")
_SHOUT_RE = re.compile(r"\b[A-Z]{3,}(?:\s+[A-Z]{2,})+\b")  # "HARBOR BRIDGE FIASCO", not "COVID"
_ALWAYS_CAPITAL = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)
_LOWERABLE = frozenset(
    "a an the in on at for of as after before during while when with by from under over some "
    "many most several officials".split()
)


def clean_title(title: str, outlet: str = "") -> str:
    """A title without the outlet's suffix (" - WSJ", " | Fox News") and shouting."""
    title = " ".join(title.split())
    if outlet and title.lower().endswith(outlet.lower()):
        title = title[: -len(outlet)].rstrip(" -–—|:")
    title = _OUTLET_SUFFIX_RE.sub("", title) if len(title.split()) > 5 else title
    if title.isupper():
        title = title.capitalize()
    return title.strip()


def _usable(sentence: str) -> bool:
    n = word_count(sentence)
    if n < 6 or n > 60:
        return False
    if _DANGLING_START_RE.match(sentence) or _OWN_VOICE_RE.search(sentence):
        return False
    if _BOILERPLATE_RE.search(sentence):
        return False
    if sentence.count("\u201c") != sentence.count("\u201d") or sentence.count('"') % 2:
        return False  # a dangling quote: it needs the sentence around it
    if sentence.endswith(("...", "\u2026")):
        return False  # cut off: an excerpt's last words, not a whole sentence
    if _speakerless_quote(sentence):
        return False  # its speaker is named in another sentence: shown alone, it has none
    return sentence[-1] in ".!?\"'\u201d\u2019"


_QUOTED_RE = re.compile(r"[\u201c\"][^\u201c\u201d\"]*[\u201d\"]")
_SPEECH_RE = re.compile(
    r"\b(?:said|says|told|asked|added|wrote|writes|according to|stated|argued|argues|"
    r"insisted|warned|declared|explained|noted|recalled|tweeted|posted)\b"
)


def _names_speaker(text: str) -> bool:
    """Whether a speech verb stands outside the text's quotations ("..., he wrote")."""
    return _SPEECH_RE.search(_QUOTED_RE.sub(" ", text)) is not None


def _speakerless_quote(sentence: str) -> bool:
    """A sentence that opens with a quotation and names no speaker outside it
    ("We want every kid who is ready ..."): the speaker is in the sentence before."""
    return sentence[:1] in '"\u201c' and not _names_speaker(sentence)


def _sentences(article: StoryArticle) -> list[Sentence]:
    """The article's sentences fit to quote, without its own headline where the text repeats
    it (a feed's summary, or text stored before extraction dropped it): a title is no fact."""
    title = comparable(clean_title(article.title, article.source_name))
    return [
        _sentence(article, index, text)
        for index, text in enumerate(split_sentences(article.text))
        if _usable(text) and comparable(text) != title
    ]


def _sentence(article: StoryArticle, index: int, text: str) -> Sentence:
    return Sentence(
        text=text,
        entry_id=article.entry_id,
        index=index,
        source_id=article.source_id,
        source_name=article.source_name,
        link=article.link,
    )


def _centrality(
    candidates: Sequence[Sentence],
    vectors: dict[tuple[int, int], dict[str, float]],
    titles: Mapping[str, float],
    leans: Mapping[int, str],
) -> dict[tuple[int, int], float]:
    """How much of each sentence the *other* sources also say, with the titles and the lead.

    Mean best-match similarity to every other source is the strongest sign that a sentence is a
    fact the sources agree on (measured on the NeuS and AllSides sets by
    ``bench/rewrite_quality.py``); its place in the graph of all the sentences (LexRank), the
    titles' words and an early position add a little. Of two equally central sentences, the
    centre outlet's and the one without loaded words win.
    """
    found = sentence_features(candidates, vectors, titles)
    return {
        key: (
            f["support"]
            + GRAPH_WEIGHT * f["graph"]
            + TITLE_WEIGHT * f["title"]
            + LEAD_WEIGHT * f["lead"]
            + LEAN_BONUS.get(leans.get(key[0], ""), 0.0)
            - QUOTE_PENALTY * f["quote"]
            - LOADED_PENALTY * f["loaded"]
        )
        for key, f in found.items()
    }


def sentence_features(
    candidates: Sequence[Sentence],
    vectors: dict[tuple[int, int], dict[str, float]],
    titles: Mapping[str, float],
) -> dict[tuple[int, int], dict[str, float]]:
    """What the scores weigh, per sentence: ``support`` (mean best-match similarity to each
    other source), ``graph`` (LexRank, 0 for an average sentence), ``title`` (cosine with the
    titles' words), ``lead`` (1 / (1 + index)), ``centroid`` (cosine with all the sentences'
    words), ``words`` (length / 30), ``quote`` (opens with a quotation) and ``loaded`` (loaded
    words)."""
    keys = [(s.entry_id, s.index) for s in candidates]
    similar: list[dict[int, float]] = [{} for _ in keys]  # only the pairs that share a term
    for i, a in enumerate(keys):
        for j in range(i + 1, len(keys)):
            sim = cosine(vectors[a], vectors[keys[j]])
            if sim:
                similar[i][j] = similar[j][i] = sim
    sources = sorted({s.source_id for s in candidates})
    others = max(1, len(sources) - 1)
    rank = _graph_rank(similar)
    centroid: dict[str, float] = {}
    for key in keys:
        add_terms(centroid, vectors[key])
    found = {}
    for i, s in enumerate(candidates):
        best = dict.fromkeys(sources, 0.0)
        for j, sim in similar[i].items():
            theirs = candidates[j].source_id
            best[theirs] = max(best[theirs], sim)
        support = sum(sim for source_id, sim in best.items() if source_id != s.source_id)
        found[keys[i]] = {
            "support": support / others,
            "graph": rank[i] * len(keys) - 1.0,
            "title": cosine(vectors[keys[i]], titles),
            "lead": 1.0 / (1 + s.index),
            "centroid": cosine(vectors[keys[i]], centroid),
            "words": word_count(s.text) / 30,
            "quote": 1.0 if s.text[:1] in '"\u201c' else 0.0,
            "loaded": float(len(_LOADED_RE.findall(s.text))),
        }
    return found


def _graph_rank(similar: Sequence[Mapping[int, float]], damping: float = 0.85) -> list[float]:
    """LexRank (Erkan & Radev 2004): the stationary weight of each sentence in a random walk
    over the similarity graph, so a sentence that many central sentences resemble is central.
    A few dozen steps of power iteration settle it to well within what the score can use."""
    n = len(similar)
    if not n:
        return []
    totals = [1.0 + sum(row.values()) for row in similar]  # each sentence is like itself
    rank = [1.0 / n] * n
    for _ in range(50):
        nxt = [(1.0 - damping) / n] * n
        for i, row in enumerate(similar):
            share = damping * rank[i] / totals[i]
            nxt[i] += share
            for j, sim in row.items():
                nxt[j] += share * sim
        done = max(abs(x - y) for x, y in zip(nxt, rank, strict=True)) < 1e-6 / n
        rank = nxt
        if done:
            break
    return rank


def _mmr(
    candidates: Sequence[Sentence],
    scores: dict[tuple[int, int], float],
    vectors: dict[tuple[int, int], dict[str, float]],
    *,
    max_words: float | None = None,
    max_count: int | None = None,
    redundancy: float = 0.5,
    repeat: float = REPEAT_SIMILARITY,
    contained: float = CONTAINED,
    extra_words: Mapping[tuple[int, int], int] | None = None,
    claim_of: Mapping[tuple[int, int], Claim] | None = None,
) -> list[Sentence]:
    """Maximal marginal relevance: the central sentences, without saying anything twice.

    A sentence closer than ``repeat`` to one already chosen is a near-repeat (the same fact in
    another outlet's words) and is never taken. With ``max_words``, the last sentence may run
    past the target by up to a third rather than leave the summary short.
    """
    chosen: list[Sentence] = []
    words_used = 0
    pool = list(candidates)
    while pool and (max_count is None or len(chosen) < max_count):

        def gain(s: Sentence) -> float:
            vec = vectors[(s.entry_id, s.index)]
            overlap = max(
                (cosine(vec, vectors[(c.entry_id, c.index)]) for c in chosen), default=0.0
            )
            return scores[(s.entry_id, s.index)] - redundancy * overlap

        best = max(pool, key=lambda s: (gain(s), -s.index, s.source_id))
        pool.remove(best)
        vec = vectors[(best.entry_id, best.index)]
        if any(cosine(vec, vectors[(c.entry_id, c.index)]) > repeat for c in chosen):
            continue  # a near-repeat of a sentence we already have
        if (
            chosen
            and _contained(vec, [vectors[(c.entry_id, c.index)] for c in chosen]) >= contained
        ):
            continue  # nearly every word of it already said, if spread over several sentences
        if claim_of and any(claim_of[_key(c)] is claim_of[_key(best)] for c in chosen):
            continue  # the same claim in another outlet's words
        n = word_count(best.text) + (extra_words or {}).get((best.entry_id, best.index), 0)
        if max_words is not None and chosen and words_used + n > max_words * OVERRUN:
            continue
        chosen.append(best)
        words_used += n
        if max_words is not None and words_used >= max_words:
            break
    return chosen


def _contained(vec: Mapping[str, float], chosen: Sequence[Mapping[str, float]]) -> float:
    """The share of a sentence's term weight that the chosen sentences already use."""
    total = sum(vec.values())
    if not total:
        return 1.0
    said = set().union(*chosen)
    return sum(w for t, w in vec.items() if t in said) / total


def choose_headline(articles: Sequence[StoryArticle]) -> str:
    """A neutral title from the news articles (opinion titles only when no news article has
    one): the fewest loaded words first, then the one that names the event the others report
    (agreement with the other titles), centre outlets breaking ties."""
    titles = [(a, clean_title(a.title, a.source_name)) for a in articles if a.kind == "news"]
    titles = [(a, t) for a, t in titles if t]
    if not titles:
        titles = [(a, clean_title(a.title, a.source_name)) for a in articles]
    vectors = [terms(t) for _, t in titles]

    def score(i: int) -> tuple[int, float, int, str]:
        article, title = titles[i]
        agree = sum(cosine(vectors[i], v) for j, v in enumerate(vectors) if j != i)
        bonus = 0.3 if article.lean == "center" else 0.0
        return (-loaded_words(title), agree + bonus - _loaded(title), -len(title), title)

    best = max(range(len(titles)), key=score)
    return titles[best][1]


def loaded_words(text: str) -> int:
    """How many words from the loaded-word list (sensational or side-taking: "slams",
    "fiasco", "axes", "parents fume", "amnesty") a text carries in the outlet's own voice.

    Not counted: a word that ends a compound ("low-lying islands"), and a word inside a
    quotation of three or more words whose speaker the text names ("... destroy ...," he
    wrote): those are the speaker's words, attributed already. A short quotation ("a
    'hoax'") is a scare quote, the outlet's own choice, and counts.
    """
    spoken = (
        [m.span() for m in _QUOTED_RE.finditer(text) if word_count(m.group()) >= 3]
        if _names_speaker(text)
        else []
    )
    return sum(
        1
        for m in _SENSATIONAL_RE.finditer(text)
        if text[m.start() - 1 : m.start()] != "-"
        and not any(start < m.start() < end for start, end in spoken)
    )


def _loaded(title: str) -> float:
    """How far a title is from a plain news headline: loaded words, shouting, questions,
    explainers, scare quotes and run-on length all count against it."""
    n = word_count(title)
    return (
        1.0 * len(_SENSATIONAL_RE.findall(title))
        + 0.5 * len(_SHOUT_RE.findall(title))
        + (0.5 if "?" in title else 0.0)
        + (0.5 if _EXPLAINER_RE.match(title) else 0.0)
        + 0.2 * len(_SCARE_QUOTE_RE.findall(title))
        + 0.05 * max(0, n - 14)
    )


def coverage_of(articles: Sequence[StoryArticle]) -> Coverage:
    """Who covered the story, and who reported it first (earliest published; ties: fetched)."""
    ordered = sorted(articles, key=lambda a: (a.published, a.fetched or a.published, a.entry_id))
    outlets: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for a in ordered:
        if a.source_id not in seen:
            seen.add(a.source_id)
            outlets.append((a.source_name, a.lean, a.link))
    named = {name for name, _, _ in outlets}
    via = {v[0]: v for a in ordered for v in a.via if v[0] not in named}
    leans = tuple(
        lean for lean in LEANS_ORDER if any(o[1] == lean for o in [*outlets, *via.values()])
    )
    return Coverage(
        first_source=ordered[0].source_name,
        first_published=ordered[0].published,
        outlets=tuple(outlets),
        leans=leans,
        via=tuple(via.values()),
        articles=tuple(
            (a.source_name, a.lean, a.link, clean_title(a.title, a.source_name)) for a in ordered
        ),
        copies=tuple(v for a in ordered for v in a.via),
    )


def _standalone(text: str) -> bool:
    """A sentence a reader understands without the one before it: no rhetorical question,
    no bare imperative ("Consider who rides ..."), no "he" or "she" before anyone is named."""
    if text.rstrip("\"'\u201d\u2019").endswith("?") or _IMPERATIVE_RE.match(text):
        return False
    pronoun = _PRONOUN_RE.search(text)
    if pronoun:
        before = text[: pronoun.start()]
        first = before.split(" ", 1)[0].strip(",")
        named = _NAME_RE.search(before) or (
            first[:1].isupper() and first.lower() not in _LOWERABLE | _OPENERS
        )
        if not named:
            return False
    return not _CONTEXT_RE.search(text)


_DEFINITE_RE = re.compile(r"\bthe ([a-z][a-z-]{3,})\b")
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'.\u2019-]*")


@functools.lru_cache(maxsize=4096)
def _names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The capitalized words of a text that end a name of two words or more ("Priya
    Nandakumar", "Sen. Ward"), and those standing alone ("Nandakumar said")."""
    tokens = [t.rstrip(".") for t in _TOKEN_RE.findall(text)]
    caps = [
        len(t) > 2
        and t[0].isupper()
        and any(c.islower() for c in t[1:])
        and t.lower() not in _LOWERABLE
        for t in tokens
    ]
    ending, alone = set(), set()
    for i, token in enumerate(tokens):
        if not caps[i] or token in _ALWAYS_CAPITAL:
            continue
        after = i + 1 < len(tokens) and caps[i + 1]
        if i and caps[i - 1]:
            ending.add(token)
        elif not after:
            alone.add(token)
    return frozenset(ending), frozenset(alone)


def _refers_back(
    sentence: Sentence, article_sentences: Sequence[str], shown: Iterable[str]
) -> bool:
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
    named = {stem(m.group(1)) for m in _DEFINITE_RE.finditer(sentence.text)} - STOPWORDS
    introduced = named & set().union(*(_stems(t) for t in earlier))
    return bool(introduced and introduced - set().union(*(_stems(t) for t in shown)))


@functools.lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    """The stems of a text's words. A body asks this of the same sentences for every
    candidate it weighs, so each sentence is stemmed once."""
    return frozenset(stem(w.lower()) for w in words(text))


_IMPERATIVE_RE = re.compile(
    r"^(?:Consider|Imagine|Remember|Look|Think|Ask|Note|Take|Start with|Picture|Recall|Don't|Do)\b"
)
_OPENERS = frozenset(
    "after before when while during as despite although though since because if once until "
    "asked speaking later earlier then now yesterday today".split()
)
_PRONOUN_RE = re.compile(r"\b(?:he|she|him|her|his)\b")
_NAME_RE = re.compile(r"(?<=[\s\"\u201c(])[A-Z][a-z]+|^[A-Z][a-z]+\s+[A-Z][a-z]+")
_CONTEXT_RE = re.compile(
    r"(?i)^(?:that|this|these|those|such|another|"
    r"(?:the|two|three|four|five|several|many|some|both) other)\b"  # "Two other members"
    r"|^Neither\b(?!.*\bnor\b)"  # "Neither number is close": which numbers?
    r"|\b(?:as well|either|too)\.$"
)


def _side_sentences(
    articles: Sequence[StoryArticle],
    leans: frozenset[str],
    claim_of: Mapping[tuple[int, int], Claim],
    other: str,
    centroid: dict[str, float],
    vectors: dict[tuple[int, int], dict[str, float]],
    by_entry: dict[int, list[Sentence]],
    texts: Mapping[int, Sequence[str]],
    read: Sequence[str] = (),
) -> tuple[Sentence, ...]:
    """What one side reports or argues that the other (``other``: "left" or "right") does not.

    Claims no outlet of the other side states, from the side's opinion pieces first (they carry
    its arguments), then its news; each sentence must stand on its own, leaning on nothing
    the reader has not ``read`` (headline, summary, body); ``texts``: each article's
    sentences by entry id.
    """
    side = [a for a in articles if a.lean in leans]
    if not side:
        return ()
    picked: list[Sentence] = []
    for kind in ("opinion", "news"):
        pool = [
            s
            for a in side
            if a.kind == kind
            for s in by_entry.get(a.entry_id, [])
            if other not in claim_of[(s.entry_id, s.index)].sides
            and _standalone(s.text)
            and not _refers_back(s, texts[s.entry_id], read)
        ]
        if not pool or len(picked) >= PERSPECTIVE_SENTENCES:
            continue
        scores = {
            (s.entry_id, s.index): cosine(vectors[(s.entry_id, s.index)], centroid)
            + 0.1 / (1 + s.index)
            for s in pool
        }
        more = _mmr(pool, scores, vectors, max_count=PERSPECTIVE_SENTENCES - len(picked))
        more = [m for m in more if all(_overlap(m.text, c.text) < WORD_OVERLAP for c in picked)]
        picked.extend(sorted(more, key=lambda s: (s.entry_id, s.index)))
    return tuple(picked)


WORD_OVERLAP = 0.6  # at or above this word-set overlap, two sentences say the same thing


def _overlap(a: str, b: str) -> float:
    """Word-set overlap: shared words over the smaller set's words (case and punctuation
    aside), so a sentence and its near-copy in another outlet score close to 1."""
    wa, wb = {w.lower() for w in words(a)}, {w.lower() for w in words(b)}
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))


def _representative(
    claim: Claim,
    scores: Mapping[tuple[int, int], float],
    opinion: frozenset[int] = frozenset(),
) -> Sentence:
    """The claim in its least loaded wording, a news article's before an opinion piece's
    (entry ids in ``opinion``) and a centre outlet's before a side's; of equally plain ones,
    the most central."""
    lean = dict(zip((_key(s) for s in claim.sentences), claim.leans, strict=True))
    return min(
        claim.sentences,
        key=lambda s: (
            loaded_words(s.text) + len(_LOADED_RE.findall(s.text)),
            s.entry_id in opinion,
            lean[_key(s)] != "center",
            s.text[:1] in '"\u201c',
            -scores.get((s.entry_id, s.index), 0.0),
            s.entry_id,
            s.index,
        ),
    )


def _cited(sentence: Sentence, claim: Claim, titles: Mapping[int, str]) -> Sentence:
    """The sentence carrying every article that states its claim (its own first)."""
    others = [s for s in claim.sentences if s.entry_id != sentence.entry_id]
    return dataclasses.replace(
        sentence,
        reported_by=tuple(
            (s.source_name, titles.get(s.entry_id, ""), s.link) for s in [sentence, *others]
        ),
    )


def _common_ground(
    claims: Sequence[Claim],
    scores: Mapping[tuple[int, int], float],
    titles: Mapping[int, str],
    opinion: frozenset[int] = frozenset(),
    limit: int = COMMON_GROUND_CLAIMS,
) -> tuple[Sentence, ...]:
    """Claims both sides report, each once in its plainest wording, citing every outlet that
    reports it; the most widely reported first, then in the order the story was told."""
    both = [c for c in claims if c.both_sides]
    both.sort(key=lambda c: (-len(c.outlets), -max(scores.get(_key(s), 0.0) for s in c.sentences)))
    chosen: list[Sentence] = []
    for claim in both:
        pick = _representative(claim, scores, opinion)
        if not _standalone(pick.text):
            standalone = [s for s in claim.sentences if _standalone(s.text)]
            if not standalone:
                continue
            pick = _representative(claim.only(lambda s: _standalone(s.text)), scores, opinion)
        if any(_overlap(pick.text, c.text) >= WORD_OVERLAP for c in chosen):
            continue
        chosen.append(_cited(pick, claim, titles))
        if len(chosen) >= limit:
            break
    return tuple(chosen)


def _key(s: Sentence) -> tuple[int, int]:
    return (s.entry_id, s.index)


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
    common = first.lower() in _LOWERABLE or (
        bool(names)
        and first not in names
        and first not in _ALWAYS_CAPITAL  # "March 5", even in a story about a march
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


_DATELINE_RE = re.compile(
    r"^(?:[A-Z][A-Z .,'-]{2,40}(?:\([^)]{1,40}\))?\s*[\u2014\u2013-]+\s+"  # "HALDEN (Wire) — "
    r"|\([A-Z][A-Za-z ]{1,20}\)\s*(?:[\u2014\u2013-]+\s*)?)(?=[A-Z])"  # "(CNN)", "(Reuters) - "
)


def strip_dateline(text: str) -> str:
    """The sentence without a wire dateline ("PELL CREEK (Civic Wire) — "): once the outlet
    is named in prose, the dateline only repeats it and breaks the sentence."""
    return _DATELINE_RE.sub("", text, count=1)


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


def rewrite_story(
    articles: Sequence[StoryArticle],
    summary_words: int = SUMMARY_WORDS,
    notes: Sequence[CoverageNote] = (),
) -> Rewrite:
    """Build the balanced story from its source articles. ``notes`` say what the reader is
    told of each side none of them comes from (``related.coverage_notes``); without them,
    that the side has not covered it."""
    if not articles:
        raise ValueError("a story needs at least one article")
    articles = sorted(articles, key=lambda a: (a.published, a.entry_id))
    by_entry = {a.entry_id: _sentences(a) for a in articles}
    candidates = [s for a in articles for s in by_entry[a.entry_id]]
    vectors = {(s.entry_id, s.index): terms(s.text) for s in candidates}
    titles: dict[str, float] = {}
    for a in articles:
        add_terms(titles, terms(clean_title(a.title, a.source_name)))
    leans = {a.entry_id: a.lean for a in articles}
    scores = _centrality(candidates, vectors, titles, leans)
    centroid: dict[str, float] = {}
    for vec in vectors.values():
        add_terms(centroid, vec)
    order = {a.entry_id: i for i, a in enumerate(articles)}
    claims = align(candidates, leans, order)
    claim_of = {_key(s): c for c in claims for s in c.sentences}
    article_titles = {a.entry_id: clean_title(a.title, a.source_name) for a in articles}

    news = [s for s in candidates if _kind(articles, s.entry_id) == "news"] or candidates
    lengths = [word_count(a.text) for a in articles]
    floor = max(lengths) if len(articles) <= FEW_ARTICLES else 0
    budget = min(summary_words, max(SOURCE_SHARE * sum(lengths), floor))
    summary_sents = _summary(news, scores, vectors, claim_of, max(budget, 1), articles)
    summary_sents = summary_sents or _first_sentence(articles)
    headline = choose_headline(articles)
    summary = " ".join(s.attributed or s.text for s in summary_sents) or headline

    coverage = coverage_of(articles)
    shown = [headline, *(s.text for s in summary_sents)]
    texts = {a.entry_id: split_sentences(a.text) for a in articles}
    body = _body(news, scores, vectors, claim_of, articles, coverage, texts, shown)
    others = [name for name, _, _ in coverage.outlets if name != coverage.first_source]
    date = f"{coverage.first_published:%B} {coverage.first_published.day}"
    lede = f"{coverage.first_source} first reported this story on {date}."
    if others:
        lede += f" It was also covered by {join_names(others)}."

    left_arts = [a for a in articles if a.lean in LEFT_LEANS]
    right_arts = [a for a in articles if a.lean in RIGHT_LEANS]
    read = [*shown, *(s.text for s in body)]  # what the reader has seen before the views
    progressive = _side_sentences(
        articles, LEFT_LEANS, claim_of, "right", centroid, vectors, by_entry, texts, read
    )
    conservative = _side_sentences(
        articles, RIGHT_LEANS, claim_of, "left", centroid, vectors, by_entry, texts, read
    )
    opinion = frozenset(a.entry_id for a in articles if a.kind == "opinion")
    common = (
        _common_ground(claims, scores, article_titles, opinion) if left_arts and right_arts else ()
    )
    # A side with no article of its own: what the reader is told is a note (``notes``, one
    # per such side: not covered, or a related angle the search found), worded by publish.
    if not left_arts or not right_arts:
        missing_common = None
    elif not common:
        missing_common = "Left- and right-leaning outlets do not yet report the same facts here."
    else:
        missing_common = None
    side_missing = "Nothing here that only {} outlets report or argue."
    return Rewrite(
        headline=headline,
        summary=summary,
        summary_sentences=tuple(summary_sents),
        lede=lede,
        body=tuple(body),
        progressive=progressive,
        conservative=conservative,
        common_ground=common,
        progressive_missing=side_missing.format("left-leaning")
        if left_arts and not progressive
        else None,
        conservative_missing=side_missing.format("right-leaning")
        if right_arts and not conservative
        else None,
        common_ground_missing=missing_common,
        notes=tuple(notes)
        or tuple(
            CoverageNote("no_coverage", side)
            for side, arts in (("left", left_arts), ("right", right_arts))
            if not arts
        ),
        unavailable=tuple(sorted({a.source_name for a in articles if not a.text_available})),
    )


def _summary(
    news: Sequence[Sentence],
    scores: Mapping[tuple[int, int], float],
    vectors: dict[tuple[int, int], dict[str, float]],
    claim_of: Mapping[tuple[int, int], Claim],
    budget: float,
    articles: Sequence[StoryArticle],
) -> list[Sentence]:
    """The central claims, most central first. A claim two or more outlets report (across
    leans where it can) is stated plainly, in its least loaded news wording; one that only one
    outlet or one side reports, or that has no plain wording, is attributed."""
    lean_of = {a.source_name: a.lean for a in articles}
    reported = _reporters(news, claim_of, articles)
    # A claim that needs no attribution (two or more outlets, not one side's) ranks first; one
    # reported across leans (left and centre, or left and right) before one a single lean reports.
    scores = {k: v + _plain_bonus(reported.get(k, ()), lean_of) for k, v in scores.items()}
    # An attributed claim's lead-in takes room in the summary too.
    extra = {
        k: 2 + word_count(join_names(outlets))
        for k, outlets in reported.items()
        if len(outlets) < 2 or _one_side(outlets, lean_of)
    }
    chosen = _mmr(news, scores, vectors, max_words=budget, extra_words=extra, claim_of=claim_of)
    news_keys = {_key(s) for s in news}
    out = []
    for sentence in chosen:
        claim = claim_of[_key(sentence)]
        stated = claim.only(lambda s: _key(s) in news_keys)
        plain = _representative(stated, scores) if stated.sentences else sentence
        if loaded_words(plain.text) + len(_LOADED_RE.findall(plain.text)) >= loaded_words(
            sentence.text
        ) + len(_LOADED_RE.findall(sentence.text)):
            plain = sentence  # no plainer wording: keep the one chosen
        outlets = reported[_key(sentence)]
        if len(outlets) < 2 or _one_side(outlets, lean_of) or loaded_words(plain.text):
            if not _names_outlet(plain) or loaded_words(plain.text):
                plain = attributed_claim(plain, outlets)
        elif strip_dateline(plain.text) != plain.text:
            plain = dataclasses.replace(plain, attributed=strip_dateline(plain.text))
        out.append(plain)
    return out


def _reporters(
    news: Sequence[Sentence],
    claim_of: Mapping[tuple[int, int], Claim],
    articles: Sequence[StoryArticle],
) -> dict[tuple[int, int], tuple[str, ...]]:
    """Who states each sentence's claim: the outlets aligned to it or, for a claim only one
    outlet's sentence states, every outlet whose title and text tell it across sentences."""
    text_features: dict[str, set[str]] = {}  # an outlet reports what its titles and texts say
    for a in articles:
        text_features.setdefault(a.source_name, set()).update(features(a.title + "\n" + a.text))
    reported = {}
    for s in news:
        outlets = claim_of[_key(s)].outlets
        if len(outlets) < 2:
            outlets += tuple(
                name
                for name, found in text_features.items()
                if name not in outlets and corroborated(s, found)
            )
        reported[_key(s)] = outlets
    return reported


def _names_outlet(sentence: Sentence) -> bool:
    """Whether a sentence already says which outlet reports it ("..., sources told NBC News")."""
    name = re.sub(r"\s*\([^)]*\)$", "", sentence.source_name)  # "NBC News (Online)"
    found = re.search(rf"(?<=\s){re.escape(name)}\b", sentence.text) if len(name) > 2 else None
    return found is not None  # mid-sentence, a whole name: not "Reason is ..." for Reason


def _sides(outlets: Sequence[str], lean_of: Mapping[str, str]) -> set[str]:
    """Which sides ("left", "center", "right") the outlets are on."""
    return {
        "left" if lean in LEFT_LEANS else "right" if lean in RIGHT_LEANS else "center"
        for lean in (lean_of.get(o, "center") for o in outlets)
    }


def _one_side(outlets: Sequence[str], lean_of: Mapping[str, str]) -> bool:
    """Whether only left-leaning, or only right-leaning, outlets report something."""
    return _sides(outlets, lean_of) in ({"left"}, {"right"})


def _plain_bonus(outlets: Sequence[str], lean_of: Mapping[str, str]) -> float:
    """How much a claim gains in the summary for needing no attribution: two or more outlets,
    not one side only; more for each further side among them (issue 13: "across leans where
    possible")."""
    if len(outlets) < 2 or _one_side(outlets, lean_of):
        return 0.0
    return CLAIM_BONUS + ACROSS_LEANS_BONUS * (len(_sides(outlets, lean_of)) - 1)


def _first_sentence(articles: Sequence[StoryArticle]) -> list[Sentence]:
    """When no sentence passes the filters: the first sentence of the first article with text."""
    for a in articles:
        for index, text in enumerate(split_sentences(a.text)[:1]):
            return [_sentence(a, index, text)]
    return []


def _kind(articles: Sequence[StoryArticle], entry_id: int) -> str:
    for a in articles:
        if a.entry_id == entry_id:
            return a.kind
    return "news"


def _body(
    candidates: list[Sentence],
    scores: dict[tuple[int, int], float],
    vectors: dict[tuple[int, int], dict[str, float]],
    claim_of: Mapping[tuple[int, int], Claim],
    articles: Sequence[StoryArticle],
    coverage: Coverage,
    texts: Mapping[int, Sequence[str]],
    shown: Sequence[str] = (),
) -> list[Sentence]:
    """The story in the order it was told: what the first reporter reported, then what each
    other outlet added (claims not yet told), 4 to 8 sentences, each outlet heard where
    possible, every one attributed to the outlet that wrote it. ``texts``: each article's
    sentences by entry id; ``shown``: what the reader has read before the body (headline,
    summary); no sentence leans on anything else unseen."""
    by_entry: dict[int, list[Sentence]] = {}
    for s in candidates:
        if _standalone(s.text) or s.index == 0:
            by_entry.setdefault(s.entry_id, []).append(s)
    told: set[int] = set()  # ids of the claims told so far
    chosen: list[Sentence] = []
    news = [a for a in articles if a.entry_id in by_entry]
    per_article = max(1, BODY_MAX // max(1, len(news)))
    for turn, article in enumerate(news):
        room = BODY_MAX - len(chosen) - max(0, len(news) - turn - 1)  # keep one each for the rest
        want = min(room, per_article + (2 if turn == 0 else 0))
        own = sorted(by_entry[article.entry_id], key=lambda s: (-scores[_key(s)], s.index))
        if turn == 0:  # the story opens with the first report's own opening, not its middle
            lead = min(own, key=lambda s: (s.text[:1] in '"\u201c', s.index))
            own = [lead] + [s for s in own if s is not lead]
        picked: list[Sentence] = []
        for s in own:
            if len(picked) >= want:
                break
            claim = id(claim_of[_key(s)])
            if claim in told:
                continue
            vec = vectors[_key(s)]
            if any(cosine(vec, vectors[_key(c)]) > REPEAT_SIMILARITY for c in chosen + picked):
                continue
            said = [*shown, *(c.text for c in chosen), *(c.text for c in picked)]
            if _refers_back(s, texts[article.entry_id], said):
                continue
            picked.append(s)
            told.add(claim)
        chosen.extend(sorted(picked, key=lambda s: s.index))
    if len(chosen) < BODY_MIN:  # few distinct facts: let closer paraphrases in, never repeats
        more = _mmr(candidates, scores, vectors, max_count=BODY_MIN, repeat=0.7, contained=1.1)
        chosen.extend(m for m in more if m not in chosen)
        chosen = chosen[:BODY_MIN] if len(chosen) > BODY_MAX else chosen
        rank = {a.entry_id: i for i, a in enumerate(articles)}
        chosen.sort(key=lambda s: (rank[s.entry_id], s.index))
    names = proper_words(a.text for a in articles)
    out: list[Sentence] = []
    heard: dict[str, int] = {}  # sentences so far per outlet
    used: dict[str, str] = {}  # the lead-in last used for each outlet
    turn = 0
    for s in chosen:
        quote = s.text[:1] in '"\u201c'
        if not out and s.source_name == coverage.first_source and not quote:
            pattern = FIRST_LEAD_IN
        elif s.source_name in heard:
            # Not "also reported that ... also raises" nor "said that ... said", and never
            # the form just used.
            forms = [
                p
                for p in AGAIN_LEAD_INS
                if not any(w in p and re.search(rf"\b{w}\b", s.text) for w in ("also", "said"))
                and p != used.get(s.source_name)
            ]
            forms = forms or ["{} noted that "]  # it says "also" and "said", after "wrote"
            pattern = forms[(heard[s.source_name] - 1) % len(forms)]
        elif quote:
            pattern = QUOTE_LEAD_INS[turn % len(QUOTE_LEAD_INS)]
            turn += 1
        else:
            pattern = LEAD_INS[turn % len(LEAD_INS)]
            turn += 1
        if pattern.endswith("that ") and quote:
            pattern = QUOTE_LEAD_INS[0]
        out.append(attribute(s, pattern, names))
        heard[s.source_name] = heard.get(s.source_name, 0) + 1
        used[s.source_name] = pattern
    return out
