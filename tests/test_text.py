"""Text tools and the domain's words: the sentence splitter keeps every character of the
sentence it splits off; one stemmer (plain for terms, with verb endings for claims, cut short
for the grouping's keys); one cosine; each lean is on one side, stored as the same string."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

from aggregator.models import Coverage, CoverageNote
from aggregator.text import (
    VERB_ENDINGS,
    cosine,
    cosines,
    cut_at_abbreviation,
    split_sentences,
    stem,
)
from aggregator.vocab import LEANS, SIDES, Lean, Side, side_of

PARAGRAPH = (
    '"It is a farce," Sen. Rand Paul said on "Fox News Sunday." The vote is on Tuesday. '
    "The mayor called the plan 'reckless.' (Officials disagreed.) Work starts in the U.S. soon."
)


def test_a_closing_quote_or_bracket_stays_with_its_sentence() -> None:
    sentences = split_sentences(PARAGRAPH)
    assert sentences == [
        '"It is a farce," Sen. Rand Paul said on "Fox News Sunday."',
        "The vote is on Tuesday.",
        "The mayor called the plan 'reckless.'",
        "(Officials disagreed.)",
        "Work starts in the U.S. soon.",
    ]
    assert " ".join(sentences) == PARAGRAPH, "splitting never drops a character"


def test_an_abbreviation_ends_a_sentence_only_before_a_sentence_opener() -> None:
    text = (
        "The plant will open in the U.S. The company said it would hire 300 people. "
        "The U.S. Senate voted at 9 a.m. Tuesday. Shares of Acme Inc. rose, "
        "and Acme Inc. He declined to comment. The U.S. A.I. Safety Institute and the U.S. "
        "In-Q-Tel fund agreed."
    )
    assert split_sentences(text) == [
        "The plant will open in the U.S.",
        "The company said it would hire 300 people.",
        "The U.S. Senate voted at 9 a.m. Tuesday.",
        "Shares of Acme Inc. rose, and Acme Inc.",
        "He declined to comment.",
        "The U.S. A.I. Safety Institute and the U.S. In-Q-Tel fund agreed.",
    ]


def test_a_middle_initial_does_not_end_a_sentence() -> None:
    text = (
        "Sanders and Michael R. Bloomberg clashed. George W. Bush spoke after them. "
        "They chose Plan B. The vote is Tuesday."
    )
    assert split_sentences(text) == [
        "Sanders and Michael R. Bloomberg clashed.",
        "George W. Bush spoke after them.",
        "They chose Plan B.",
        "The vote is Tuesday.",
    ]


def test_case_names_bill_numbers_and_dc_do_not_end_a_sentence() -> None:
    """Measured against pysbd and syntok on the AllSides dev excerpts (bench/sentence_split.py),
    these were the splits ours got wrong and theirs right."""
    text = (
        "The court will revisit Roe v. Wade and Planned Parenthood v. Casey this term. "
        '"From the moment S.B. 8 took effect, women were harmed," the judge wrote. '
        "The rally was held in Washington, D.C. Tuesday. She moved to D.C. The job paid well. "
        "He flew to Kyiv. The talks began."
    )
    assert split_sentences(text) == [
        "The court will revisit Roe v. Wade and Planned Parenthood v. Casey this term.",
        '"From the moment S.B. 8 took effect, women were harmed," the judge wrote.',
        "The rally was held in Washington, D.C. Tuesday.",
        "She moved to D.C.",
        "The job paid well.",
        "He flew to Kyiv.",
        "The talks began.",
    ]


def test_no_sentence_ends_at_a_month_title_or_state_abbreviation() -> None:
    """The hidden replay cut one at "Sep." ("... the victims of the Sep, according to ...")."""
    text = (
        "Biden paid tribute to the victims of the Sep. 11 attacks. The memorial opens Apr. 3. "
        "Prof. Ana Ruiz of Boston, Mass., and Rev. Al Green spoke. He moved to Tampa, Fla. "
        "The move took a year."
    )
    assert split_sentences(text) == [
        "Biden paid tribute to the victims of the Sep. 11 attacks.",
        "The memorial opens Apr. 3.",
        "Prof. Ana Ruiz of Boston, Mass., and Rev. Al Green spoke.",
        "He moved to Tampa, Fla.",
        "The move took a year.",
    ]


def test_a_sentence_stopping_at_a_title_or_month_abbreviation_was_cut_off() -> None:
    """neus excerpts end so ("... holding a rally in Tupelo, Mississippi, for Lt. Gov."): the
    name that follows was cut, so the sentence is not whole."""
    for cut in ("Trump held a rally for Lt. Gov.", "It was put forward by Rep.", "On Sep."):
        assert cut_at_abbreviation(cut), cut
    for whole in ("She moved to D.C.", "He lives on Main St.", "Made by Acme Inc.", "He left."):
        assert not cut_at_abbreviation(whole), whole


def test_each_lean_is_on_one_side() -> None:
    assert side_of("left") == Side.LEFT
    assert side_of("lean-left") == Side.LEFT
    assert side_of("center") == Side.CENTER
    assert side_of("lean-right") == Side.RIGHT
    assert side_of(Lean.RIGHT) == Side.RIGHT
    assert LEANS == ("left", "lean-left", "center", "lean-right", "right")
    assert SIDES == ("left", "right"), "the centre is no side a story is balanced between"


def test_what_is_no_lean_has_no_side_unless_the_caller_names_one() -> None:
    # A source removed from the configuration is known by its id alone: no lean.
    assert side_of("harbor-daily") is None
    assert side_of("") is None
    assert side_of("Left") is None, "leans are lower case, as sources.toml spells them"
    assert side_of("harbor-daily", Side.CENTER) == Side.CENTER
    assert side_of("lean-right", Side.CENTER) == Side.RIGHT


def test_a_lean_and_a_side_are_their_strings() -> None:
    # Stored, hashed and published as before the enums: the same words.
    assert Lean.LEAN_LEFT == "lean-left" and f"{Side.RIGHT}-leaning" == "right-leaning"
    assert {"left": 1}[Side.LEFT] == 1
    note = CoverageNote("no_coverage", Side.LEFT)
    assert json.dumps([note.code, note.side]) == '["no_coverage", "left"]'
    assert note == CoverageNote("no_coverage", "left")  # a plain string is the same side


def test_coverage_counts_an_outlet_on_its_side_and_one_of_no_lean_nowhere() -> None:
    when = datetime(2026, 12, 7, tzinfo=UTC)
    coverage = Coverage(
        first_source="A",
        first_published=when,
        outlets=(("A", "lean-left", None), ("B", "left", None), ("C", "center", None)),
        leans=("left", "lean-left", "center"),
        via=(("D", "right", None), ("E", "e-outlet-gone", None)),
    )
    counts = [coverage.count(side) for side in (Side.LEFT, Side.CENTER, Side.RIGHT)]
    assert counts == [2, 1, 1]


def test_the_plain_stem_takes_off_the_possessive_and_the_plural_only() -> None:
    assert stem("Mayor’s") == "mayor" and stem("mayor's") == "mayor"
    assert stem("cities") == "city" and stem("ties") == "tie", "-ies is -y past four letters"
    assert stem("votes") == "vote" and stem("bus") == "bus" and stem("gas") == "gas"
    assert stem("press") == "press" and stem("Congress") == "congress"
    assert stem("pledged") == "pledged" and stem("closing") == "closing"


def test_with_verb_endings_a_claims_forms_of_one_word_meet() -> None:
    def root(word: str) -> str:
        return stem(word, endings=VERB_ENDINGS)

    assert root("pledged") == root("pledges") == root("pledge") == "pledg"
    assert root("closing") == root("closes") == root("close") == "clos"
    assert root("quickly") == "quick"
    assert root("cities") == "city", "the plural first, then no ending matches"
    assert root("sing") == "sing" and root("red") == "red", "three letters must stay"
    assert root("the") == "the" and root("rate") == "rat"


def test_a_cut_stem_is_the_grouping_key() -> None:
    assert stem("vaccinated", cut=8) == stem("vaccinations", cut=8) == "vaccinat"
    assert stem("Senators", cut=8) == "senator" and stem("tax", cut=8) == "tax"


def test_one_cosine_for_raw_and_for_unit_vectors() -> None:
    a, b = {"dam": 3.0, "vote": 4.0}, {"dam": 1.0}
    assert cosine(a, b) == 0.6 and cosine(b, a) == 0.6
    assert cosine(a, {}) == 0.0 and cosine({"x": 1.0}, b) == 0.0
    unit_a, unit_b = {"dam": 0.6, "vote": 0.8}, {"dam": 1.0}
    assert cosine(unit_a, unit_b, unit=True) == 0.6
    # On vectors that are not unit length, ``unit`` gives their dot product, not the cosine.
    assert cosine(a, b, unit=True) == 3.0


def test_cosines_against_many_are_the_one_cosine_to_the_last_bit() -> None:
    """The grouping's batched form (``cosines``: the keys shared with any of the others found
    once) gives what ``cosine(unit=True)`` gives each pair, bit for bit, so no decision moves."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(60)]

    def unit() -> dict[str, float]:
        raw = {w: rng.random() for w in rng.sample(words, rng.randint(1, 25))}
        norm = math.sqrt(sum(v * v for v in raw.values()))
        return {w: v / norm for w, v in raw.items()}

    for _ in range(200):
        a, others = unit(), [unit() for _ in range(rng.randint(1, 6))]
        shared = a.keys() & set().union(*others)
        got = cosines(a, shared, others)
        assert [x.hex() for x in got] == [cosine(a, o, unit=True).hex() for o in others]
    assert cosines({"a": 1.0}, set(), [{"b": 1.0}, {"c": 1.0}]) == [0.0, 0.0]
