"""The optional model rewrite against a fake OpenAI-compatible server on 127.0.0.1, and its guard.

Real HTTP, real httpx, real pydantic: only the model is fake (a route answering with fixed
JSON). Whatever goes wrong, the story falls back to the extractive rewrite with the reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.config import Config, ConfigError, ModelSettings, load_config
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.publish import render_story_html
from aggregator.rewrite import coverage_of, guard, rewrite_story
from aggregator.rewrite.model import PROMPT_FILE, ModelRewriter, parse_answer
from aggregator.store.schema import EntryRow, StoryRow, StoryStatus, rewrite_from_json
from aggregator.text import split_sentences
from tests.conftest import FIXTURES, hang, make_config, respond
from tests.fake_openai import CHAT_PATH, ChatLog, chat, fault
from tests.stories import story_articles

GOOD = {
    "headline": "Port Ellery to close Harbor Bridge for $412 million repair",
    "summary": {
        "text": "Port Ellery will close the Harbor Bridge on December 1 for a $412 million "
        "repair after engineers found corrosion in its main cables.",
        "sources": [1, 2, 3],
    },
    "paragraphs": [
        {
            "text": "According to Alpha Times, the bridge carries about 86,000 vehicles a day "
            "and the repair will take about 14 months.",
            "sources": [1],
        },
        {
            "text": "Beta Daily reported that transit advocates expect low-income commuters "
            "in the northern suburbs to be hit hardest.",
            "sources": [2],
        },
        {
            "text": "Gamma Post quoted council member Rick Alvarez, who said the city had "
            '"ignored warnings about the bridge for a decade".',
            "sources": [3],
        },
    ],
}


# The fixture outlets' events: the bridge closure, the water cuts, the hearing on the cuts the
# next night (an event of its own) and the tax cut.
STORIES = 4


def settings(web: SampleWeb, **changes: object) -> ModelSettings:
    base = ModelSettings(enabled=True, base_url=web.url("v1"), model="fake-model", timeout=5.0)
    return replace(base, **changes)


def with_paragraph(text: str, sources: list[int]) -> str:
    answer = json.loads(json.dumps(GOOD))
    answer["paragraphs"].append({"text": text, "sources": sources})
    return json.dumps(answer)


def run(web: SampleWeb, route, key: str = "story-1", **changes: object):  # noqa: ANN001
    web.routes[CHAT_PATH] = route
    articles = story_articles("bridge")
    extractive = rewrite_story(articles)
    with ModelRewriter(settings(web, **changes)) as model:
        return model.rewrite(key, articles, extractive, label="bridge"), extractive


def test_good_json_becomes_the_story_with_each_paragraph_citing_its_sources(
    web: SampleWeb,
) -> None:
    log = ChatLog()
    outcome, extractive = run(web, chat(json.dumps(GOOD), log))
    result = outcome.rewrite
    assert outcome.final and result.method == "model" and result.fallback is None
    assert result.headline == GOOD["headline"]
    assert [s.text for s in result.body] == [p["text"] for p in GOOD["paragraphs"]]
    assert [s.cites for s in result.body] == [(1,), (2,), (3,)]
    assert [s.source_name for s in result.body] == ["Alpha Times", "Beta Daily", "Gamma Post"]
    assert result.summary_sentences[0].cites == (1, 2, 3)
    # The perspectives stay the sides' own words.
    assert result.progressive == extractive.progressive
    assert result.conservative == extractive.conservative
    (body,) = log.bodies
    assert body["model"] == "fake-model" and body["temperature"] == 0.0
    assert body["messages"][0]["content"] == PROMPT_FILE.read_text(encoding="utf-8")
    sent = json.loads(body["messages"][1]["content"])["sources"]
    assert [(s["id"], s["outlet"], s["lean"]) for s in sent][:2] == [
        (1, "Alpha Times", "center"),
        (2, "Beta Daily", "left"),
    ]


def test_malformed_json_falls_back_to_the_extractive_rewrite(
    web: SampleWeb, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="aggregator.rewrite"):
        outcome, extractive = run(web, chat('{"headline": "Bridge closes", "summary": '))
    assert outcome.final, "asking again would give the same answer"
    assert outcome.rewrite.method == "extractive"
    assert outcome.rewrite.fallback.startswith("malformed JSON from the model")
    assert replace(outcome.rewrite, fallback=None) == extractive
    assert "story bridge: model rewrite not used" in caplog.text


def test_json_of_the_wrong_shape_falls_back(web: SampleWeb) -> None:
    outcome, _ = run(web, chat(json.dumps({**GOOD, "paragraphs": [{"text": "No sources."}]})))
    assert outcome.rewrite.method == "extractive"
    assert outcome.rewrite.fallback == (
        "unexpected JSON shape: paragraphs.0.sources: Field required"
    )


def test_a_timeout_falls_back_and_may_be_retried(web: SampleWeb) -> None:
    outcome, _ = run(web, hang(3), timeout=0.5)
    assert not outcome.final and outcome.rewrite.method == "extractive"
    assert outcome.rewrite.fallback == f"{web.url('v1/chat/completions')}: timed out after 0.5s"


def test_rate_limited_429_falls_back_and_may_be_retried(web: SampleWeb) -> None:
    log = ChatLog()
    outcome, _ = run(web, fault(respond(429, b'{"error": "slow down"}', Retry_After="30"), log))
    assert len(log) == 1
    assert not outcome.final and outcome.rewrite.method == "extractive"
    assert outcome.rewrite.fallback.endswith("HTTP 429 Too Many Requests")


@pytest.mark.parametrize(
    ("paragraph", "sources", "problem"),
    [
        # Alpha Times says 86,000 vehicles; 37 appears nowhere.
        ("According to Alpha Times, 37 people were hurt.", [1], "number '37'"),
        # $150 million is in Alpha Times, not in Beta Daily, the source this paragraph cites.
        ("Beta Daily said the state will pay $150 million.", [2], "number '150'"),
        ('Beta Daily said riders called it "a betrayal".', [2], "quotation 'a betrayal'"),
        ("According to Gamma Post, Governor Ana Ruiz called the closure overdue.", [3], "name"),
        ("According to Gamma Post, the bridge will close.", [9], "unknown source ids [9]"),
    ],
)
def test_the_guard_rejects_what_the_cited_sources_do_not_say(
    web: SampleWeb, paragraph: str, sources: list[int], problem: str
) -> None:
    outcome, extractive = run(web, chat(with_paragraph(paragraph, sources)))
    assert outcome.final and outcome.rewrite.method == "extractive"
    assert outcome.rewrite.body == extractive.body
    assert outcome.rewrite.fallback.startswith("guard rejected the model's rewrite: paragraph 4")
    assert problem in outcome.rewrite.fallback


def test_an_unchanged_story_is_never_sent_twice_and_the_budget_holds(web: SampleWeb) -> None:
    log = ChatLog()
    web.routes[CHAT_PATH] = chat(json.dumps(GOOD), log)
    articles = story_articles("bridge")
    extractive = rewrite_story(articles)
    with ModelRewriter(settings(web, budget=2)) as model:
        first = model.rewrite("hash-a", articles, extractive)
        again = model.rewrite("hash-a", articles, extractive)
        assert again == first and len(log) == 1
        model.rewrite("hash-b", articles, extractive)
        over = model.rewrite("hash-c", articles, extractive)
        assert len(log) == 2
        assert not over.final and "budget for this cycle (2 requests) is spent" in (
            over.rewrite.fallback or ""
        )
        model.new_cycle()
        assert model.rewrite("hash-c", articles, extractive).rewrite.method == "model"
        assert len(log) == 3


def test_fenced_json_is_accepted() -> None:
    story = parse_answer("```json\n" + json.dumps(GOOD) + "\n```")
    assert story.headline == GOOD["headline"]


def test_guard_finds_numbers_quotes_and_names() -> None:
    sources = [a.text for a in story_articles("bridge")]
    outlets = ["Alpha Times"]
    fine = (
        "According to Alpha Times, Mayor Dana Whitcomb will close the Harbor Bridge on December 1."
    )
    assert guard.check(fine, sources, outlets) == []
    assert guard.check("It carries 86000 vehicles a day.", sources) == []  # 86,000 as written
    assert guard.check("Port Ellery Mayor Dana Whitcomb spoke.", sources) == []  # two known names
    assert guard.check("Rick Whitcomb spoke.", sources) == [
        "name 'Rick Whitcomb' is not in its sources"
    ]
    assert guard.check("The bill is $413 million.", sources) == [
        "number '413' is not in its sources"
    ]
    assert guard.check('Alvarez said the city "ignored warnings".', sources) == []
    assert guard.check('Alvarez said the city "lied".', sources) == [
        "quotation 'lied' is not in its sources"
    ]


def test_model_table_is_validated_and_the_key_read_from_the_named_variable(
    web: SampleWeb, tmp_path: Path
) -> None:
    base = web.render((FIXTURES / "sources.toml").read_text(encoding="utf-8"))
    path = tmp_path / "sources.toml"
    path.write_text(
        base + '\n[model]\nenabled = true\nbase_url = "http://127.0.0.1:8080/v1/"\nmodel = "m"\n'
        'api_key_env = "BN_TEST_KEY"\nbudget = 3\n[rewrite]\nsummary_words = 80\n',
        encoding="utf-8",
    )
    config = load_config(path, env={"BN_TEST_KEY": "sekrit"})
    assert config.model.api_key == "sekrit" and config.model.budget == 3
    assert config.model.base_url == "http://127.0.0.1:8080/v1"
    assert config.rewrite.summary_words == 80
    assert "sekrit" not in repr(config)
    assert load_config(path).model.api_key is None  # no environment given, none read
    plain = tmp_path / "plain.toml"
    plain.write_text(base, encoding="utf-8")
    assert not load_config(plain).model.enabled  # off by default
    path.write_text(base + '\n[model]\nenabled = true\nmodel = "m"\nbudget = -1\n', "utf-8")
    with pytest.raises(ConfigError, match=r"\[model\]: budget must not be negative"):
        load_config(path)
    path.write_text(base + '\n[model]\nenabled = true\nmodel = "m"\nmodle = "x"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"\[model\]: unknown key 'modle'"):
        load_config(path)


def test_the_api_key_is_sent_as_a_bearer_token(web: SampleWeb) -> None:
    log = ChatLog()
    run(web, chat(json.dumps(GOOD), log), api_key="sekrit")
    assert log.headers[0]["authorization"] == "Bearer sekrit"


# --- through the pipeline ----------------------------------------------------------------------


def echo_answer(request: dict) -> str:
    """A well-behaved model: each source's first sentence, attributed and cited."""
    sources = json.loads(request["messages"][1]["content"])["sources"]
    paragraphs = [
        {"text": f"{s['outlet']} reported: {split_sentences(s['text'])[0]}", "sources": [s["id"]]}
        for s in sources
    ]
    first = sources[0]
    return json.dumps(
        {
            "headline": first["title"],
            "summary": {"text": split_sentences(first["text"])[0], "sources": [first["id"]]},
            "paragraphs": paragraphs,
        }
    )


