"""The extractive rewrite: every sentence from a source, attributed to the right outlet."""

from __future__ import annotations

from dataclasses import replace

from aggregator.config import LEFT_LEANS, RIGHT_LEANS
from aggregator.rewrite import clean_title, coverage_of, rewrite_story
from tests.stories import story_articles


def test_every_sentence_is_verbatim_from_its_source() -> None:
    articles = story_articles("bridge")
    by_id = {a.entry_id: a for a in articles}
    result = rewrite_story(articles)
    sections = result.body + result.progressive + result.conservative + result.common_ground
    assert sections
    for sentence in sections:
        assert sentence.text in by_id[sentence.entry_id].text
        assert sentence.source_name == by_id[sentence.entry_id].source_name
    for sentence in result.summary.split(". "):
        assert any(sentence.rstrip(".") in a.text for a in articles)


def test_body_attributes_each_sentence_to_its_outlet() -> None:
    result = rewrite_story(story_articles("bridge"))
    assert 4 <= len(result.body) <= 8
    for sentence in result.body:
        assert sentence.source_name in sentence.attributed
        assert sentence.attributed.startswith(("According to ", "As "))
        assert sentence.attributed.rstrip(".").endswith(sentence.text[1:].rstrip("."))
    assert {s.source_id for s in result.body} >= {"alpha", "beta", "gamma"}


def test_perspectives_draw_only_from_their_side() -> None:
    articles = story_articles("bridge")
    lean = {a.entry_id: a.lean for a in articles}
    result = rewrite_story(articles)
    assert result.progressive and all(lean[s.entry_id] in LEFT_LEANS for s in result.progressive)
    assert result.conservative and all(lean[s.entry_id] in RIGHT_LEANS for s in result.conservative)
    assert any(s.source_id == "delta" for s in result.conservative), "opinion preferred"
    sides = {lean[s.entry_id] in LEFT_LEANS for s in result.common_ground}
    assert sides == {True, False}, "common ground pairs both sides"


def test_a_missing_side_says_so() -> None:
    right_only = [a for a in story_articles("bridge") if a.lean in RIGHT_LEANS]
    result = rewrite_story(right_only)
    assert result.progressive == ()
    assert result.progressive_missing == "No left-leaning outlet has covered this story yet."
    assert result.common_ground == () and result.common_ground_missing


def test_headline_is_neutral_and_first_reporter_named() -> None:
    result = rewrite_story(story_articles("bridge"))
    assert result.headline == "Port Ellery closes Harbor Bridge for $412 million repair"
    assert result.lede.startswith("Alpha Times first reported this story on November 20.")
    assert clean_title("Rates hold steady as inflation cools | Fox News") == (
        "Rates hold steady as inflation cools"
    )


def test_coverage_counts_each_side() -> None:
    coverage = coverage_of(story_articles("bridge"))
    assert (coverage.count("left"), coverage.count("center"), coverage.count("right")) == (1, 1, 2)
    assert coverage.first_source == "Alpha Times"


def test_first_reporter_ties_break_by_fetch_time_and_copies_count_for_their_side() -> None:
    alpha, beta, gamma, delta = story_articles("bridge")
    same_time = alpha.published
    early = alpha.published.replace(hour=1)
    tied = [
        replace(alpha, fetched=early.replace(hour=3)),
        replace(gamma, published=same_time, fetched=early.replace(hour=2)),
    ]
    assert coverage_of(tied).first_source == "Gamma Post"  # fetched first
    # Only the right covers it: a blindspot, until a left outlet carries a copy of a report.
    right_only = coverage_of([gamma, delta])
    assert right_only.blindspot and right_only.count("left") == 0
    carried = coverage_of([replace(gamma, via=(("Wire Left", "left", None),)), delta])
    assert not carried.blindspot and carried.count("left") == 1
    assert carried.via == (("Wire Left", "left", None),) and carried.first_source == "Gamma Post"
    assert not coverage_of([alpha, beta, gamma]).blindspot
    assert not coverage_of([alpha]).blindspot  # centre only: neither side is missing it
