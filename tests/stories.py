"""Hand-written story fixtures (tests/fixtures/stories/*.json) as the plain data stages take."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from aggregator.models import ClusterArticle, StoryArticle

STORIES = Path(__file__).parent / "fixtures" / "stories"


def story_articles(name: str) -> list[StoryArticle]:
    raw = json.loads((STORIES / f"{name}.json").read_text(encoding="utf-8"))
    return [StoryArticle(**{**d, "published": datetime.fromisoformat(d["published"])}) for d in raw]


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