def model_config(web: SampleWeb, tmp_path: Path, **changes: object) -> Config:
    config = make_config(web, tmp_path)
    return replace(config, model=settings(web, **changes))


def methods(pipeline: Pipeline) -> list[tuple[str, str | None]]:
    with pipeline.session() as s:
        rows = s.scalars(select(StoryRow).order_by(StoryRow.id))
        return [
            (r.method, r.fallback)
            for r in (rewrite_from_json(row.rewrite_json or "") for row in rows)
        ]


def test_pipeline_uses_the_model_and_never_sends_an_unchanged_story_twice(
    web: SampleWeb, tmp_path: Path
) -> None:
    log = ChatLog()
    web.routes[CHAT_PATH] = chat(echo_answer, log)
    config = model_config(web, tmp_path, concurrency=3)
    report = Pipeline(config).run_cycle()
    assert report.stories == STORIES and len(log) == STORIES
    pipeline = Pipeline(config)
    assert methods(pipeline) == [("model", None)] * STORIES
    with pipeline.session() as s:
        html = " ".join(x.content_html for x in pipeline.published_stories(everything=True))
        for row in s.scalars(select(StoryRow)):
            members = set(s.scalars(select(EntryRow.id).where(EntryRow.story_id == row.id)))
            body = rewrite_from_json(row.rewrite_json or "").body
            assert body and all(p.cites and set(p.cites) <= members for p in body)
    assert ">Alpha Times</a> reported:" in html  # the outlet linked to its article
    assert Pipeline(config).run_cycle().rewritten == 0  # a new process: the database remembers
    assert len(log) == STORIES


