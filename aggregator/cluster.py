"""Grouping: which story does a new article join?

Online clustering, one article at a time, in the order articles arrive:

- an article becomes a sparse TF-IDF vector (IDF learnt from the articles seen so far) in which
  the title and the lead weigh most, and names, numbers and quoted phrases weigh extra: they are
  what tells one story from another on the same topic;
- candidate stories come from an inverted index of each story's most telling terms, walked
  newest first and only within the time window, never from all stories;
- a pair model (``aggregator.pair_model``: logistic regression over article-to-story
  features: cosines of text and title against the story's members, how many of the article's
  names and numbers the story has, the time gap; fitted on the ``train`` split of real stories by
  ``bench/train_grouping.py``, weights in ``grouping_model.json``) gives the probability that
  the article reports the same event as each candidate story;
- the article joins the most probable story when that probability passes the model's ``join``
  threshold. One event is one story: the next day's vote after a deal is a new story. When
  it does not (or the article dates itself to a later day than that story: ``later_event``)
  but the article is close to the best story's centroid (``STORYLINE_COSINE``), it opens a
  new story in the same *storyline* (consecutive events of one developing story, linked in the
  feed, never merged);
- when an article is close to two stories that are close to each other (the same event
  opened twice), they merge into the older story id, which never changes; the newer id is
  retired, never reused.

Opinion pieces are no events of their own: one that the model does not join to a story still
joins the story it argues about (``commentary_home``), since commentary comes a day or two later
and in other words (the demo's editorials score 0.03-0.3 against the news they argue about):
matched on what framing keeps (the names and numbers of its whole text), the time since the
event not counted against it; a six-word quotation of the news, or calendar days the news does
not give, decide before the names do (``aggregator.signals``: what framing does not change).

Time is the articles' own published time, never the wall clock, so a replay of old news groups
exactly as the live stream did. Near-duplicate copies (syndicated wire text) join the story of
their original and are reported as copies of it.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from aggregator.embeddings import Embedder, embedding_text  # plain text: no model library
from aggregator.identity import NearDuplicates
from aggregator.models import ClusterArticle
from aggregator.pair_model import PairModel, default_model
from aggregator.signals import ENTITY_TERMS, named_share, shares_quote, signals, term_key
from aggregator.text import sentence_pieces, words

WINDOW = timedelta(days=3)
HISTORY = 3 * WINDOW  # how far back the index must see to decide like the live stream did
MERGE_THRESHOLD = 0.45
LEAD_WORDS = 50
TEXT_CHARS = 1500  # past its first ~250 words an article adds detail, not identity
TITLE_WEIGHT, LEAD_WEIGHT, BODY_WEIGHT = 3.0, 1.5, 1.0
NAME_BOOST, NUMBER_BOOST, QUOTE_WEIGHT = 2.0, 1.5, 1.5
VECTOR_TERMS = 60  # an article keeps its heaviest terms only: the rest is noise
INDEX_TERMS = 16  # of which these find candidate stories through the index
QUERY_TERMS = 24  # and these of an article look them up (measured on train: fewer missed stories)
CENTROID_TERMS = 150
MEMBERS_KEPT = 8  # members compared one by one (the newest)
CANDIDATES = 16  # stories the index proposes
COMPARED = 8  # of which the closest centroids are compared member by member
POSTING_SCAN = 300
SWEEP_EVERY = timedelta(days=1)
IDF_PRIOR = 20  # pseudo-documents: early in a stream no word is rare yet
NEXT_EVENT_GAP = timedelta(hours=24)
# An article that opens a story links it into the storyline of the closest story when its
# cosine to that story's centroid reaches this: the same topic, the same names, another event.
# Chosen by reading, not fitted: there are no gold storylines to fit it on.
STORYLINE_COSINE = 0.2
# Below this cosine to a story's centroid, an article is not compared with the story at all
# (measured on train: 31% of the candidates, 0.3% of the right ones).
CENTROID_FLOOR = 0.05
# An opinion piece joins its most probable story when that story names this share of its names
# and numbers (tf-idf weight, whole text), though neither the pair model nor its words tie them.
# Chosen by reading: the train split labels no opinion pieces. Treating every train article
# whose story exists but scores below the join threshold as one, this rule and the cosine's
# pick its story 70% of the time (the cosine's alone 76%, fewer of them).
COMMENTARY_NAMES = 0.5
RARE_IDF = 3.0  # a shared term this rare (idf) is a sign of the same event
_STORY_NS = uuid.UUID("6f1d2c1e-9f7a-4c1b-8b0e-2b1f6a2d9c41")
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_QUOTE_RE = re.compile(r"[“\"]([^”\"]{10,240})[”\"]")

Vector = dict[str, float]


class Doc(NamedTuple):
    """An article as the index compares it: whole vector, title vector, names and numbers,
    and the weekdays its text mentions (an event's "on Wednesday")."""

    vec: Vector
    title: Vector
    names: frozenset[str]
    numbers: frozenset[str] = frozenset()
    days: frozenset[str] = frozenset()
    embedding: Any = None  # a unit sentence vector, only when the index has an embedder
    # What framing does not change, over the whole text (``aggregator.signals``):
    entities: Vector = {}  # its names and numbers, tf-idf (never mutated)
    quotes: frozenset[int] = frozenset()  # six-word runs inside its quotations
    runs: frozenset[int] = frozenset()  # every six-word run (only until it joins a story)
    dates: frozenset[str] = frozenset()  # calendar days it gives


def story_id_for(source_id: str, entry_key: str) -> str:
    """A story's id, fixed forever by the article that opened it."""
    return str(uuid.uuid5(_STORY_NS, f"{source_id}\n{entry_key}"))


_key = term_key


@lru_cache(maxsize=500_000)
def _weighed(word: str) -> tuple[str | None, float]:
    """A mid-sentence word's term key and boost: numbers and names (capitalised) weigh up."""
    if word[0].isdigit():
        return _key(word), NUMBER_BOOST
    if word[0].isupper():
        return _key(word), NAME_BOOST
    return _key(word), 1.0


def _count(
    counts: Vector,
    found: Iterable[str],
    weight: float,
    names: bool,
    named: dict[str, int] | None = None,
) -> None:
    """Add words into ``counts`` in text order (so ties among weights favour earlier words);
    names and numbers are also counted into ``named`` when given."""
    get = counts.get
    for word in found:
        key, boost = _weighed(word)
        if key:
            if not names and boost == NAME_BOOST:
                boost = 1.0
            elif named is not None and boost > 1.0:
                named[key] = named.get(key, 0) + 1
            counts[key] = get(key, 0.0) + weight * boost


class Features(NamedTuple):
    counts: Vector
    names: frozenset[str]  # keys of the names and numbers the text mentions
    numbers: frozenset[str]
    days: frozenset[str]  # weekdays it mentions
    named: dict[str, int]  # how often it names each (in its first ``TEXT_CHARS``)


def features(title: str, text: str) -> Features:
    """Raw weighted term counts of an article (title and lead first, names and numbers up),
    and the names, numbers and weekdays its text mentions."""
    counts: Vector = {}
    named: dict[str, int] = {}
    _count(counts, words(title), TITLE_WEIGHT, names=False)  # titles capitalise everything
    seen = 0
    for piece in sentence_pieces(text[:TEXT_CHARS]):
        head = max(0, min(len(piece), LEAD_WORDS - seen))  # words of the piece in the lead
        for weight, chunk, opens in (
            (LEAD_WEIGHT, piece[:head], True),
            (BODY_WEIGHT, piece[head:], head == 0),
        ):
            if chunk:
                start = 1 if opens else 0  # the word opening a sentence is no name
                _count(counts, chunk[:start], weight, names=False)
                _count(counts, chunk[start:], weight, names=True, named=named)
        seen += len(piece)
    get = counts.get
    for quote in _QUOTE_RE.findall(text):
        keys = [k for k in (_key(w) for w in words(quote)) if k]
        for a, b in zip(keys, keys[1:], strict=False):
            pair = f"{a}_{b}"
            counts[pair] = get(pair, 0.0) + QUOTE_WEIGHT
    lowered = {w.lower() for w in words(text[:TEXT_CHARS])}
    return Features(
        counts,
        frozenset(named),
        frozenset(k for k in named if k[0].isdigit()),
        frozenset(lowered & _WEEKDAYS),
        named,
    )


def cosine(a: Vector, b: Vector) -> float:
    """Cosine of two L2-normalised sparse vectors (the shared keys found at C speed: most
    keys of two articles are not shared). ``fsum`` is exact, so the set's order, which
    changes with the process's hash seed, never changes a decision."""
    return math.fsum([a[k] * b[k] for k in a.keys() & b.keys()])


def _normalised(vec: Vector, keep: int) -> Vector:
    # A stable sort: among equal weights the words met first (title, lead) stay.
    top = sorted(vec.items(), key=itemgetter(1), reverse=True)[:keep]
    norm = math.sqrt(sum(v * v for _, v in top)) or 1.0
    return {k: v / norm for k, v in top}


@dataclass
class Story:
    """A story as the index sees it: its centroid, newest members, names and time span."""

    story_id: str
    first_published: datetime
    last_published: datetime
    storyline: str = ""  # the story id of the storyline's first event (its own id if first)
    total: Vector = field(default_factory=dict)  # sum of member vectors
    centroid: Vector = field(default_factory=dict)  # normalised, pruned
    members: list[Doc] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # of every member
    vocabulary: set[str] = field(default_factory=set)  # the terms of the members compared
    numbers: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)  # every member's names, whole texts
    quotes: set[int] = field(default_factory=set)  # every member's quoted six-word runs
    dates: set[str] = field(default_factory=set)
    news: int = 0  # members that are news, not opinion
    entry_ids: list[int] = field(default_factory=list)
    source_ids: set[str] = field(default_factory=set)

    def add(self, entry_id: int, source_id: str, doc: Doc, published: datetime) -> None:
        for k, v in doc.vec.items():
            self.total[k] = self.total.get(k, 0.0) + v
        self.centroid = _normalised(self.total, CENTROID_TERMS)
        self.members = [*self.members[-(MEMBERS_KEPT - 1) :], doc]
        self.vocabulary = set().union(*(m.vec for m in self.members))
        self.names |= doc.names
        self.numbers |= doc.numbers
        self.days |= doc.days
        self.entities.update(doc.entities)
        self.quotes |= doc.quotes
        self.dates |= doc.dates
        self.entry_ids.append(entry_id)
        self.source_ids.add(source_id)
        self.first_published = min(self.first_published, published)
        self.last_published = max(self.last_published, published)

    def gap(self, when: datetime) -> timedelta:
        """How far ``when`` lies outside the story's time span (zero inside it)."""
        if when < self.first_published:
            return self.first_published - when
        if when > self.last_published:
            return when - self.last_published
        return timedelta(0)


