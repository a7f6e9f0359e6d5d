"""Signals that survive framing: names over the whole text, shared quotations, calendar days."""

from __future__ import annotations

from aggregator import signals

LONG_ARGUMENT = "Officials who write the rules are rarely asked to answer for them. " * 30


def test_names_and_numbers_count_over_the_whole_text_not_only_the_lead() -> None:
    text = LONG_ARGUMENT + "The fine on Keldmar Lines was $2.4 million, Ada Brannock said."
    assert len(LONG_ARGUMENT) > 1500  # past where the grouping's word vector stops reading
    found = signals.entity_counts(text)
    assert {"keldmar", "line", "2.4", "ada", "brannock"} <= found.keys()
    assert "officials" not in found and "the" not in found  # sentence openers are no names
    assert found["keldmar"] == 1


def test_a_quotation_of_six_words_is_found_in_another_article() -> None:
    first = 'Vireo said: "We accept responsibility for the cleanup but not this penalty."'
    second = "Vireo told reporters they accept responsibility for the cleanup but not the fine."
    third = 'Vireo said: "They accept responsibility for the" costs.'
    runs = signals.signals(second).runs
    assert signals.shares_quote(runs, signals.quoted_runs(first))
    # five quoted words in common are not enough
    assert not signals.shares_quote(runs, signals.quoted_runs(third))
    assert not signals.quoted_runs("No quotation at all in this sentence of many words here.")


def test_calendar_days_in_either_order_and_not_the_verb_may() -> None:
    text = "The vote on March 3 followed talks on 28 February; it may 5 times fail. Sept. 12th too."
    assert signals.dates(text) == {"03-03", "02-28", "09-12"}
    assert signals.dates("On March 45 nothing happened.") == frozenset()


def test_named_share_is_the_weight_of_the_names_a_story_has() -> None:
    entities = {"keldmar": 0.8, "brannock": 0.6}  # a unit vector
    assert abs(signals.named_share(entities, {"keldmar", "osk"}) - 0.64) < 1e-9
    assert signals.named_share(entities, set()) == 0.0
