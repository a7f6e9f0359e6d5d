"""Grouping: which story does a new article join?

Online clustering, one article at a time, in the order articles arrive:

- an article becomes a sparse TF-IDF vector (IDF learnt from the articles seen so far) in which
  the title and the lead weigh most, and names, numbers and quoted phrases weigh extra: they are
  what tells one story from another on the same topic;
- candidate stories come from an inverted index of each story's most telling terms, walked
  newest first and only within the time window, never from all stories;
- the article joins the best candidate whose similarity (mean cosine to the story's members,
  text and title, damped by the time gap) passes the threshold, else opens a story;
- when an article is close to two stories that are close to each other, they merge into the
  older story id, which never changes; the newer id is retired, never reused.

Opinion pieces are grouped like news: one that clearly discusses a story scores as high as
the news does (measured: a higher bar for opinion only lost recall on the dev stories).

Time is the articles' own published time, never the wall clock, so a replay of old news groups
exactly as the live stream did. Near-duplicate copies (syndicated wire text) join the story of
their original and are reported as copies of it.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from operator import itemgetter

from aggregator.identity import NearDuplicates
from aggregator.models import ClusterArticle
from aggregator.text import STOPWORDS, sentence_pieces, stem, words

WINDOW = timedelta(days=3)
HISTORY = 3 * WINDOW  # how far back the index must see to decide like the live stream did
THRESHOLD = 0.10  # tuned on bench/cluster_quality.py: precision first
MERGE_THRESHOLD = 0.45
LEAD_WORDS = 50
TEXT_CHARS = 1500  # past its first ~250 words an article adds detail, not identity
STEM_CHARS = 8  # a crude stemmer: "vaccinated", "vaccination" and "vaccinations" meet
TITLE_WEIGHT, LEAD_WEIGHT, BODY_WEIGHT = 3.0, 1.5, 1.0
NAME_BOOST, NUMBER_BOOST, QUOTE_WEIGHT = 2.0, 1.5, 1.5
VECTOR_TERMS = 60  # an article keeps its heaviest terms only: the rest is noise
INDEX_TERMS = 12  # of which these find candidate stories through the index
CENTROID_TERMS = 150
MEMBERS_KEPT = 8  # members compared one by one (the newest)
CANDIDATES = 12  # stories the index proposes
COMPARED = 4  # of which the closest centroids are compared member by member
POSTING_SCAN = 300
SWEEP_EVERY = timedelta(days=1)
IDF_PRIOR = 20  # pseudo-documents: early in a stream no word is rare yet
TEXT_SHARE = 0.8  # of the similarity; the rest is title against title
DAY_DECAY = 0.3  # similarity lost per day between the article and the story
_STORY_NS = uuid.UUID("6f1d2c1e-9f7a-4c1b-8b0e-2b1f6a2d9c41")
_QUOTE_RE = re.compile(r"[“\"]([^”\"]{10,240})[”\"]")

Vector = dict[str, float]
Doc = tuple[Vector, Vector]  # an article's whole vector and its title's


def story_id_for(source_id: str, entry_key: str) -> str:
    """A story's id, fixed forever by the article that opened it."""
    return str(uuid.uuid5(_STORY_NS, f"{source_id}\n{entry_key}"))


@lru_cache(maxsize=500_000)
def _key(word: str) -> str | None:
    low = word.lower()
    if low in STOPWORDS or len(low) < 2:
        return None
    return stem(low)[:STEM_CHARS]


@lru_cache(maxsize=500_000)
def _weighed(word: str) -> tuple[str | None, float]:
    """A mid-sentence word's term key and boost: numbers and names (capitalised) weigh up."""
    if word[0].isdigit():
        return _key(word), NUMBER_BOOST
    if word[0].isupper():
        return _key(word), NAME_BOOST
    return _key(word), 1.0


def _count(counts: Vector, found: Iterable[str], weight: float, names: bool) -> None:
    """Add words into ``counts`` in text order (so ties among weights favour earlier words)."""
    get = counts.get
    for word in found:
        key, boost = _weighed(word)
        if key:
            if not names and boost == NAME_BOOST:
                boost = 1.0
            counts[key] = get(key, 0.0) + weight * boost


