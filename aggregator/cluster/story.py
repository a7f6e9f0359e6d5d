"""Grouping: what the index keeps of a story, and what it reports of an article's place.

A story is kept as the sum of its members' vectors (its centroid: the ``CENTROID_TERMS``
heaviest terms), its newest ``MEMBERS_KEPT`` members (compared one by one: a story drifts as it
develops, and its newest reports say what it is now) and the union of what every member names,
quotes and dates, so a long story costs the same to compare as a short one. A story's id is
fixed forever by the article that opened it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.cluster.vectors import Doc, Vector, normalised
from aggregator.vocab import Side

CENTROID_TERMS = 150
MEMBERS_KEPT = 8  # members compared one by one (the newest)
_STORY_NS = uuid.UUID("6f1d2c1e-9f7a-4c1b-8b0e-2b1f6a2d9c41")


def story_id_for(source_id: str, entry_key: str) -> str:
    """A story's id, fixed forever by the article that opened it."""
    return str(uuid.uuid5(_STORY_NS, f"{source_id}\n{entry_key}"))


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
    headlines: set[str] = field(default_factory=set)  # and of their titles
    numbers: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)  # every member's names, whole texts
    quotes: set[int] = field(default_factory=set)  # every member's quoted six-word runs
    dates: set[str] = field(default_factory=set)
    news: int = 0  # members that are news, not opinion
    entry_ids: list[int] = field(default_factory=list)
    source_ids: set[str] = field(default_factory=set)
    sides: set[Side | None] = field(default_factory=set)  # its outlets' sides (None: unknown)

    def add(
        self,
        entry_id: int,
        source_id: str,
        doc: Doc,
        published: datetime,
        side: Side | None = None,
    ) -> None:
        for k, v in doc.vec.items():
            self.total[k] = self.total.get(k, 0.0) + v
        self.centroid = normalised(self.total, CENTROID_TERMS)
        self.members = [*self.members[-(MEMBERS_KEPT - 1) :], doc]
        self.vocabulary = set().union(*(m.vec for m in self.members))
        self.headlines = set().union(*(m.title for m in self.members))
        self.names |= doc.names
        self.numbers |= doc.numbers
        self.days |= doc.days
        self.entities.update(doc.entities)
        self.quotes |= doc.quotes
        self.dates |= doc.dates
        self.entry_ids.append(entry_id)
        self.source_ids.add(source_id)
        self.sides.add(side)
        self.first_published = min(self.first_published, published)
        self.last_published = max(self.last_published, published)

    def count(
        self, entry_id: int, source_id: str, published: datetime, side: Side | None = None
    ) -> None:
        """Count an article in without comparing against it (a copy of a member)."""
        self.entry_ids.append(entry_id)
        self.source_ids.add(source_id)
        self.sides.add(side)
        self.first_published = min(self.first_published, published)
        self.last_published = max(self.last_published, published)

    def absorb(self, newer: Story) -> None:
        """Take in every member of ``newer`` (the same event opened twice)."""
        for k, v in newer.total.items():
            self.total[k] = self.total.get(k, 0.0) + v
        self.centroid = normalised(self.total, CENTROID_TERMS)
        self.members = (self.members + newer.members)[-MEMBERS_KEPT:]
        self.vocabulary = set().union(*(m.vec for m in self.members))
        self.headlines = set().union(*(m.title for m in self.members))
        self.names |= newer.names
        self.numbers |= newer.numbers
        self.days |= newer.days
        self.entities |= newer.entities
        self.quotes |= newer.quotes
        self.dates |= newer.dates
        self.news += newer.news
        self.entry_ids += newer.entry_ids
        self.source_ids |= newer.source_ids
        self.sides |= newer.sides
        self.first_published = min(self.first_published, newer.first_published)
        self.last_published = max(self.last_published, newer.last_published)

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
    # Joined below the join threshold, to a story none of whose outlets is of its side: the
    # looser search's side-completion join (``index.SIDE_JOIN``).
    completed: bool = False
