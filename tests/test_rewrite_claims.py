"""Claim alignment: sentences of different articles stating the same claim become one claim."""

from __future__ import annotations

from aggregator.models import Sentence
from aggregator.rewrite.claims import align, corroborated, features
from aggregator.rewrite.sentences import sentences_of as _sentences
from tests.stories import story_articles

OUTLETS = {1: ("Alpha Times", "center"), 2: ("Beta Daily", "left"), 3: ("Gamma Post", "right")}


def sentence(entry_id: int, index: int, text: str) -> Sentence:
    name = OUTLETS[entry_id][0]
    return Sentence(text, entry_id, index, f"s{entry_id}", name, f"http://x.example/{entry_id}")


LEANS = {entry_id: lean for entry_id, (_, lean) in OUTLETS.items()}


def test_paraphrases_and_copies_are_one_claim_and_different_claims_stay_apart() -> None:
    sentences = [
        sentence(1, 0, "Governor Rhea Sandoval has pledged to sign the water bill."),
        sentence(1, 1, "Council President Ines Duarte said the vote protected riders."),
        sentence(2, 0, "Governor Rhea Sandoval has said she would sign the water bill."),
        sentence(2, 1, "Council President Ines Duarte, who voted yes, said nine routes would go."),
        sentence(3, 0, '"Nobody wanted to raise fares," Duarte said.'),
        sentence(2, 2, '"Nobody wanted to raise fares," Duarte said.'),
    ]
    claims = align(sentences, LEANS)
    by_text = {s.text: c for c in claims for s in c.sentences}
    pledge = by_text["Governor Rhea Sandoval has pledged to sign the water bill."]
    assert pledge.outlets == ("Alpha Times", "Beta Daily"), "a paraphrase joins its claim"
    quote = by_text['"Nobody wanted to raise fares," Duarte said.']
    assert set(quote.outlets) == {"Beta Daily", "Gamma Post"} and quote.both_sides
    # Same speaker, different claims: sharing a name does not make them one.
    assert by_text[sentences[1].text] is not by_text[sentences[3].text]
    assert sum(len(c.sentences) for c in claims) == len(sentences), "every sentence, once"
    assert not pledge.both_sides and pledge.sides == {"center", "left"}


def test_an_article_states_a_claim_once_and_no_chain_of_loose_likeness_is_one_claim() -> None:
    sentences = [
        sentence(1, 0, "The Harbor Bridge will close on December 1 for repairs."),
        sentence(1, 3, "The Harbor Bridge will close on December 1 for repairs, officials said."),
        sentence(2, 0, "The Harbor Bridge will close on December 1 for repairs."),
    ]
    claims = align(sentences, LEANS)
    for claim in claims:
        ids = [s.entry_id for s in claim.sentences]
        assert len(ids) == len(set(ids))
    a = sentence(1, 0, "Ferry service on Lake Corrin stopped after the engine fire.")
    b = sentence(2, 0, "The engine fire stopped ferry service and stranded island workers.")
    c = sentence(3, 0, "Island workers stranded on Corrin asked the county for buses.")
    linked = align([a, b, c], LEANS, threshold=0.3)
    assert not any(len(claim.sentences) == 3 for claim in linked), "a and c are not alike"


def test_numbers_read_as_numbers_and_alignment_is_deterministic() -> None:
    assert "412" in features("a $412M fix") and "412" in features("a $412 million repair")
    assert features("rose 3.5%") == features("rose 3.5 percent")
    articles = story_articles("fares")
    sentences = [s for a in articles for s in _sentences(a)]
    leans = {a.entry_id: a.lean for a in articles}
    forward = align(sentences, leans)
    assert forward == align(list(reversed(sentences)), leans)
    assert any(len(c.outlets) >= 3 for c in forward), "the 6-3 vote is one claim"


def test_an_article_corroborates_a_claim_it_tells_in_its_own_sentences_and_figures() -> None:
    claim = sentence(1, 0, "Governor Rhea Sandoval will sign the water bill on Friday in Ashby.")
    told_apart = "Rhea Sandoval is the governor. She will sign it Friday. The water bill passed."
    assert corroborated(claim, set(features(told_apart)))
    assert not corroborated(claim, set(features("The water bill passed the Senate.")))
    figure = sentence(1, 1, "Governor Rhea Sandoval said the water bill costs $40 million.")
    other = "Governor Rhea Sandoval said the water bill costs $25 million."
    assert not corroborated(figure, set(features(other))), "a figure only one outlet gives"


def test_a_plain_paraphrase_in_another_article_corroborates_and_the_same_names_alone_do_not() -> (
    None
):
    """An outlet that tells the same event in its own words reports the claim (the summary then
    states it plainly); one that only names the same town and offices does not."""
    claim = sentence(
        1,
        0,
        "Two top races in Marlow are heading for recounts, with voters almost evenly divided "
        "between the candidates for mayor and council.",
    )
    paraphrase = (
        "Marlow clerk Dana Ruiz announced Saturday that there will be recounts in the mayor and "
        "council races after both became too close to call."
    )
    same_names = (
        "Marlow opened a new bus depot on Saturday, the mayor said, and the council will vote "
        "on fares next week."
    )
    assert corroborated(claim, set(features(paraphrase)))
    assert not corroborated(claim, set(features(same_names)))
