"""Hand-written story fixtures (tests/fixtures/stories/*.json) as the plain data stages take."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from aggregator.models import ClusterArticle, StoryArticle

STORIES = Path(__file__).parent / "fixtures" / "stories"


def _raw(name: str) -> list[dict]:
    return json.loads((STORIES / f"{name}.json").read_text(encoding="utf-8"))


def story_articles(name: str) -> list[StoryArticle]:
    return [
        StoryArticle(
            **{k: v for k, v in d.items() if k not in ("gold", "published")},
            published=datetime.fromisoformat(d["published"]),
        )
        for d in _raw(name)
    ]


def gold_stories(name: str) -> dict[int, str]:
    """Entry id -> the story it truly belongs to, for fixtures that say (``gold``)."""
    return {d["entry_id"]: d["gold"] for d in _raw(name)}


def cluster_articles(name: str) -> list[ClusterArticle]:
    return [
        ClusterArticle(
            entry_id=a.entry_id,
            source_id=a.source_id,
            title=a.title,
            text=a.text,
            published=a.published,
            kind=a.kind,
        )
        for a in story_articles(name)
    ]
