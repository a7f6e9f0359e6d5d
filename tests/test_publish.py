"""The published Atom: schema-valid, stable ids, status notice, never half-written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from aggregator.config import Settings
from aggregator.models import PublishedStory, RelatedLink, SourceStatus
from aggregator.publish import (
    atom_id,
    build_atom,
    render_story_html,
    status_notice,
    write_atomic,
)
from aggregator.rewrite import coverage_of, rewrite_story
from tests.conftest import assert_valid_atom
from tests.stories import story_articles

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def bridge_story() -> PublishedStory:
    articles = story_articles("bridge")
    rewrite = rewrite_story(articles)
    coverage = coverage_of(articles)
    return PublishedStory(
        id="c0ffee00-0000-5000-8000-000000000001",
        headline=rewrite.headline,
        summary=rewrite.summary,
        content_html=render_story_html(rewrite, coverage),
        published=coverage.first_published,
        updated=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        leans=coverage.leans,
        related=tuple(RelatedLink(a.link or "", a.source_name, a.lean) for a in articles),
    )


def test_feed_is_schema_valid_with_related_links_and_sections(atom_schema) -> None:
    down = SourceStatus("Fox News", datetime(2026, 11, 28, 10, 5, tzinfo=UTC), "HTTP 500")
    data = build_atom([bridge_story()], Settings(), [down], now=NOW)
    assert_valid_atom(atom_schema, data)
    feed = feedparser.parse(data)
    assert not feed.bozo
    front, story = feed.entries
    assert front.title.startswith("Latest Headlines")
    assert "Port Ellery closes Harbor Bridge" in front.content[0].value
    assert "our Fox News feed has been down since 2026-11-28 10:05 UTC" in feed.feed.subtitle
    assert story.id == atom_id("c0ffee00-0000-5000-8000-000000000001")
    related = {link.title: link.href for link in story.links if link.rel == "related"}
    assert related["Beta Daily"] == "http://beta.example/bridge"
    assert len(related) == 4
    html = story.content[0].value
    for section in ("Progressive View", "Conservative View", "Common Ground", "Sources"):
        assert section in html
    assert {t.term for t in story.tags} == {"left", "center", "lean-right", "right"}
    assert story.summary.startswith("Port Ellery will close the Harbor Bridge")


def test_same_input_gives_the_same_bytes() -> None:
    one = build_atom([bridge_story()], Settings(), now=NOW)
    assert one == build_atom([bridge_story()], Settings(), now=datetime(2027, 1, 1, tzinfo=UTC))


def test_status_notice_is_gone_when_all_recover() -> None:
    assert status_notice([]) == ""
    feed = feedparser.parse(build_atom([bridge_story()], Settings(), [], now=NOW))
    assert "Status" not in feed.feed.subtitle
    assert "down" not in feed.entries[0].title


def test_untrusted_text_is_escaped() -> None:
    articles = story_articles("bridge")
    evil = articles[1].__class__(
        **{**articles[1].__dict__, "source_name": "<script>alert(1)</script>"}
    )
    html = render_story_html(rewrite_story([articles[0], evil]), coverage_of([articles[0], evil]))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_write_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "feeds" / "balanced.atom"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):  # the write fails half-way: nothing replaces the old file
        write_atomic(target, None)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["balanced.atom"]
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_a_blindspot_story_carries_the_blindspot_category(atom_schema) -> None:
    story = bridge_story()
    data = build_atom([story, replace(story, id="one-sided", blindspot=True)], Settings(), now=NOW)
    assert_valid_atom(atom_schema, data)
    _front, both, one_sided = feedparser.parse(data).entries
    assert "blindspot" not in {t.term for t in both.tags}
    assert "blindspot" in {t.term for t in one_sided.tags}
