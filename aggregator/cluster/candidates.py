"""Grouping: which stories an article is compared with at all (candidate search).

Comparing every article with every story would grow with the stream; instead candidate
stories come from an inverted index of each story's most telling terms (``INDEX_TERMS``),
walked newest first and only within the time window, never from all stories. Of the stories
found, only the closest centroids (``COMPARED``) go on to the pair model, and a story whose
centroid shares next to nothing with the article (``CENTROID_FLOOR``) is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from aggregator.cluster.story import Story
from aggregator.cluster.vectors import Vector
from aggregator.text import cosine

INDEX_TERMS = 16  # of which these find candidate stories through the index
QUERY_TERMS = 24  # and these of an article look them up (measured on train: fewer missed stories)
CANDIDATES = 16  # stories the index proposes
COMPARED = 8  # of which the closest centroids are compared member by member
POSTING_SCAN = 300
# Below this cosine to a story's centroid, an article is not compared with the story at all
# (measured on train: 31% of the candidates, 0.3% of the right ones).
CENTROID_FLOOR = 0.05


class Postings:
    """Term -> the stories posted under it, oldest post first (story id -> last published)."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[str, datetime]] = {}

    def post(self, story: Story, vec: Vector) -> None:
        """File a story under the heaviest terms of ``vec`` (newest post last)."""
        for key in list(vec)[:INDEX_TERMS]:  # vec is sorted heaviest first
            posting = self._postings.setdefault(key, {})
            posting.pop(story.story_id, None)
            posting[story.story_id] = story.last_published

    def forget(self, cutoff: datetime) -> None:
        """Drop the posts of stories last published before ``cutoff``."""
        for key in list(self._postings):
            posting = self._postings[key]
            while posting:
                first = next(iter(posting))
                if posting[first] >= cutoff:
                    break
                del posting[first]
            if not posting:
                del self._postings[key]

    def candidates(
        self,
        stories: Mapping[str, Story],
        window: timedelta,
        vec: Vector,
        when: datetime,
        names: Vector | None = None,
    ) -> list[Story]:
        """Stories sharing the article's telling terms, near it in time: newest first. With
        ``names`` (its names and numbers over the whole text), stories sharing those too."""
        earliest = when - window
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
                if scanned >= POSTING_SCAN or posting[sid] < earliest - window:
                    break
                votes[sid] = votes.get(sid, 0.0) + weight
        return closest(self._voted(stories, window, votes, when, CANDIDATES), vec, names)

    def voted(
        self,
        stories: Mapping[str, Story],
        window: timedelta,
        vec: Vector,
        when: datetime,
        names: Vector,
        limit: int,
    ) -> list[Story]:
        """Up to ``limit`` stories sharing the article's telling terms or its names, near it in
        time, most shared first, with no centroid floor: the wider net of the side search."""
        earliest = when - window
        votes: dict[str, float] = {}
        for key in [*list(vec)[:QUERY_TERMS], *list(names)[:QUERY_TERMS]]:
            posting = self._postings.get(key)
            if not posting:
                continue
            weight = vec.get(key) or names.get(key, 0.0)
            for scanned, sid in enumerate(reversed(posting)):
                if scanned >= POSTING_SCAN or posting[sid] < earliest - window:
                    break
                votes[sid] = votes.get(sid, 0.0) + weight
        return self._voted(stories, window, votes, when, limit)

    @staticmethod
    def _voted(
        stories: Mapping[str, Story],
        window: timedelta,
        votes: Mapping[str, float],
        when: datetime,
        limit: int,
    ) -> list[Story]:
        """The ``limit`` stories with the most votes that are still within the window."""
        found = []
        for sid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
            story = stories.get(sid)
            if story is not None and story.gap(when) <= window:
                found.append(story)
                if len(found) >= limit:
                    break
        return found


def closest(found: list[Story], vec: Vector, names: Vector | None) -> list[Story]:
    """One cosine each against the centroids, then the full comparison for the closest few;
    a story whose centroid shares next to nothing with the article is not compared."""
    near = [
        (
            max(cosine(vec, s.centroid, unit=True), cosine(names, s.centroid, unit=True))
            if names
            else cosine(vec, s.centroid, unit=True),
            s,
        )
        for s in found
    ]
    near = [(c, s) for c, s in near if c >= CENTROID_FLOOR]
    near.sort(key=lambda cs: (-cs[0], cs[1].first_published, cs[1].story_id))
    return [s for _, s in near[:COMPARED]]