def test_pipeline_falls_back_on_429_and_tries_again_next_cycle(
    web: SampleWeb, tmp_path: Path
) -> None:
    log = ChatLog()
    web.routes[CHAT_PATH] = fault(respond(429, b"{}"), log)
    config = model_config(web, tmp_path, budget=2)
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    assert len(log) == 2, "the per-cycle budget caps the requests"
    fell_back = methods(pipeline)
    assert [m for m, _ in fell_back] == ["extractive"] * STORIES
    tried = sorted(bool(f and "HTTP 429" in f) for _, f in fell_back)
    assert tried == [False] * (STORIES - 2) + [True, True]
    with pipeline.session() as s:
        rows = list(s.scalars(select(StoryRow)))
        assert all(r.status == StoryStatus.READY for r in rows), "published meanwhile"

    web.routes[CHAT_PATH] = chat(echo_answer, log)
    pipeline.run_cycle()  # nothing new was polled; the stories are retried anyway
    pipeline.run_cycle()
    assert methods(pipeline) == [("model", None)] * STORIES
    assert len(log) == 2 + STORIES


def test_pipeline_keeps_the_extractive_story_when_the_guard_rejects(
    web: SampleWeb, tmp_path: Path
) -> None:
    log = ChatLog()

    def inventive(request: dict) -> str:
        answer = json.loads(echo_answer(request))
        answer["paragraphs"][0]["text"] += " Officials said 9,999 people were affected."
        return json.dumps(answer)

    web.routes[CHAT_PATH] = chat(inventive, log)
    config = model_config(web, tmp_path)
    pipeline = Pipeline(config)
    pipeline.run_cycle()
    results = methods(pipeline)
    assert [m for m, _ in results] == ["extractive"] * STORIES
    assert all("number '9999' is not in its sources" in (f or "") for _, f in results)
    pipeline.run_cycle()
    assert len(log) == STORIES, "a rejected answer is final: not sent again"
    shown = pipeline.published_stories(everything=True)
    assert len(shown) == STORIES and not any("9,999" in x.content_html for x in shown)


