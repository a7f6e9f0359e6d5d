"""The optional model rewrite: any OpenAI-compatible chat-completions endpoint.

Ollama, llama.cpp's server, vLLM and hosted APIs all speak ``POST {base_url}/chat/completions``.
The model gets the versioned prompt in ``prompts/`` and the story's sources, and must answer
with JSON in a fixed shape (checked by pydantic) in which every paragraph cites source ids.
The guard (:mod:`.guard`) then checks each paragraph against the sources it cites. Anything
wrong (timeout, 429, malformed JSON, a number nobody reported) gives the extractive rewrite
instead, with the reason logged and kept on the result.

Results are cached by the story's content hash: an unchanged story is never sent twice.
Transport failures (timeouts, 429, 5xx, a spent per-cycle budget) are not final, so the caller
may try that story again in a later cycle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.config import ModelSettings
from aggregator.errors import ModelFailure as ModelFailure
from aggregator.models import Rewrite, Sentence, StoryArticle
from aggregator.rewrite import guard

log = logging.getLogger("aggregator.rewrite")

PROMPT_VERSION = "rewrite-v1"
PROMPT_FILE = Path(__file__).with_name("prompts") / f"{PROMPT_VERSION}.md"
MAX_SOURCE_CHARS = 6000  # per source, to keep the request within small models' context
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


class Cited(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=4000)
    sources: list[int] = Field(min_length=1)


class ModelStory(BaseModel):
    """The JSON the prompt asks for."""

    model_config = ConfigDict(extra="ignore")

    headline: str = Field(min_length=3, max_length=200)
    summary: Cited
    paragraphs: list[Cited] = Field(min_length=1, max_length=8)


@dataclass(frozen=True)
class Outcome:
    """A story's rewrite and whether it is final for these inputs (else retry later)."""

    rewrite: Rewrite
    final: bool


def prompt() -> str:
    return PROMPT_FILE.read_text(encoding="utf-8")


def request_body(settings: ModelSettings, articles: Sequence[StoryArticle]) -> dict:
    """The chat-completions request for a story (deterministic: same story, same bytes)."""
    sources = [
        {
            "id": a.entry_id,
            "outlet": a.source_name,
            "lean": a.lean,
            "title": a.title,
            "published": a.published.isoformat(),
            "text": a.text[:MAX_SOURCE_CHARS],
        }
        for a in articles
    ]
    return {
        "model": settings.model,
        "messages": [
            {"role": "system", "content": prompt()},
            {"role": "user", "content": json.dumps({"sources": sources}, ensure_ascii=False)},
        ],
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "response_format": {"type": "json_object"},
    }


def parse_answer(content: str) -> ModelStory:
    """The model's message as a :class:`ModelStory`, or a final :class:`ModelFailure`."""
    try:
        data = json.loads(_FENCE_RE.sub("", content))
    except json.JSONDecodeError as exc:
        raise ModelFailure(f"malformed JSON from the model: {exc}", final=True) from None
    try:
        return ModelStory.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise ModelFailure(f"unexpected JSON shape: {where}: {first['msg']}", final=True) from None


def guarded(story: ModelStory, articles: Sequence[StoryArticle], base: Rewrite) -> Rewrite:
    """The model's story as a :class:`Rewrite`, if the guard finds nothing unsourced in it."""
    by_id = {a.entry_id: a for a in articles}
    outlets = sorted({a.source_name for a in articles})
    everything = [a.title + "\n" + a.text for a in articles]
    problems = [f"headline: {p}" for p in guard.check(story.headline, everything, outlets)]
    parts = [("summary", story.summary)] + [
        (f"paragraph {n}", p) for n, p in enumerate(story.paragraphs, start=1)
    ]
    for label, part in parts:
        unknown = sorted(set(part.sources) - set(by_id))
        if unknown:
            problems.append(f"{label}: cites unknown source ids {unknown}")
            continue
        cited = [by_id[i].title + "\n" + by_id[i].text for i in part.sources]
        problems += [f"{label}: {p}" for p in guard.check(part.text, cited, outlets)]
    if problems:
        raise ModelFailure("guard rejected the model's rewrite: " + "; ".join(problems), final=True)

    def sourced(part: Cited) -> Sentence:
        first = by_id[part.sources[0]]
        return Sentence(
            text=part.text,
            entry_id=first.entry_id,
            index=-1,  # written by the model: its provenance is the cited entries
            source_id=first.source_id,
            source_name=first.source_name,
            link=first.link,
            attributed=part.text,
            cites=tuple(dict.fromkeys(part.sources)),
        )

    return dataclasses.replace(
        base,
        headline=" ".join(story.headline.split()),
        summary=" ".join(story.summary.text.split()),
        summary_sentences=(sourced(story.summary),),
        body=tuple(sourced(p) for p in story.paragraphs),
        method="model",
        fallback=None,
    )


class ModelRewriter:
    """Sends stories to the model, within a per-cycle budget, and caches what comes back."""

    def __init__(self, settings: ModelSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.Client(timeout=settings.timeout)
        self._lock = threading.Lock()
        self._cache: dict[str, Outcome] = {}
        self.requests = 0  # made this cycle

    def new_cycle(self) -> None:
        with self._lock:
            self.requests = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ModelRewriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rewrite(
        self, key: str, articles: Sequence[StoryArticle], extractive: Rewrite, label: str = ""
    ) -> Outcome:
        """The model's rewrite of a story, or ``extractive`` with the reason it was not used.

        ``key`` is the story's content hash: the same key is never sent twice.
        """
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            if self.requests >= self.settings.budget:
                failure = ModelFailure(
                    f"the model budget for this cycle ({self.settings.budget} requests) is spent",
                    final=False,
                )
                return self._fallback(label or key, extractive, failure)
            self.requests += 1
        try:
            story = parse_answer(self._ask(articles))
            outcome = Outcome(guarded(story, articles, extractive), final=True)
        except ModelFailure as failure:
            outcome = self._fallback(label or key, extractive, failure)
        if outcome.final:
            with self._lock:
                self._cache[key] = outcome
        return outcome

    def _fallback(self, label: str, extractive: Rewrite, failure: ModelFailure) -> Outcome:
        log.warning("story %s: model rewrite not used, extractive instead: %s", label, failure)
        return Outcome(dataclasses.replace(extractive, fallback=failure.reason), failure.final)

    def _ask(self, articles: Sequence[StoryArticle]) -> str:
        url = f"{self.settings.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        try:
            response = self._client.post(
                url,
                json=request_body(self.settings, articles),
                headers=headers,
                timeout=self.settings.timeout,
            )
        except httpx.TimeoutException:
            raise ModelFailure(
                f"{url}: timed out after {self.settings.timeout:g}s", final=False
            ) from None
        except httpx.HTTPError as exc:
            raise ModelFailure(f"{url}: cannot connect: {exc}", final=False) from None
        if response.status_code != 200:
            status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
            transient = response.status_code == 429 or response.status_code >= 500
            raise ModelFailure(f"{url}: {status}", final=not transient)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelFailure(
                f"{url}: not a chat-completions response: {response.text[:120]!r}", final=True
            ) from None
        if not isinstance(content, str):
            raise ModelFailure(f"{url}: the message has no text content", final=True)
        return content