def features(title: str, text: str) -> Vector:
    """Raw weighted term counts of an article: title and lead first, names and numbers up."""
    counts: Vector = {}
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
                _count(counts, chunk[start:], weight, names=True)
        seen += len(piece)
    get = counts.get
    for quote in _QUOTE_RE.findall(text):
        keys = [k for k in (_key(w) for w in words(quote)) if k]
        for a, b in zip(keys, keys[1:], strict=False):
            pair = f"{a}_{b}"
            counts[pair] = get(pair, 0.0) + QUOTE_WEIGHT
    return counts


def cosine(a: Vector, b: Vector) -> float:
    """Cosine of two L2-normalised sparse vectors."""
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def _normalised(vec: Vector, keep: int) -> Vector:
    # A stable sort: among equal weights the words met first (title, lead) stay.
    top = sorted(vec.items(), key=itemgetter(1), reverse=True)[:keep]
    norm = math.sqrt(sum(v * v for _, v in top)) or 1.0
    return {k: v / norm for k, v in top}


@dataclass
class Story:
    """A story as the index sees it: its centroid, newest members and time span."""

    story_id: str
    first_published: datetime
    last_published: datetime
    total: Vector = field(default_factory=dict)  # sum of member vectors
    centroid: Vector = field(default_factory=dict)  # normalised, pruned
    members: list[tuple[Vector, Vector]] = field(default_factory=list)  # (text, title)
    entry_ids: list[int] = field(default_factory=list)
    source_ids: set[str] = field(default_factory=set)

    def add(self, entry_id: int, source_id: str, doc: Doc, published: datetime) -> None:
        for k, v in doc[0].items():
            self.total[k] = self.total.get(k, 0.0) + v
        self.centroid = _normalised(self.total, CENTROID_TERMS)
        self.members = [*self.members[-(MEMBERS_KEPT - 1) :], doc]
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
    score: float  # similarity to the story it joined; 0.0 when it opened one
    opened: bool
    copy_of: int | None = None  # entry id of the original when this is a near-duplicate
    merged: tuple[str, ...] = ()  # newer story ids folded into ``story_id`` by this article


