"""The rewrite stage: a neutral, attributed story with Different Perspectives.

:mod:`.extractive` is the default (deterministic, no model, no network): every sentence it
outputs is a source's sentence with its provenance.
"""

from aggregator.rewrite.extractive import (
    EXTRACTIVE_VERSION,
    SUMMARY_WORDS,
    attribute,
    choose_headline,
    clean_title,
    coverage_of,
    rewrite_story,
)
from aggregator.rewrite.model import PROMPT_VERSION

__all__ = [
    "EXTRACTIVE_VERSION",
    "PROMPT_VERSION",
    "SUMMARY_WORDS",
    "attribute",
    "choose_headline",
    "clean_title",
    "coverage_of",
    "rewrite_story",
]