@dataclass(frozen=True)
class Assignment:
    """Where an article went: its story, how sure, and what else changed."""

    story_id: str
    score: float  # probability of the story it joined (or came closest to, when it opened one)
    opened: bool
    copy_of: int | None = None  # entry id of the original when this is a near-duplicate
    merged: tuple[str, ...] = ()  # newer story ids folded into ``story_id`` by this article
    storyline: str = ""  # the storyline the story belongs to (see ``Story.storyline``)
    # Every candidate story compared, with the pair model's probability (story id, p), most
    # probable first: what a looser search for related coverage reads (``related.py``).
    near: tuple[tuple[str, float], ...] = ()


FEATURES = (
    "text_mean",  # mean cosine of the article's vector to the members'
    "text_max",
    "title_mean",  # the same, title against title
    "title_max",
    "centroid",  # cosine to the story's centroid
    "name_cover",  # share (idf-weighted) of the article's names and numbers the story has
    "story_name_cover",  # share of the story's names the article has
    "title_cover",  # weight of the article's title terms found in the story's members
    "gap_days",  # time between the article and the story's span
    # Not the story's size: the training stories have three articles, live ones dozens.
    "has_names",
    "title_text_max",  # article title against member texts
    "text_title_max",  # article text against member titles
    "rare_shared",  # shared rare terms (idf >= RARE_IDF), up to 5, as a share of 5
    # The next event of a story shares its names but not its numbers or its day: "voted 412
    # to 96 on Wednesday" after "a tentative deal on Monday".
    "numbers_new",  # the article's numbers the story lacks, up to 3, as a share of 3
    "numbers_shared",  # share of the article's numbers the story has
    "day_shared",  # both mention a weekday, and a common one
    "day_conflict",  # both mention weekdays, none in common
)
# Appended to ``FEATURES`` only when the index has an embedder (the embeddings extra).
EMBEDDING_FEATURES = (
    "embed_mean",  # mean cosine of the article's sentence vector to the members'
    "embed_max",
)
EMBED_MODEL = "grouping_model_embed.json"


