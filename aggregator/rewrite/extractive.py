"""The extractive rewrite: a neutral, attributed story built only from the sources' sentences.

Every sentence we output is a sentence some outlet wrote, carried with its provenance (entry id
and sentence index), so the story can never state what no source said. No model, no network:
the same articles always give the same story.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

from aggregator.config import LEFT_LEANS, RIGHT_LEANS
from aggregator.models import Coverage, Rewrite, Sentence, StoryArticle
from aggregator.text import add_terms, cosine, join_names, split_sentences, terms, word_count

LEANS_ORDER = ("left", "lean-left", "center", "lean-right", "right")
SUMMARY_WORDS = 60
BODY_MIN, BODY_MAX = 4, 8
PERSPECTIVE_SENTENCES = 3
COMMON_GROUND_MIN = 0.35  # cosine: both sides clearly report the same claim
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
SOURCE_SHARE = 0.35  # a summary is at most this share of all the sources' words

_OUTLET_SUFFIX_RE = re.compile(r"\s+(?:[-–—|:]\s+)[^-–—|:]{2,40}$")
_DANGLING_START_RE = re.compile(
    r"^(?:But|And|Or|So|Yet|Also|However|Still|Meanwhile|Instead|He|She|It|They|Them|His|Her|"
    r"Its|Their|This|That|These|Those|There|Here|Such)\b"
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
    r"meltdown|disaster|chaos|humiliat\w*|brutal|stunning|insane|fiasco|debacle|mess|"
    r"firestorm|scandal\w*|hammers?|torches?|eviscerat\w*|smack\w*|wrecks?|caves in|"
    r"radical|extremist|lies|lying|rammed|amnesty|illegals|illegal aliens?|"
    r"crazy|unhinged|savage\w*|explosive|devastating|horrif\w*|terrifying)\b|!"
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
    return sentence[-1] in ".!?\"'\u201d\u2019"


def _sentences(article: StoryArticle) -> list[Sentence]:
    return [
        _sentence(article, index, text)
        for index, text in enumerate(split_sentences(article.text))
        if _usable(text)
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
    scores = {}
    for i, s in enumerate(candidates):
        best = dict.fromkeys(sources, 0.0)
        for j, sim in similar[i].items():
            theirs = candidates[j].source_id
            best[theirs] = max(best[theirs], sim)
        support = sum(sim for source_id, sim in best.items() if source_id != s.source_id)
        penalty = QUOTE_PENALTY if s.text[:1] in '"\u201c' else 0.0
        penalty += LOADED_PENALTY * len(_LOADED_RE.findall(s.text))
        scores[keys[i]] = (
            support / others
            + GRAPH_WEIGHT * (rank[i] * len(keys) - 1.0)
            + TITLE_WEIGHT * cosine(vectors[keys[i]], titles)
            + LEAD_WEIGHT / (1 + s.index)
            + LEAN_BONUS.get(leans.get(s.entry_id, ""), 0.0)
            - penalty
        )
    return scores


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
        n = word_count(best.text)
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
    """A neutral title: the most representative, least sensational one; centre outlets first."""
    titles = [(a, clean_title(a.title, a.source_name)) for a in articles if a.kind == "news"]
    if not titles:
        titles = [(a, clean_title(a.title, a.source_name)) for a in articles]
    vectors = [terms(t) for _, t in titles]

    def score(i: int) -> float:
        article, title = titles[i]
        agree = sum(cosine(vectors[i], v) for j, v in enumerate(vectors) if j != i)
        penalty = _loaded(title)
        bonus = 0.3 if article.lean == "center" else 0.0
        return agree + bonus - penalty

    best = max(range(len(titles)), key=lambda i: (score(i), -len(titles[i][1])))
    return titles[best][1]


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
    )


def _attribution_order(sentences: list[Sentence], articles: Sequence[StoryArticle]) -> list:
    rank = {a.entry_id: i for i, a in enumerate(sorted(articles, key=lambda a: a.published))}
    return sorted(sentences, key=lambda s: (s.index > 1, rank[s.entry_id], s.index))


def _side_sentences(
    articles: Sequence[StoryArticle],
    leans: frozenset[str],
    centroid: dict[str, float],
    vectors: dict[tuple[int, int], dict[str, float]],
    by_entry: dict[int, list[Sentence]],
) -> tuple[Sentence, ...]:
    side = [a for a in articles if a.lean in leans]
    if not side:
        return ()
    # Opinion pieces carry the side's view; news coverage is the fallback.
    opinion = [a for a in side if a.kind == "opinion" and by_entry.get(a.entry_id)]
    pool_articles = opinion or side
    pool = [s for a in pool_articles for s in by_entry.get(a.entry_id, [])]
    if not pool:
        return ()
    scores = {
        (s.entry_id, s.index): cosine(vectors[(s.entry_id, s.index)], centroid)
        + 0.1 / (1 + s.index)
        for s in pool
    }
    picked = _mmr(pool, scores, vectors, max_count=PERSPECTIVE_SENTENCES)
    return tuple(sorted(picked, key=lambda s: (s.entry_id, s.index)))


def _common_ground(
    left: list[Sentence], right: list[Sentence], vectors: dict[tuple[int, int], dict[str, float]]
) -> tuple[Sentence, ...]:
    """Claims both sides report: left sentences with a close match among right ones."""
    pairs = []
    for ls in left:
        lv = vectors[(ls.entry_id, ls.index)]
        for rs in right:
            sim = cosine(lv, vectors[(rs.entry_id, rs.index)])
            if sim >= COMMON_GROUND_MIN:
                pairs.append((sim, ls, rs))
    pairs.sort(key=lambda p: (-p[0], p[1].entry_id, p[1].index))
    chosen: list[Sentence] = []
    for _, ls, rs in pairs:
        if len(chosen) >= 2 * 2:
            break
        if any(c.text == ls.text or c.text == rs.text for c in chosen):
            continue
        chosen.extend([ls, rs])
    return tuple(chosen[:4])


LEAD_INS = ("According to {}, ", "As {} reported, ")


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


def attribute(sentence: Sentence, turn: int = 0, names: frozenset[str] = frozenset()) -> Sentence:
    """The sentence with its outlet named in prose; the words themselves stay verbatim.

    The first word loses its capital only when it is plainly not a name: a common opener
    ("The", "In", ...) or a word the sources never capitalize mid-sentence (``names``).
    """
    text = sentence.text
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
    lead_in = LEAD_INS[turn % len(LEAD_INS)].format(sentence.source_name)
    return dataclasses.replace(sentence, attributed=lead_in + text)


def rewrite_story(articles: Sequence[StoryArticle], summary_words: int = SUMMARY_WORDS) -> Rewrite:
    """Build the balanced story from its source articles."""
    if not articles:
        raise ValueError("a story needs at least one article")
    articles = sorted(articles, key=lambda a: (a.published, a.entry_id))
    by_entry = {a.entry_id: _sentences(a) for a in articles}
    candidates = [s for a in articles for s in by_entry[a.entry_id]]
    vectors = {(s.entry_id, s.index): dict(terms(s.text)) for s in candidates}
    titles: dict[str, float] = {}
    for a in articles:
        add_terms(titles, terms(clean_title(a.title, a.source_name)))
    scores = _centrality(candidates, vectors, titles, {a.entry_id: a.lean for a in articles})
    centroid: dict[str, float] = {}
    for vec in vectors.values():
        add_terms(centroid, vec)

    news = [s for s in candidates if _kind(articles, s.entry_id) == "news"] or candidates
    budget = min(summary_words, SOURCE_SHARE * sum(word_count(a.text) for a in articles))
    summary_sents = _mmr(news, scores, vectors, max_words=max(budget, 1))
    # Most central first: the story's main fact opens the summary.
    summary_sents = summary_sents or _first_sentence(articles)
    headline = choose_headline(articles)
    summary = " ".join(s.text for s in summary_sents) or headline

    body = _body(news, scores, vectors, articles)
    coverage = coverage_of(articles)
    others = [name for name, _, _ in coverage.outlets if name != coverage.first_source]
    date = f"{coverage.first_published:%B} {coverage.first_published.day}"
    lede = f"{coverage.first_source} first reported this story on {date}."
    if others:
        lede += f" It was also covered by {join_names(others)}."

    left_arts = [a for a in articles if a.lean in LEFT_LEANS]
    right_arts = [a for a in articles if a.lean in RIGHT_LEANS]
    progressive = _side_sentences(articles, LEFT_LEANS, centroid, vectors, by_entry)
    conservative = _side_sentences(articles, RIGHT_LEANS, centroid, vectors, by_entry)
    common = _common_ground(
        [s for a in left_arts for s in by_entry[a.entry_id]],
        [s for a in right_arts for s in by_entry[a.entry_id]],
        vectors,
    )
    missing_left = None if left_arts else "No left-leaning outlet has covered this story yet."
    missing_right = None if right_arts else "No right-leaning outlet has covered this story yet."
    if not left_arts or not right_arts:
        missing_common = "Common ground needs coverage from both sides; " + (
            "no left-leaning outlet has covered this story yet."
            if not left_arts
            else "no right-leaning outlet has covered this story yet."
        )
    elif not common:
        missing_common = "Left- and right-leaning outlets do not yet report the same facts here."
    else:
        missing_common = None
    return Rewrite(
        headline=headline,
        summary=summary,
        summary_sentences=tuple(summary_sents),
        lede=lede,
        body=tuple(body),
        progressive=progressive,
        conservative=conservative,
        common_ground=common,
        progressive_missing=missing_left if not progressive else None,
        conservative_missing=missing_right if not conservative else None,
        common_ground_missing=missing_common,
        unavailable=tuple(sorted({a.source_name for a in articles if not a.text_available})),
    )


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
    articles: Sequence[StoryArticle],
) -> list[Sentence]:
    """4 to 8 sentences across all sources, each source heard at least once where possible."""
    chosen = _mmr(candidates, scores, vectors, max_count=BODY_MAX)
    if len(chosen) < BODY_MIN:  # few distinct facts: let closer paraphrases in, never repeats
        chosen = _mmr(candidates, scores, vectors, max_count=BODY_MIN, repeat=0.7, contained=1.1)
    voices = {s.source_id for s in chosen}
    for a in articles:
        if a.kind != "news" or a.source_id in voices:
            continue
        own = [s for s in candidates if s.entry_id == a.entry_id]
        if own:
            pick = max(own, key=lambda s: scores[(s.entry_id, s.index)])
            if len(chosen) >= BODY_MAX:
                chosen.pop()
            chosen.append(pick)
            voices.add(a.source_id)
    ordered = _attribution_order(chosen, articles)
    names = proper_words(a.text for a in articles)
    return [attribute(s, turn, names) for turn, s in enumerate(ordered)]