class StoryIndex:
    """The online clusterer: feed it articles in arrival order, it keeps stories and ids."""

    def __init__(
        self,
        threshold: float = THRESHOLD,
        window: timedelta = WINDOW,
        merge_threshold: float = MERGE_THRESHOLD,
        near_duplicates: bool = True,
    ) -> None:
        self.threshold = threshold
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
        return self.doc(article, learn)[0]

    def doc(self, article: ClusterArticle, learn: bool = True) -> Doc:
        """The article's TF-IDF vectors: the whole (title and text) and the title alone."""
        raw = features(article.title, article.text)
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
        return _normalised(weights, VECTOR_TERMS), _normalised(title, VECTOR_TERMS)

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

    def candidates(self, vec: Vector, when: datetime) -> list[Story]:
        """Stories sharing the article's telling terms, near it in time: newest first."""
        earliest = when - self.window
        votes: dict[str, float] = {}
        for key in list(vec)[:INDEX_TERMS]:
            posting = self._postings.get(key)
            if not posting:
                continue
            weight = vec[key]
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
        # One cosine each against the centroids, then the full comparison for the closest few.
        found.sort(key=lambda s: (-cosine(vec, s.centroid), s.first_published, s.story_id))
        return found[:COMPARED]

    def similarity(self, doc: Doc, story: Story, when: datetime) -> float:
        """Mean cosine to the story's (newest) members, damped by the time gap.

        Average link: an article must resemble the story as a whole, not one stray member,
        which keeps chains of loosely related articles from growing into one story. Titles
        count once more on their own: they name the event in the fewest words.
        """
        if not story.members:
            return 0.0
        vec, title = doc
        text_score = sum(cosine(vec, m) for m, _ in story.members)
        title_score = sum(cosine(title, t) for _, t in story.members)
        score = (TEXT_SHARE * text_score + (1 - TEXT_SHARE) * title_score) / len(story.members)
        days = story.gap(when).total_seconds() / 86400
        return score * max(0.0, 1.0 - DAY_DECAY * days)

    # --- assignment ------------------------------------------------------------------------

    def resolve(self, story_id: str) -> str:
        """The live id of a story (merged ids point at the story they were folded into)."""
        while story_id in self.merged_into:
            story_id = self.merged_into[story_id]
        return story_id

    def restore(self, article: ClusterArticle, story_id: str) -> None:
        """Put back an article grouped in an earlier run, without deciding anything."""
        self._attach(article, self.doc(article), story_id)
        if self._dups is not None:
            self._dups.add(article.entry_id, article.text, article.published)

    def _attach(self, article: ClusterArticle, doc: Doc, story_id: str) -> Story:
        story = self.stories.get(story_id)
        if story is None:
            story = Story(story_id, article.published, article.published)
            self.stories[story_id] = story
        story.add(article.entry_id, article.source_id, doc, article.published)
        self.story_of[article.entry_id] = story_id
        self._post(story, doc[0])
        return story

    def add(self, article: ClusterArticle, new_story_id: str | None = None) -> Assignment:
        """Assign one article: join the best story, or open one with ``new_story_id``."""
        self._forget_old(article.published)
        doc = self.doc(article)
        copy_of = None
        if self._dups is not None:
            copy_of = self._dups.add(article.entry_id, article.text, article.published)
        if copy_of is not None and copy_of in self.story_of:
            sid = self.resolve(self.story_of[copy_of])
            if sid in self.stories:
                self._attach(article, doc, sid)
                return Assignment(sid, 1.0, False, copy_of=copy_of)
        scored = sorted(
            (
                (self.similarity(doc, s, article.published), s)
                for s in self.candidates(doc[0], article.published)
            ),
            key=lambda pair: (-pair[0], pair[1].first_published, pair[1].story_id),
        )
        if not scored or scored[0][0] < self.threshold:
            sid = new_story_id or str(article.entry_id)
            self._attach(article, doc, sid)
            return Assignment(sid, scored[0][0] if scored else 0.0, True)
        best_score, best = scored[0]
        others = [s for score, s in scored[1:] if score >= self.threshold]
        story = self._attach(article, doc, best.story_id)
        merged = []
        for other in others:
            if cosine(story.centroid, other.centroid) >= self.merge_threshold:
                kept = self.merge(story, other)
                merged.append(other.story_id if kept is story else story.story_id)
                story = kept
        return Assignment(story.story_id, best_score, False, merged=tuple(merged))

    def merge(self, a: Story, b: Story) -> Story:
        """Fold the newer of two stories into the older; the older id lives on."""
        older, newer = sorted((a, b), key=lambda s: (s.first_published, s.story_id))
        for k, v in newer.total.items():
            older.total[k] = older.total.get(k, 0.0) + v
        older.centroid = _normalised(older.total, CENTROID_TERMS)
        older.members = (older.members + newer.members)[-MEMBERS_KEPT:]
        older.entry_ids += newer.entry_ids
        older.source_ids |= newer.source_ids
        older.first_published = min(older.first_published, newer.first_published)
        older.last_published = max(older.last_published, newer.last_published)
        for entry_id in newer.entry_ids:
            self.story_of[entry_id] = older.story_id
        self.merged_into[newer.story_id] = older.story_id
        del self.stories[newer.story_id]
        self._post(older, older.centroid)
        return older

    def assignments(self) -> dict[int, str]:
        """Every article's live story id."""
        return {entry: self.resolve(sid) for entry, sid in self.story_of.items()}


def group(articles: Iterable[ClusterArticle], **options: float) -> dict[int, str]:
    """Stream articles in published order through a fresh index: entry id -> story id."""
    index = StoryIndex(**options)  # type: ignore[arg-type]
    for art in sorted(articles, key=lambda a: (a.published, a.entry_id)):
        index.add(art)
    return index.assignments()