def test_a_paragraph_citing_several_outlets_links_each_of_them(web: SampleWeb) -> None:
    text = "Alpha Times and Beta Daily both reported the December 1 closure."
    outcome, _ = run(web, chat(with_paragraph(text, [1, 2])))
    assert outcome.rewrite.method == "model", outcome.rewrite.fallback
    html = render_story_html(outcome.rewrite, coverage_of(story_articles("bridge")))
    assert (
        '<a href="http://alpha.example/bridge">Alpha Times</a> and '
        '<a href="http://beta.example/bridge">Beta Daily</a> both reported'
    ) in html


def test_guard_accepts_a_capitalised_common_word_the_sources_use() -> None:
    sources = [a.text for a in story_articles("bridge")]
    assert guard.check("Commuters in the northern suburbs will be hit hardest.", sources) == []
    assert guard.check("Ruiz said so.", sources) == ["name 'Ruiz' is not in its sources"]


@pytest.mark.parametrize(
    ("headline", "problem"),
    [
        (
            "Governor Ana Ruiz closes Harbor Bridge for repairs",
            "headline: name 'Governor Ana Ruiz'",
        ),
        ("Port Ellery closes Harbor Bridge for $500 million repair", "headline: number '500'"),
    ],
)
def test_a_model_headline_names_only_people_and_numbers_the_sources_give(
    web: SampleWeb, headline: str, problem: str
) -> None:
    """The model may write its own headline; the guard checks every name and number in it."""
    outcome, extractive = run(web, chat(json.dumps({**GOOD, "headline": headline})))
    assert outcome.final and outcome.rewrite.method == "extractive"
    assert outcome.rewrite.headline == extractive.headline
    assert problem in outcome.rewrite.fallback
