"""What a run is configured with: one schema, frozen pydantic dataclasses, validated once when
the sources file is read (:mod:`aggregator.config.load`), with their defaults and the
kinds of source (a source's lean is one of :class:`aggregator.vocab.Lean`). Dataclasses
rather than models, so code and tests make and change them as before (``Source(...)``,
``dataclasses.replace``); pydantic checks those too, so no object breaks a rule the file must
keep (a source with no feed, an owner without its source).

Each table of ``sources.toml`` is one class; a key is a field, its type and its bounds are
the check (``Count``: an integer of at least 1, ``Seconds``: a number above 0, ...), and what
a type cannot say is a validator here whose message is the line the operator reads
(:mod:`aggregator.config.mistakes` adds the file and the table or source). The flat
``[settings]`` table is made of what each stage takes: :class:`FetchSettings`,
:class:`ExtractSettings` and :class:`PublishSettings` (each a :class:`HttpSettings`: how our
requests are made), so a stage is given its own part (``settings.fetch``, ...) and nothing
else.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import ConfigDict, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from aggregator import embeddings
from aggregator.config.checks import ENV_NAME_RE, ID_RE, is_http_url, selector_problem
from aggregator.vocab import LEANS, Side, side_of

KINDS: tuple[str, ...] = ("news", "opinion")

DEFAULT_SOURCES = "sources.toml"
DEFAULT_DB = "sqlite:///storage/balanced-news.db"
DEFAULT_OUT = "feeds"

# Of a worker's pool_size: procrastinate's (one for its LISTEN, one for its queries).
QUEUE_CONNECTIONS = 2

# A source's lean and kind: the words each may be, and how the mistake says so.
_VOCABULARY = {"lean": (LEANS, f"one of: {', '.join(LEANS)}"), "kind": (KINDS, "news or opinion")}

# The types of the file's values. Strict: TOML keeps true and 1 and "1" apart, and so do we
# (a number may still be given as an integer: 20 is 20.0).
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Count = Annotated[int, Strict(), Field(ge=1)]  # at least 1
NonNegative = Annotated[int, Strict(), Field(ge=0)]
Number = Annotated[float, Strict()]
Seconds = Annotated[float, Strict(), Field(gt=0)]  # positive
Delay = Annotated[float, Strict(), Field(ge=0)]  # seconds, not negative

# Unknown keys are refused (extra="forbid", and _Table for a file's tables); a field's own
# name is accepted besides its key in the file (``feeds`` for ``feed``) when built in code.
_CONFIG = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


def wrong_type(expected: str) -> PydanticCustomError:
    """The error for a value of the wrong type, where a type alone cannot say it."""
    return PydanticCustomError("wrong_type", "must be {expected}", {"expected": expected})


def fields_of(cls: type) -> dict[str, FieldInfo]:
    """A table's fields by name, as pydantic holds them (type, bounds, key in the file)."""
    fields: dict[str, FieldInfo] = cls.__pydantic_fields__  # type: ignore[attr-defined]
    return fields


def file_keys(cls: type) -> tuple[str, ...]:
    """The keys a table of the file may hold, in the order they are declared: each field's
    key (its alias, else its name), less those read from the environment."""
    hidden = getattr(cls, "FROM_ENVIRONMENT", ())
    return tuple(f.alias or name for name, f in fields_of(cls).items() if name not in hidden)


@dataclass(frozen=True, config=_CONFIG)
class _Table:
    """A table of the file. A key it does not declare is refused (``extra="forbid"``); so is
    a field's name that is not its key in the file (``feeds``, whose key is ``feed``) or a
    field read from the environment (``api_key``), which only code may give."""

    @model_validator(mode="before")
    @classmethod
    def _file_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):  # read from a file (code gives ArgsKwargs)
            known = file_keys(cls)
            for key in data:
                if key in fields_of(cls) and key not in known:
                    raise PydanticCustomError("unknown_key", "unknown key", {"key": key})
        return data


def _http_url(value: str, info: ValidationInfo) -> str:
    if not is_http_url(value):
        raise ValueError(f"{info.field_name} is not an http(s) URL")
    return value


