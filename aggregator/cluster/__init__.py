"""Grouping: which story does a new article join?

Online clustering, one article at a time, in the order articles arrive. Each module answers one
question, in the order an article meets them:

- ``vectors``: what of an article is compared (TF-IDF vectors of the whole and the title, its
  names, numbers and weekdays, and what framing does not change);
- ``candidates``: which stories it is compared with at all (an inverted index of each story's
  most telling terms, within the time window, never all stories);
- ``scoring``: how alike it and each candidate are (the pair model's features, and the one
  rule kept outside the model: a later day is the next event);
- ``index``: the decisions (``StoryIndex``): join, open a story (in a storyline or not), merge
  two stories that are one event, find an opinion piece's story;
- ``story``: what the index keeps of a story, story ids, and the ``Assignment`` it reports.

The pipeline's grouping stage holds one ``StoryIndex``; the benches and tests use the names
below.
"""

from __future__ import annotations

from aggregator.cluster.index import HISTORY, SWEEP_EVERY, WINDOW, StoryIndex, group
from aggregator.cluster.scoring import EMBED_MODEL, EMBEDDING_FEATURES, FEATURES
from aggregator.cluster.story import Assignment, Story, story_id_for
from aggregator.cluster.vectors import LEARN_BEFORE, Doc, Vector

__all__ = [
    "EMBEDDING_FEATURES",
    "EMBED_MODEL",
    "FEATURES",
    "HISTORY",
    "LEARN_BEFORE",
    "SWEEP_EVERY",
    "WINDOW",
    "Assignment",
    "Doc",
    "Story",
    "StoryIndex",
    "Vector",
    "group",
    "story_id_for",
]
