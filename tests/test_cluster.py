"""Grouping: articles on one story come together, other stories stay apart, ids never move."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from aggregator import cluster
from aggregator.models import ClusterArticle, ClusterStory
from tests.stories import cluster_articles


def group(articles: list[ClusterArticle]) -> dict[int, str]:
    """Stream articles in time order through the real grouping code; entry id -> story id."""
    stories: list[ClusterStory] = []
    assigned: dict[int, str] = {}
    for art in sorted(articles, key=lambda a: a.published):
        story, _ = cluster.best_story(art, stories)
        if story is None:
            story = cluster.new_story(cluster.story_id_for(art.source_id, str(art.entry_id)), art)
            stories.append(story)
        else:
            cluster.join(story, art)
        assigned[art.entry_id] = story.story_id
    return assigned


def test_one_story_across_outlets_comes_together() -> None:
    assigned = group(cluster_articles("bridge"))
    assert len(set(assigned.values())) == 1


def test_different_stories_stay_apart() -> None:
    bridge, rates = cluster_articles("bridge"), cluster_articles("rates")
    assigned = group(bridge + rates)
    assert len({assigned[a.entry_id] for a in bridge}) == 1
    assert len({assigned[a.entry_id] for a in rates}) == 1
    assert assigned[bridge[0].entry_id] != assigned[rates[0].entry_id]


def test_far_apart_in_time_is_a_new_story() -> None:
    first, *_ = cluster_articles("bridge")
    story = cluster.new_story("s1", first)
    later = dataclasses.replace(
        first, entry_id=99, published=first.published + cluster.WINDOW + timedelta(days=1)
    )
    assert cluster.best_story(later, [story])[0] is None
    assert (
        cluster.best_story(dataclasses.replace(later, published=first.published), [story])[0]
        is story
    )


def test_story_id_is_fixed_by_the_opening_article() -> None:
    a = cluster.story_id_for("alpha", "guid-1")
    assert a == cluster.story_id_for("alpha", "guid-1")
    assert a != cluster.story_id_for("beta", "guid-1")