@dataclass(frozen=True, config=_CONFIG)
class Source(_Table):
    """One outlet (or one section of an outlet) as configured in ``sources.toml``."""

    id: Text
    name: Text
    homepage: Text
    feeds: Annotated[tuple[str, ...], Field(alias="feed")]
    lean: Text
    kind: Text = "news"
    rated_by: Text = ""
    # Who owns the outlet ("News Corp"), set only where that is well known and stable, and
    # where that comes from (owner_source), as rated_by says where the lean comes from. ""
    # when unknown: an outlet of unknown owner counts as an owner of its own.
    owner: Text = ""
    owner_source: Text = ""
    interval: Int | None = None  # minutes; None means the default
    full_text: Flag = True
    enabled: Flag = True
    # Content rules, for a site trafilatura gets wrong (see aggregator/extract.py): the CSS
    # selector of the article body, and selectors of what to remove before extracting.
    select: Text | None = None
    strip: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError(f"id must be lowercase letters, digits, '-' or '_' (got {value!r})")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return value.strip()

    @field_validator("homepage")
    @classmethod
    def _homepage(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError(f"homepage {value!r} is not an http(s) URL")
        return value

    @field_validator("feeds", mode="before")
    @classmethod
    def _feeds(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise wrong_type("a string or a list")
        if not value:
            raise ValueError("feed must name at least one URL")
        for url in value:
            if not isinstance(url, str) or not is_http_url(url):
                raise ValueError(f"feed {url!r} is not an http(s) URL")
        return tuple(value)

    @field_validator("lean", "kind")
    @classmethod
    def _in_vocabulary(cls, value: str, info: ValidationInfo) -> str:
        words, use = _VOCABULARY[info.field_name or ""]
        if value not in words:
            raise ValueError(f"unknown {info.field_name} {value!r} (use {use})")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("interval must be at least 1 minute")
        return value

    @field_validator("select")
    @classmethod
    def _select(cls, value: str | None) -> str | None:
        problem = None if value is None else selector_problem(value)
        if problem:
            raise ValueError(f"select {value!r}: {problem}")
        return value

    @field_validator("strip", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise wrong_type("a list")
        for css in value:
            problem = selector_problem(css)
            if problem:
                raise ValueError(f"strip {css!r}: {problem}")
        return tuple(value)

    @model_validator(mode="before")
    @classmethod
    def _owner_given(cls, data: Any) -> Any:
        owner = data.get("owner") if isinstance(data, dict) else None  # as the file gives it
        if isinstance(owner, str) and not owner.split():
            raise ValueError("owner is empty (leave it out when the owner is not known)")
        return data

    @field_validator("owner", "owner_source")
    @classmethod
    def _spaced(cls, value: str, info: ValidationInfo) -> str:
        # One owner spelt alike is one owner: its spaces normalised.
        return " ".join(value.split()) if info.field_name == "owner" else value.strip()

    @model_validator(mode="after")
    def _owner_cited(self) -> Source:
        if self.owner and not self.owner_source:
            raise ValueError(
                f"owner {self.owner!r} needs owner_source (where the ownership comes from, "
                'e.g. "News Corp, Form 10-K 2024")'
            )
        if self.owner_source and not self.owner:
            raise ValueError("owner_source without an owner")
        return self

    @property
    def side(self) -> Side:
        """The side of the spectrum the lean falls on."""
        return side_of(self.lean, Side.CENTER)


@dataclass(frozen=True, config=_CONFIG)
class HttpSettings(_Table):
    """How every request we make is made: its time limits, its redirects, and the site our
    user agent names (which is also where the feeds are published)."""

    site_url: Text = "http://localhost:8000/"
    timeout: Seconds = 20.0  # seconds, connect and read
    total_timeout: Seconds = 60.0  # seconds for a whole request: a trickling server is cut off
    max_redirects: NonNegative = 5

    @field_validator("site_url")
    @classmethod
    def _site_url(cls, value: str, info: ValidationInfo) -> str:
        value = _http_url(value, info)
        return value if value.endswith("/") else value + "/"


@dataclass(frozen=True, config=_CONFIG)
class FetchSettings(HttpSettings):
    """What the fetch stage takes of ``[settings]``: how feeds are polled and parsed."""

    default_interval: Count = 30  # minutes
    max_feed_bytes: Count = 10_000_000
    concurrency: Count = 32  # feed requests in flight at once
    per_host: Count = 2  # requests in flight to one host: never hammer a publisher
    max_entries: Count = 200  # entries processed per feed document
    parse_timeout: Seconds = 30.0  # seconds one feed document may take to parse
    min_interval: Count = 5  # minutes: the adaptive interval's floor
    max_interval: Count = 1440  # minutes: its ceiling, and the cap on error backoff
    park_after_days: Count = 3  # a source failing this long is parked (shown, retried daily)
    # Seconds in the minute that polling intervals (interval, default_interval, min_interval,
    # max_interval) are counted in: 60, except in tests and trial runs that cannot wait.
    minute_seconds: Count = 60

    @model_validator(mode="after")
    def _intervals(self) -> FetchSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is above max_interval")
        return self

    def minutes(self, n: float) -> timedelta:
        """``n`` polling minutes (see ``minute_seconds``)."""
        return timedelta(seconds=n * self.minute_seconds)


@dataclass(frozen=True, config=_CONFIG)
class ExtractSettings(HttpSettings):
    """What the extract stage takes of ``[settings]``: how article pages are fetched."""

    max_page_bytes: Count = 5_000_000
    page_delay: Delay = 1.0  # seconds between article-page requests to one host


@dataclass(frozen=True, config=_CONFIG)
class PublishSettings(HttpSettings):
    """What the publish stage takes of ``[settings]``: what the feeds and pages say and hold,
    the hub it pings, and how old a publish may be before /healthz says so."""

    feed_size: Count = 50
    title: Text = "Balanced News"
    subtitle: Text = "Clear, contextual news from across the spectrum"
    headlines: Count = 5  # entries in the latest-headlines list
    hub: Text = ""  # WebSub hub URL; empty: no hub
    stale_after: Count = 180  # minutes since the last publish before /healthz reports unhealthy
    images: Flag = True  # each story's lead image (by its address) in the feeds and pages

    @field_validator("hub")
    @classmethod
    def _hub(cls, value: str, info: ValidationInfo) -> str:
        return _http_url(value, info) if value else value


HttpSettingsT = TypeVar("HttpSettingsT", bound=HttpSettings)


def part_of(settings: HttpSettings, part: type[HttpSettingsT]) -> HttpSettingsT:
    """The fields of ``part`` taken from ``settings``: a stage's own settings, nothing more."""
    return part(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(part)})


@dataclass(frozen=True, config=_CONFIG)
class Settings(FetchSettings, ExtractSettings, PublishSettings):
    """The ``[settings]`` table, with defaults a new operator can live with: each stage's own
    part of it (``fetch``, ``extract``, ``publish``), and what the pipeline keeps."""

    retention_days: NonNegative = 0

    @property
    def fetch(self) -> FetchSettings:
        return part_of(self, FetchSettings)

    @property
    def extract(self) -> ExtractSettings:
        return part_of(self, ExtractSettings)

    @property
    def publish(self) -> PublishSettings:
        return part_of(self, PublishSettings)


@dataclass(frozen=True, config=_CONFIG)
class ModelSettings(_Table):
    """The ``[model]`` table: an optional OpenAI-compatible chat-completions backend.

    Off by default: the extractive rewrite needs no model and no network. ``api_key_env`` is the
    *name* of the environment variable holding the key; ``api_key`` is its value, read at load
    from the environment, never from the file.
    """

    FROM_ENVIRONMENT: ClassVar[tuple[str, ...]] = ("api_key",)

    enabled: Flag = False
    base_url: Text = "http://127.0.0.1:11434/v1"  # Ollama's; llama.cpp, vLLM or a hosted API
    model: Text = ""
    api_key_env: Text = ""
    api_key: str | None = Field(default=None, repr=False)
    timeout: Seconds = 60.0  # seconds per request
    max_tokens: Count = 1200
    concurrency: Count = 2  # requests in flight at once
    budget: NonNegative = 20  # model requests per cycle; the other stories stay extractive
    temperature: Number = 0.0

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        return _http_url(value, info).rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, value: str) -> str:
        if value and not ENV_NAME_RE.match(value):
            raise ValueError(f"api_key_env must name an environment variable, not {value!r}")
        return value

    @model_validator(mode="after")
    def _named_model(self) -> ModelSettings:
        if self.enabled and not self.model:
            raise ValueError("enabled needs a model name (model = ...)")
        return self


@dataclass(frozen=True, config=_CONFIG)
class RewriteSettings(_Table):
    """The ``[rewrite]`` table."""

    summary_words: Annotated[int, Strict(), Field(ge=10)] = 60


@dataclass(frozen=True, config=_CONFIG)
class GroupingSettings(_Table):
    """The ``[grouping]`` table.

    ``embeddings``: weigh sentence embeddings (all-MiniLM-L6-v2, on the CPU) beside the words
    when deciding which story an article joins. Off by default: it needs the embeddings extra
    (``pip install -e '.[embeddings]'``: torch, about 1.5 GB), and costs ~50 s of CPU per 1,000
    articles; on the neus-grouping val/test stories it raised pairwise F1 by ~0.025.
    """

    embeddings: Flag = False

    @field_validator("embeddings")
    @classmethod
    def _installed(cls, value: bool) -> bool:
        if value and not embeddings.available():
            raise ValueError(f"embeddings = true, but {embeddings.MISSING}")
        return value


@dataclass(frozen=True, config=_CONFIG)
class WorkerSettings(_Table):
    """The ``[workers]`` table: ``balanced-news worker`` on PostgreSQL (aggregator/workers).

    ``lease_seconds``: how long a claimed source is held for the worker polling it; a worker
    that dies mid-poll leaves it claimed this long, then another takes it. ``stalled_seconds``:
    a worker whose heartbeat (every ``heartbeat_seconds``) is older is taken for dead, and its
    running tasks are released. ``keep_jobs``: keep finished jobs in procrastinate's tables
    (to inspect them); by default successful ones are deleted.
    """

    concurrency: Count = 16  # tasks one worker runs at once
    # Sources per poll task. 1: one task per source under a per-source queueing lock; more:
    # polled together (one fetcher, with its per-host limit; batched writes), far less
    # overhead per source. Either way a source's claim token keeps it from a second poll.
    batch: Count = 20
    lease_seconds: Count = 120
    dispatch_seconds: Annotated[int, Strict(), Field(ge=1, le=59)] = 10  # how often due
    # sources are claimed
    heartbeat_seconds: Count = 10
    stalled_seconds: Count = 30
    keep_jobs: Flag = False
    # PostgreSQL connections one worker holds at most: QUEUE_CONNECTIONS for procrastinate
    # (its listener and its queries), the rest for the pipeline's tasks.
    pool_size: Int = 5

    @field_validator("pool_size")
    @classmethod
    def _pool_size(cls, value: int) -> int:
        if value <= QUEUE_CONNECTIONS:
            raise ValueError(
                f"pool_size must be at least {QUEUE_CONNECTIONS + 1} "
                f"(the task queue takes {QUEUE_CONNECTIONS}, the pipeline at least one)"
            )
        return value

    @model_validator(mode="after")
    def _alive(self) -> WorkerSettings:
        if self.stalled_seconds <= self.heartbeat_seconds:
            raise ValueError(
                "stalled_seconds must be more than heartbeat_seconds "
                "(else a live worker is taken for dead)"
            )
        return self


@dataclass(frozen=True, config=_CONFIG)
class SourcesFile(_Table):
    """A whole sources file: its tables and its ``[[source]]`` entries."""

    settings: Settings = Field(default_factory=Settings)
    sources: Annotated[tuple[Source, ...], Field(alias="source", validate_default=True)] = ()
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)

    @field_validator("sources", mode="before")
    @classmethod
    def _some(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("no [[source]] entries")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> SourcesFile:
        seen: set[str] = set()
        for src in self.sources:
            if src.id in seen:
                raise ValueError(f"source {src.id!r}: duplicate id")
            seen.add(src.id)
        return self


@dataclass(frozen=True, config=_CONFIG)
class Config:
    """Everything one run needs: sources, settings and where things live."""

    sources: tuple[Source, ...]
    settings: Settings = Field(default_factory=Settings)
    sources_path: Path = Path(DEFAULT_SOURCES)
    db_url: str = DEFAULT_DB
    out_dir: Path = Path(DEFAULT_OUT)
    allow_private_hosts: bool = False
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    # ``serve``'s /status answers other than loopback clients only to a request sending it.
    status_token: str | None = Field(default=None, repr=False)

    def source(self, source_id: str) -> Source:
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)

    @property
    def enabled_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)
