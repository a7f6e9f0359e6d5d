"""The rewrite stage: a neutral, attributed story with Different Perspectives.

:mod:`.extractive` is the default (deterministic, no model, no network): every sentence it
outputs is a source's sentence with its provenance. One module per decision:

- ``lexicon``: the word lists (loaded words, openers, datelines), as data;
- ``sentences``: which sentences may be quoted, and what a sentence leans on;
- ``claims``: the sentences of different outlets that state one claim;
- ``ranking``: how central a sentence is (LexRank and more), MMR, a claim's plainest wording;
- ``attribution``: what naming an outlet before a sentence needs (is its first word a name?);
- ``coverage``: who covered the story, who was first;
- ``context``: ``StoryContext``, all of the above read once per story, frozen;
- one per section, each a function of the context: ``headline``, ``summary``, ``body``,
  ``views`` (Different Perspectives), ``common_ground``;
- ``extractive``: ``rewrite_story``, which puts the sections together;
- ``model`` and ``guard``: the optional model rewrite, and what it must not invent.
"""

from aggregator.rewrite.coverage import coverage_of
from aggregator.rewrite.extractive import EXTRACTIVE_VERSION, rewrite_story
from aggregator.rewrite.headline import choose_headline
from aggregator.rewrite.model import PROMPT_VERSION
from aggregator.rewrite.sentences import clean_title
from aggregator.rewrite.summary import SUMMARY_WORDS

__all__ = [
    "EXTRACTIVE_VERSION",
    "PROMPT_VERSION",
    "SUMMARY_WORDS",
    "choose_headline",
    "clean_title",
    "coverage_of",
    "rewrite_story",
]