class StoryIndex:
    """The online clusterer: feed it articles in arrival order, it keeps stories and ids."""

    def __init__(
        self,
        model: PairModel | None = None,
        window: timedelta = WINDOW,
        merge_threshold: float = MERGE_THRESHOLD,
        near_duplicates: bool = True,
        threshold: float | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.embedder = embedder
        self.features = FEATURES if embedder is None else FEATURES + EMBEDDING_FEATURES
        if model is None:
            model = default_model() if embedder is None else default_model(EMBED_MODEL)
        if embedder is not None and model.features != self.features:
            raise ValueError(
                "the embedding pair model was fitted on other features than the index computes: "
                "refit it with python bench/train_grouping.py --embeddings"
            )
        self.model = model
        self.threshold = self.model.join if threshold is None else threshold
        self.window = window
        self.merge_threshold = merge_threshold
        self.stories: dict[str, Story] = {}
        self.merged_into: dict[str, str] = {}
        self.story_of: dict[int, str] = {}
        self._df: dict[str, int] = {}
        self._docs = 0
        self._postings: dict[str, dict[str, datetime]] = {}
        self._swept: datetime | None = None
        self._dups = NearDuplicates() if near_duplicates else None

    # --- vectors ---------------------------------------------------------------------------

    def vector(self, article: ClusterArticle, learn: bool = True) -> Vector:
        """The article's TF-IDF vector; ``learn`` counts it into the document frequencies."""
        return self.doc(article, learn).vec

    def _idf(self, key: str) -> float:
        return math.log((self._docs + IDF_PRIOR) / (self._df.get(key, 0) + 1))

    def doc(self, article: ClusterArticle, learn: bool = True) -> Doc:
        """The article's TF-IDF vectors (the whole, and the title alone) and its names."""
        raw, names, numbers, days, named = features(article.title, article.text)
        # the lead's names are counted already: the signals read on from there
        framing = signals(article.text, article.kind == "opinion", named, TEXT_CHARS)
        df = self._df
        if learn:
            self._docs += 1
            for key in raw:
                df[key] = df.get(key, 0) + 1
        docs, log, log1p = self._docs + IDF_PRIOR, math.log, math.log1p
        weights = {k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in raw.items()}
        title: Vector = {}
        _count(title, words(article.title), TITLE_WEIGHT, names=False)
        title = {k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in title.items()}
        entities = {
            k: log1p(v) * log(docs / (df.get(k, 0) + 1)) for k, v in framing.entities.items()
        }
        vec, title = _normalised(weights, VECTOR_TERMS), _normalised(title, VECTOR_TERMS)
        embedding = None
        if self.embedder is not None:
            (embedding,) = self.embedder.embed([embedding_text(article.title, article.text)])
        return Doc(
            vec,
            title,
            names,
            numbers,
            days,
            embedding,
            _normalised(entities, ENTITY_TERMS),
            framing.quotes,
            framing.runs,
            framing.dates,
        )

    # --- the index -------------------------------------------------------------------------

    def _post(self, story: Story, vec: Vector) -> None:
        for key in list(vec)[:INDEX_TERMS]:  # vec is sorted heaviest first
            posting = self._postings.setdefault(key, {})
            posting.pop(story.story_id, None)
            posting[story.story_id] = story.last_published

    def _forget_old(self, now: datetime) -> None:
        """Drop stories and postings too old to take any new article (keeps memory flat)."""
        if self._swept is not None and now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        cutoff = now - 3 * self.window
        for sid in [sid for sid, s in self.stories.items() if s.last_published < cutoff]:
            if self._dups is not None:
                for entry_id in self.stories[sid].entry_ids:
                    self._dups.remove(entry_id)
            del self.stories[sid]
        for key in list(self._postings):
            posting = self._postings[key]
            while posting:
                first = next(iter(posting))
                if posting[first] >= cutoff:
                    break
                del posting[first]
            if not posting:
                del self._postings[key]

    def candidates(self, vec: Vector, when: datetime, names: Vector | None = None) -> list[Story]:
        """Stories sharing the article's telling terms, near it in time: newest first. With
        ``names`` (its names and numbers over the whole text), stories sharing those too."""
        earliest = when - self.window
        votes: dict[str, float] = {}
        query = list(vec)[:QUERY_TERMS]
        if names:
            query += [k for k in list(names)[:QUERY_TERMS] if k not in vec]
        for key in query:
            posting = self._postings.get(key)
            if not posting:
                continue
            weight = vec.get(key) or names[key]  # type: ignore[index]
            for scanned, sid in enumerate(reversed(posting)):
                if scanned >= POSTING_SCAN or posting[sid] < earliest - self.window:
                    break
                votes[sid] = votes.get(sid, 0.0) + weight
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        found = []
        for sid, _ in ranked:
            story = self.stories.get(sid)
            if story is not None and story.gap(when) <= self.window:
                found.append(story)
                if len(found) >= CANDIDATES:
                    break
        # One cosine each against the centroids, then the full comparison for the closest few;
        # a story whose centroid shares next to nothing with the article is not compared.
        near = [
            (
                max(cosine(vec, s.centroid), cosine(names, s.centroid))
                if names
                else cosine(vec, s.centroid),
                s,
            )
            for s in found
        ]
        near = [(c, s) for c, s in near if c >= CENTROID_FLOOR]
        near.sort(key=lambda cs: (-cs[0], cs[1].first_published, cs[1].story_id))
        return [s for _, s in near[:COMPARED]]

    def pair_features(self, doc: Doc, story: Story, when: datetime) -> list[float]:
        """What the pair model sees of an article against a story (``FEATURES``, in order).

        Cosines alone cannot tell two events of one topic apart ("FDA authorizes boosters",
        "CDC recommends boosters"): the names and numbers each side mentions, rare shared
        terms and the time gap carry that, and the model weighs them on real stories.
        """
        members = story.members
        if not members:
            return [0.0] * len(self.features)
        vec, title, names, numbers, days = doc[:5]
        text = [cosine(vec, m.vec) for m in members]
        titles = [cosine(title, m.title) for m in members]
        idf = self._idf
        # Sums over sets are exact (fsum): a set's order changes with the hash seed, and a
        # replay must decide the same in every process.
        fsum = math.fsum
        total = fsum([idf(k) for k in names])
        cover = fsum([idf(k) for k in names if k in story.names]) / total if total else 0.0
        story_total = fsum([idf(k) for k in story.names])
        story_cover = (
            fsum([idf(k) for k in story.names if k in names]) / story_total if story_total else 0.0
        )
        vocabulary = story.vocabulary
        rare = sum(1 for k in vec if k in vocabulary and idf(k) >= RARE_IDF)
        n = len(members)
        row = [
            sum(text) / n,
            max(text),
            sum(titles) / n,
            max(titles),
            cosine(vec, story.centroid),
            cover,
            story_cover,
            sum(v for k, v in title.items() if k in vocabulary),
            story.gap(when).total_seconds() / 86400,
            1.0 if names else 0.0,
            max(cosine(title, m.vec) for m in members),
            max(cosine(vec, m.title) for m in members),
            min(rare, 5) / 5,
            min(len(numbers - story.numbers), 3) / 3,
            len(numbers & story.numbers) / len(numbers) if numbers else 0.0,
            1.0 if days & story.days else 0.0,
            1.0 if days and story.days and not days & story.days else 0.0,
        ]
        if self.embedder is not None:
            row += self._embedding_features(doc, members)
        return row

    @staticmethod
    def _embedding_features(doc: Doc, members: Sequence[Doc]) -> list[float]:
        """``EMBEDDING_FEATURES``: sentence-vector cosines to the members (unit vectors)."""
        sims = [float(doc.embedding @ m.embedding) for m in members]
        return [sum(sims) / len(sims), max(sims)]

    def similarity(self, doc: Doc, story: Story, when: datetime) -> float:
        """The pair model's probability that the article reports the story's event."""
        if not story.members:
            return 0.0
        return self.model.probability(self.pair_features(doc, story, when))

    @staticmethod
    def later_event(doc: Doc, story: Story, when: datetime) -> bool:
        """The article dates itself to another day than the story, a day or more after the
        story's first report: "voted on Wednesday" two days after "a deal on Monday" is the next
        event, however alike the words. Counted from the first report, not the newest one, so
        that late follow-ups of Wednesday's event cannot carry Thursday's into it. An opinion
        piece on Monday's deal names Monday and still joins."""
        return (
            bool(doc.days and story.days)
            and not doc.days & story.days
            and when - story.first_published >= NEXT_EVENT_GAP
        )

    def scored(self, doc: Doc, when: datetime) -> list[tuple[float, Story]]:
        """The candidate stories with their probabilities, most probable first."""
        return sorted(
            ((self.similarity(doc, s, when), s) for s in self.candidates(doc.vec, when)),
            key=lambda pair: (-pair[0], pair[1].first_published, pair[1].story_id),
        )

    def commentary_home(self, doc: Doc, when: datetime) -> tuple[float, Story] | None:
        """The story an opinion piece argues about, or None.

        Commentary comes days later and in its own words, so the time since the event does not
        count against it (within the window), and the candidates include the stories sharing
        the names and numbers of its whole text. What framing does not change decides: a
        story it quotes six words of joins it; else the most probable story does when the
        model, its words (``STORYLINE_COSINE``) or its names (``COMMENTARY_NAMES``) tie it
        there, unless the two give calendar days and none in common.
        """
        gap = self.features.index("gap_days")
        found = []
        for story in self.candidates(doc.vec, when, doc.entities):
            row = self.pair_features(doc, story, when)
            row[gap] = 0.0
            found.append((self.model.probability(row), story))
        found.sort(key=lambda p: (-p[0], p[1].first_published, p[1].story_id))
        quoting = [(p, s) for p, s in found if shares_quote(doc.runs, s.quotes)]
        if quoting:  # on train, 98% of candidate pairs sharing a quotation are one story
            return quoting[0]
        if not found:
            return None
        score, story = found[0]
        if score >= self.threshold:
            return score, story
        if doc.dates and story.dates and not doc.dates & story.dates:
            return None  # on train, 5% of candidate pairs giving other days are one story
        if (
            named_share(doc.entities, story.entities) >= COMMENTARY_NAMES
            or cosine(doc.vec, story.centroid) >= STORYLINE_COSINE
        ):
            return score, story
        return None

    # --- assignment ------------------------------------------------------------------------

    def resolve(self, story_id: str) -> str:
        """The live id of a story (merged ids point at the story they were folded into)."""
        while story_id in self.merged_into:
            story_id = self.merged_into[story_id]
        return story_id

    def restore(
        self,
        article: ClusterArticle,
        story_id: str,
        storyline: str | None = None,
        copy: bool = False,
    ) -> None:
        """Put back an article grouped in an earlier run, without deciding anything."""
        self._attach(article, self.doc(article, learn=not copy), story_id, storyline, copy)
        if self._dups is not None:
            self._dups.add(article.entry_id, article.text, article.published)

    def _attach(
        self,
        article: ClusterArticle,
        doc: Doc,
        story_id: str,
        storyline: str | None = None,
        copy: bool = False,
    ) -> Story:
        """Put an article in a story. A copy of an article the story has is no new evidence of
        what the story is about: it is counted, but not compared against."""
        story = self.stories.get(story_id)
        if story is None:
            story = Story(story_id, article.published, article.published, storyline or story_id)
            self.stories[story_id] = story
        if copy and story.members:
            story.entry_ids.append(article.entry_id)
            story.source_ids.add(article.source_id)
            story.first_published = min(story.first_published, article.published)
            story.last_published = max(story.last_published, article.published)
        else:
            # a member's every six-word run is needed only to compare it on arrival
            story.add(
                article.entry_id,
                article.source_id,
                doc._replace(runs=frozenset()),
                article.published,
            )
            self._post(story, doc.vec)
        story.news += article.kind != "opinion"
        self.story_of[article.entry_id] = story_id
        return story

    def add(self, article: ClusterArticle, new_story_id: str | None = None) -> Assignment:
        """Assign one article: join the best story, or open one with ``new_story_id``."""
        self._forget_old(article.published)
        copy_of = None
        if self._dups is not None:
            copy_of = self._dups.add(article.entry_id, article.text, article.published)
        # A copy's words are not counted again: repeated, they would look common.
        doc = self.doc(article, learn=copy_of is None or copy_of not in self.story_of)
        if copy_of is not None and copy_of in self.story_of:
            sid = self.resolve(self.story_of[copy_of])
            if sid in self.stories:
                story = self._attach(article, doc, sid, copy=True)
                return Assignment(sid, 1.0, False, copy_of=copy_of, storyline=story.storyline)
        scored = self.scored(doc, article.published)
        near = tuple((s.story_id, p) for p, s in scored)
        home = None
        if article.kind == "opinion" and (not scored or scored[0][0] < self.threshold):
            home = self.commentary_home(doc, article.published)
        if home is not None:
            # An opinion piece is no event of its own: it argues about one, often a day or two
            # later and in other words, and joins the one it discusses most (feeding the views).
            score, best = home
            story = self._attach(article, doc, best.story_id)
            return Assignment(story.story_id, score, False, storyline=story.storyline, near=near)
        if scored and self.later_event(doc, scored[0][1], article.published):
            # the next event: at most a storyline link to the story it follows
            scored = [
                (min(p, self.threshold / 2), s) if s is scored[0][1] else (p, s) for p, s in scored
            ]
            scored.sort(key=lambda pair: (-pair[0], pair[1].first_published, pair[1].story_id))
        if not scored or scored[0][0] < self.threshold:
            sid = new_story_id or str(article.entry_id)
            storyline = None
            if scored and cosine(doc.vec, scored[0][1].centroid) >= STORYLINE_COSINE:
                storyline = scored[0][1].storyline  # the next event of a developing story
            story = self._attach(article, doc, sid, storyline)
            score = scored[0][0] if scored else 0.0
            return Assignment(sid, score, True, storyline=story.storyline, near=near)
        best_score, best = scored[0]
        # Another story as close is the same event opened twice, unless the article dates
        # itself after it: then that is an earlier event of the storyline, kept apart.
        others = [
            s
            for score, s in scored[1:]
            if score >= self.threshold and not self.later_event(doc, s, article.published)
        ]
        story = self._attach(article, doc, best.story_id)
        merged = []
        for other in others:
            if cosine(story.centroid, other.centroid) >= self.merge_threshold:
                kept = self.merge(story, other)
                merged.append(other.story_id if kept is story else story.story_id)
                story = kept
        return Assignment(
            story.story_id,
            best_score,
            False,
            merged=tuple(merged),
            storyline=story.storyline,
            near=near,
        )

    def merge(self, a: Story, b: Story) -> Story:
        """Fold the newer of two stories into the older; the older id lives on.

        Only the same event opened twice merges: the older story's storyline is kept, and any
        story whose storyline began with the newer one follows it there.
        """
        older, newer = sorted((a, b), key=lambda s: (s.first_published, s.story_id))
        for k, v in newer.total.items():
            older.total[k] = older.total.get(k, 0.0) + v
        older.centroid = _normalised(older.total, CENTROID_TERMS)
        older.members = (older.members + newer.members)[-MEMBERS_KEPT:]
        older.vocabulary = set().union(*(m.vec for m in older.members))
        older.names |= newer.names
        older.numbers |= newer.numbers
        older.days |= newer.days
        older.entities |= newer.entities
        older.quotes |= newer.quotes
        older.dates |= newer.dates
        older.news += newer.news
        older.entry_ids += newer.entry_ids
        older.source_ids |= newer.source_ids
        older.first_published = min(older.first_published, newer.first_published)
        older.last_published = max(older.last_published, newer.last_published)
        for entry_id in newer.entry_ids:
            self.story_of[entry_id] = older.story_id
        self.merged_into[newer.story_id] = older.story_id
        del self.stories[newer.story_id]
        for story in self.stories.values():
            if story.storyline in (newer.story_id, newer.storyline):
                story.storyline = older.storyline
        self._post(older, older.centroid)
        return older

    def assignments(self) -> dict[int, str]:
        """Every article's live story id."""
        return {entry: self.resolve(sid) for entry, sid in self.story_of.items()}

    def storylines(self) -> dict[str, str]:
        """Every live story's storyline id."""
        return {sid: story.storyline for sid, story in self.stories.items()}


def group(articles: Iterable[ClusterArticle], **options: float) -> dict[int, str]:
    """Stream articles in published order through a fresh index: entry id -> story id."""
    index = StoryIndex(**options)  # type: ignore[arg-type]
    for art in sorted(articles, key=lambda a: (a.published, a.entry_id)):
        index.add(art)
    return index.assignments()
