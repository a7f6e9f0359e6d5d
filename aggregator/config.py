"""Load and validate ``sources.toml`` and the run-time options, once.

Nothing else in the package reads TOML or environment variables: every other module gets the
typed :class:`Config` built here, so a typo is caught before anything runs and reported in one
line that names the file, the source and the problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml.cssselect import CSSSelector

from aggregator import embeddings
from aggregator.errors import ConfigError as ConfigError
from aggregator.errors import Unavailable as Unavailable

LEANS: tuple[str, ...] = ("left", "lean-left", "center", "lean-right", "right")
LEFT_LEANS = frozenset({"left", "lean-left"})
RIGHT_LEANS = frozenset({"right", "lean-right"})
KINDS: tuple[str, ...] = ("news", "opinion")

DEFAULT_SOURCES = "sources.toml"
DEFAULT_DB = "sqlite:///storage/balanced-news.db"
DEFAULT_OUT = "feeds"

ENV_SOURCES = "BALANCED_NEWS_SOURCES"
ENV_DB = "BALANCED_NEWS_DB"
ENV_OUT = "BALANCED_NEWS_OUT"
ENV_ALLOW_PRIVATE = "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS"
ENV_STATUS_TOKEN = "BALANCED_NEWS_STATUS_TOKEN"
MIN_TOKEN_CHARS = 16

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Source:
    """One outlet (or one section of an outlet) as configured in ``sources.toml``."""

    id: str
    name: str
    homepage: str
    feeds: tuple[str, ...]
    lean: str
    kind: str = "news"
    rated_by: str = ""
    interval: int | None = None  # minutes; None means the default
    full_text: bool = True
    enabled: bool = True
    # Content rules, for a site trafilatura gets wrong (see aggregator/extract.py): the CSS
    # selector of the article body, and selectors of what to remove before extracting.
    select: str | None = None
    strip: tuple[str, ...] = ()

    @property
    def side(self) -> str:
        """``left``, ``right`` or ``center``: the side of the spectrum the lean falls on."""
        if self.lean in LEFT_LEANS:
            return "left"
        if self.lean in RIGHT_LEANS:
            return "right"
        return "center"


@dataclass(frozen=True)
class Settings:
    """The ``[settings]`` table, with defaults a new operator can live with."""

    feed_size: int = 50
    retention_days: int = 0
    title: str = "Balanced News"
    subtitle: str = "Clear, contextual news from across the spectrum"
    site_url: str = "http://localhost:8000/"
    default_interval: int = 30  # minutes
    timeout: float = 20.0  # seconds, connect and read
    max_feed_bytes: int = 10_000_000
    max_page_bytes: int = 5_000_000
    max_redirects: int = 5
    headlines: int = 5  # entries in the latest-headlines list
    concurrency: int = 32  # feed requests in flight at once
    per_host: int = 2  # requests in flight to one host: never hammer a publisher
    total_timeout: float = 60.0  # seconds for a whole request, so a trickling server is cut off
    max_entries: int = 200  # entries processed per feed document
    parse_timeout: float = 30.0  # seconds one feed document may take to parse
    min_interval: int = 5  # minutes: the adaptive interval's floor
    max_interval: int = 1440  # minutes: its ceiling, and the cap on error backoff
    park_after_days: int = 3  # a source failing this long is parked (shown, retried daily)
    page_delay: float = 1.0  # seconds between article-page requests to one host
    hub: str = ""  # WebSub hub URL; empty: no hub
    stale_after: int = 180  # minutes since the last publish before /healthz reports unhealthy
    images: bool = True  # each story's lead image (by its address) in the feeds and pages
    # Seconds in the minute that polling intervals (interval, default_interval, min_interval,
    # max_interval) are counted in: 60, except in tests and trial runs that cannot wait.
    minute_seconds: int = 60

    def minutes(self, n: float) -> timedelta:
        """``n`` polling minutes (see ``minute_seconds``)."""
        return timedelta(seconds=n * self.minute_seconds)


@dataclass(frozen=True)
class ModelSettings:
    """The ``[model]`` table: an optional OpenAI-compatible chat-completions backend.

    Off by default: the extractive rewrite needs no model and no network. ``api_key_env`` is the
    *name* of the environment variable holding the key; ``api_key`` is its value, read here.
    """

    enabled: bool = False
    base_url: str = "http://127.0.0.1:11434/v1"  # Ollama's; llama.cpp, vLLM or a hosted API
    model: str = ""
    api_key_env: str = ""
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0  # seconds per request
    max_tokens: int = 1200
    concurrency: int = 2  # requests in flight at once
    budget: int = 20  # model requests per cycle; the other stories stay extractive this cycle
    temperature: float = 0.0


@dataclass(frozen=True)
class RewriteSettings:
    """The ``[rewrite]`` table."""

    summary_words: int = 60


@dataclass(frozen=True)
class GroupingSettings:
    """The ``[grouping]`` table.

    ``embeddings``: weigh sentence embeddings (all-MiniLM-L6-v2, on the CPU) beside the words
    when deciding which story an article joins. Off by default: it needs the embeddings extra
    (``pip install -e '.[embeddings]'``: torch, about 1.5 GB), and costs ~50 s of CPU per 1,000
    articles; on the neus-grouping val/test stories it raised pairwise F1 by ~0.025.
    """

    embeddings: bool = False


@dataclass(frozen=True)
class WorkerSettings:
    """The ``[workers]`` table: ``balanced-news worker`` on PostgreSQL (aggregator/workers).

    ``lease_seconds``: how long a claimed source is held for the worker polling it; a worker
    that dies mid-poll leaves it claimed this long, then another takes it. ``stalled_seconds``:
    a worker whose heartbeat (every ``heartbeat_seconds``) is older is taken for dead, and its
    running tasks are released. ``keep_jobs``: keep finished jobs in procrastinate's tables
    (to inspect them); by default successful ones are deleted.
    """

    concurrency: int = 16  # tasks one worker runs at once
    # Sources per poll task. 1: one task per source under a per-source queueing lock; more:
    # polled together (one fetcher, with its per-host limit; batched writes), far less
    # overhead per source. Either way a source's claim token keeps it from a second poll.
    batch: int = 20
    lease_seconds: int = 120
    dispatch_seconds: int = 10  # how often due sources are claimed (1-59)
    heartbeat_seconds: int = 10
    stalled_seconds: int = 30
    keep_jobs: bool = False
    # PostgreSQL connections one worker holds at most: QUEUE_CONNECTIONS for procrastinate
    # (its listener and its queries), the rest for the pipeline's tasks.
    pool_size: int = 5


# Of a worker's pool_size: procrastinate's (one for its LISTEN, one for its queries).
QUEUE_CONNECTIONS = 2


@dataclass(frozen=True)
class Config:
    """Everything one run needs: sources, settings and where things live."""

    sources: tuple[Source, ...]
    settings: Settings = field(default_factory=Settings)
    sources_path: Path = Path(DEFAULT_SOURCES)
    db_url: str = DEFAULT_DB
    out_dir: Path = Path(DEFAULT_OUT)
    allow_private_hosts: bool = False
    rewrite: RewriteSettings = field(default_factory=RewriteSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    # ``serve``'s /status answers other than loopback clients only to a request sending it.
    status_token: str | None = field(default=None, repr=False)

    def source(self, source_id: str) -> Source:
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)

    @property
    def enabled_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)


_SOURCE_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "homepage": (str,),
    "feed": (str, list),
    "lean": (str,),
    "kind": (str,),
    "rated_by": (str,),
    "interval": (int,),
    "full_text": (bool,),
    "enabled": (bool,),
    "select": (str,),
    "strip": (list,),
}
_REQUIRED_SOURCE_KEYS = ("id", "name", "homepage", "feed", "lean")
_SETTINGS_TYPES: dict[str, tuple[type, ...]] = {
    "feed_size": (int,),
    "retention_days": (int,),
    "title": (str,),
    "subtitle": (str,),
    "site_url": (str,),
    "default_interval": (int,),
    "timeout": (int, float),
    "max_feed_bytes": (int,),
    "max_page_bytes": (int,),
    "max_redirects": (int,),
    "headlines": (int,),
    "concurrency": (int,),
    "per_host": (int,),
    "total_timeout": (int, float),
    "max_entries": (int,),
    "parse_timeout": (int, float),
    "min_interval": (int,),
    "max_interval": (int,),
    "park_after_days": (int,),
    "page_delay": (int, float),
    "hub": (str,),
    "stale_after": (int,),
    "images": (bool,),
    "minute_seconds": (int,),
}
_TYPE_NAMES = {
    str: "a string",
    list: "a list",
    int: "an integer",
    float: "a number",
    bool: "true/false",
}


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    # bool is a subclass of int in Python; TOML keeps them apart, and so do we.
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _expected(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES[t] for t in types)


def is_http_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_settings(raw: Any, where: str) -> Settings:
    values = _check_table(raw, "settings", _SETTINGS_TYPES, where)
    for key in (
        "feed_size",
        "default_interval",
        "max_feed_bytes",
        "max_page_bytes",
        "headlines",
        "concurrency",
        "per_host",
        "max_entries",
        "min_interval",
        "max_interval",
        "park_after_days",
        "stale_after",
        "minute_seconds",
    ):
        if key in values and values[key] < 1:
            raise ConfigError(f"{where}: [settings]: {key} must be at least 1")
    for key in ("retention_days", "max_redirects"):
        if key in values and values[key] < 0:
            raise ConfigError(f"{where}: [settings]: {key} must not be negative")
    for key in ("timeout", "total_timeout", "parse_timeout"):
        if key in values and values[key] <= 0:
            raise ConfigError(f"{where}: [settings]: {key} must be positive")
    if "page_delay" in values and values["page_delay"] < 0:
        raise ConfigError(f"{where}: [settings]: page_delay must not be negative")
    if values.get("min_interval", 5) > values.get("max_interval", 1440):
        raise ConfigError(f"{where}: [settings]: min_interval is above max_interval")
    if "site_url" in values:
        if not is_http_url(values["site_url"]):
            raise ConfigError(f"{where}: [settings]: site_url is not an http(s) URL")
        if not values["site_url"].endswith("/"):
            values["site_url"] += "/"
    if values.get("hub") and not is_http_url(values["hub"]):
        raise ConfigError(f"{where}: [settings]: hub is not an http(s) URL")
    for key in ("timeout", "total_timeout", "parse_timeout", "page_delay"):
        if key in values:
            values[key] = float(values[key])
    return Settings(**values)


_MODEL_TYPES: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "base_url": (str,),
    "model": (str,),
    "api_key_env": (str,),
    "timeout": (int, float),
    "max_tokens": (int,),
    "concurrency": (int,),
    "budget": (int,),
    "temperature": (int, float),
}
_REWRITE_TYPES: dict[str, tuple[type, ...]] = {"summary_words": (int,)}
_GROUPING_TYPES: dict[str, tuple[type, ...]] = {"embeddings": (bool,)}
_WORKERS_TYPES: dict[str, tuple[type, ...]] = {
    "concurrency": (int,),
    "batch": (int,),
    "lease_seconds": (int,),
    "dispatch_seconds": (int,),
    "heartbeat_seconds": (int,),
    "stalled_seconds": (int,),
    "keep_jobs": (bool,),
    "pool_size": (int,),
}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_table(
    raw: Any, table: str, types: dict[str, tuple[type, ...]], where: str
) -> dict[str, Any]:
    """A flat table's keys and value types, checked; the values, as given."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: [{table}] must be a table")
    for key, value in raw.items():
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"{where}: [{table}]: unknown key {key!r} (known: {known})")
        if not _type_ok(value, types[key]):
            raise ConfigError(
                f"{where}: [{table}]: {key} must be {_expected(types[key])}, not {value!r}"
            )
    return dict(raw)


def _check_rewrite(raw: Any, where: str) -> RewriteSettings:
    values = _check_table(raw, "rewrite", _REWRITE_TYPES, where)
    if values.get("summary_words", 10) < 10:
        raise ConfigError(f"{where}: [rewrite]: summary_words must be at least 10")
    return RewriteSettings(**values)


def _check_grouping(raw: Any, where: str) -> GroupingSettings:
    values = _check_table(raw, "grouping", _GROUPING_TYPES, where)
    if values.get("embeddings") and not embeddings.available():
        raise ConfigError(f"{where}: [grouping]: embeddings = true, but {embeddings.MISSING}")
    return GroupingSettings(**values)


def _check_workers(raw: Any, where: str) -> WorkerSettings:
    values = _check_table(raw, "workers", _WORKERS_TYPES, where)
    for key in ("concurrency", "batch", "lease_seconds", "heartbeat_seconds", "stalled_seconds"):
        if key in values and values[key] < 1:
            raise ConfigError(f"{where}: [workers]: {key} must be at least 1")
    if not 1 <= values.get("dispatch_seconds", 10) <= 59:
        raise ConfigError(f"{where}: [workers]: dispatch_seconds must be from 1 to 59")
    if values.get("pool_size", 5) <= QUEUE_CONNECTIONS:
        raise ConfigError(
            f"{where}: [workers]: pool_size must be at least {QUEUE_CONNECTIONS + 1} "
            f"(the task queue takes {QUEUE_CONNECTIONS}, the pipeline at least one)"
        )
    workers = WorkerSettings(**values)
    if workers.stalled_seconds <= workers.heartbeat_seconds:
        raise ConfigError(
            f"{where}: [workers]: stalled_seconds must be more than heartbeat_seconds "
            "(else a live worker is taken for dead)"
        )
    return workers


def parse_workers(text: str, where: str = DEFAULT_SOURCES) -> WorkerSettings:
    """The ``[workers]`` table (used by ``balanced-news worker`` only)."""
    return _check_workers(_load_toml(text, where).get("workers", {}), where)


def _check_model(raw: Any, where: str) -> ModelSettings:
    values = _check_table(raw, "model", _MODEL_TYPES, where)
    for key in ("max_tokens", "concurrency"):
        if key in values and values[key] < 1:
            raise ConfigError(f"{where}: [model]: {key} must be at least 1")
    if values.get("budget", 0) < 0:
        raise ConfigError(f"{where}: [model]: budget must not be negative")
    if values.get("timeout", 1) <= 0:
        raise ConfigError(f"{where}: [model]: timeout must be positive")
    if "base_url" in values and not is_http_url(values["base_url"]):
        raise ConfigError(f"{where}: [model]: base_url is not an http(s) URL")
    if values.get("api_key_env") and not _ENV_NAME_RE.match(values["api_key_env"]):
        raise ConfigError(
            f"{where}: [model]: api_key_env must name an environment variable, "
            f"not {values['api_key_env']!r}"
        )
    if values.get("enabled") and not values.get("model"):
        raise ConfigError(f"{where}: [model]: enabled needs a model name (model = ...)")
    for key in ("timeout", "temperature"):
        if key in values:
            values[key] = float(values[key])
    values["base_url"] = values.get("base_url", ModelSettings.base_url).rstrip("/")
    return ModelSettings(**values)


def _check_source(raw: Any, index: int, where: str) -> Source:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: source #{index} must be a table")
    label = f"source {raw.get('id')!r}" if isinstance(raw.get("id"), str) else f"source #{index}"
    for key, value in raw.items():
        if key not in _SOURCE_KEYS:
            known = ", ".join(_SOURCE_KEYS)
            raise ConfigError(f"{where}: {label}: unknown key {key!r} (known: {known})")
        if not _type_ok(value, _SOURCE_KEYS[key]):
            raise ConfigError(
                f"{where}: {label}: {key} must be {_expected(_SOURCE_KEYS[key])}, not {value!r}"
            )
    for key in _REQUIRED_SOURCE_KEYS:
        if key not in raw:
            raise ConfigError(f"{where}: {label}: missing required key {key!r}")
    if not _ID_RE.match(raw["id"]):
        raise ConfigError(
            f"{where}: {label}: id must be lowercase letters, digits, '-' or '_' "
            f"(got {raw['id']!r})"
        )
    feeds = raw["feed"] if isinstance(raw["feed"], list) else [raw["feed"]]
    if not feeds:
        raise ConfigError(f"{where}: {label}: feed must name at least one URL")
    for url in feeds:
        if not isinstance(url, str) or not is_http_url(url):
            raise ConfigError(f"{where}: {label}: feed {url!r} is not an http(s) URL")
    if not is_http_url(raw["homepage"]):
        raise ConfigError(f"{where}: {label}: homepage {raw['homepage']!r} is not an http(s) URL")
    if raw["lean"] not in LEANS:
        raise ConfigError(
            f"{where}: {label}: unknown lean {raw['lean']!r} (use one of: {', '.join(LEANS)})"
        )
    kind = raw.get("kind", "news")
    if kind not in KINDS:
        raise ConfigError(f"{where}: {label}: unknown kind {kind!r} (use news or opinion)")
    interval = raw.get("interval")
    if interval is not None and interval < 1:
        raise ConfigError(f"{where}: {label}: interval must be at least 1 minute")
    select = raw.get("select")
    strip = raw.get("strip", [])
    rules = ([("select", select)] if select is not None else []) + [("strip", c) for c in strip]
    for key, css in rules:
        problem = selector_problem(css)
        if problem:
            raise ConfigError(f"{where}: {label}: {key} {css!r}: {problem}")
    return Source(
        id=raw["id"],
        name=raw["name"].strip(),
        homepage=raw["homepage"],
        feeds=tuple(feeds),
        lean=raw["lean"],
        kind=kind,
        rated_by=raw.get("rated_by", ""),
        interval=interval,
        full_text=raw.get("full_text", True),
        enabled=raw.get("enabled", True),
        select=select,
        strip=tuple(strip),
    )


@lru_cache(maxsize=256)
def css_selector(css: str) -> CSSSelector:
    """``css`` compiled for HTML pages (lxml's cssselect): a content rule's selector, compiled
    once per process whichever page it runs on."""
    return CSSSelector(css, translator="html")


def selector_problem(css: object) -> str | None:
    """Why ``css`` cannot be a content rule's selector, or None when it can."""
    if not isinstance(css, str):
        return f"must be a string, not {css!r}"
    if not css.strip():
        return "is empty"
    try:
        css_selector(css)
    except SelectorError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not a valid CSS selector ({first})"
    return None


def _load_toml(text: str, where: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    for key in data:
        if key not in ("settings", "source", "rewrite", "model", "grouping", "workers"):
            raise ConfigError(
                f"{where}: unknown top-level key {key!r} "
                "(use [settings], [rewrite], [model], [grouping], [workers], [[source]])"
            )
    return data


def parse_rewrite(
    text: str, where: str = DEFAULT_SOURCES, env: Mapping[str, str] | None = None
) -> tuple[RewriteSettings, ModelSettings]:
    """The ``[rewrite]`` and ``[model]`` tables; the model's API key comes from ``env``."""
    data = _load_toml(text, where)
    rewrite = _check_rewrite(data.get("rewrite", {}), where)
    model = _check_model(data.get("model", {}), where)
    if model.api_key_env and env is not None:
        model = dataclasses.replace(model, api_key=env.get(model.api_key_env) or None)
    return rewrite, model


def parse_grouping(text: str, where: str = DEFAULT_SOURCES) -> GroupingSettings:
    """The ``[grouping]`` table; embeddings asked for without the extra is an error here."""
    return _check_grouping(_load_toml(text, where).get("grouping", {}), where)


def parse_sources(text: str, where: str = DEFAULT_SOURCES) -> tuple[Settings, tuple[Source, ...]]:
    """Validate the text of a sources file; raise :class:`ConfigError` on the first problem."""
    data = _load_toml(text, where)
    settings = _check_settings(data.get("settings", {}), where)
    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{where}: no [[source]] entries")
    sources = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_sources, start=1):
        src = _check_source(raw, index, where)
        if src.id in seen:
            raise ConfigError(f"{where}: source {src.id!r}: duplicate id")
        seen.add(src.id)
        sources.append(src)
    return settings, tuple(sources)


def source_toml(source: Source) -> str:
    """``source`` as a ``[[source]]`` table that :func:`parse_sources` reads back the same.

    TOML basic strings take JSON's escapes, so json.dumps quotes any name safely.
    """
    q = json.dumps
    feed = q(source.feeds[0]) if len(source.feeds) == 1 else f"[{', '.join(map(q, source.feeds))}]"
    lines = [
        "[[source]]",
        f"id = {q(source.id)}",
        f"name = {q(source.name)}",
        f"homepage = {q(source.homepage)}",
        f"feed = {feed}",
        f"lean = {q(source.lean)}",
        f"kind = {q(source.kind)}",
    ]
    if source.rated_by:
        lines.append(f"rated_by = {q(source.rated_by)}")
    return "\n".join(lines) + "\n"


def load_config(
    sources_path: str | Path = DEFAULT_SOURCES,
    db_url: str = DEFAULT_DB,
    out_dir: str | Path = DEFAULT_OUT,
    allow_private_hosts: bool = False,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate a sources file into a :class:`Config`.

    ``env`` is where the model's API key is looked up (by the name the file gives), and the
    status page's token; without it neither is read.
    """
    path = Path(sources_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    settings, sources = parse_sources(text, str(path))
    rewrite, model = parse_rewrite(text, str(path), env)
    grouping = parse_grouping(text, str(path))
    workers = parse_workers(text, str(path))
    status_token = status_token_from(env or {})
    return Config(
        sources=sources,
        settings=settings,
        sources_path=path,
        db_url=db_url,
        out_dir=Path(out_dir),
        allow_private_hosts=allow_private_hosts,
        rewrite=rewrite,
        model=model,
        grouping=grouping,
        workers=workers,
        status_token=status_token,
    )


def status_token_from(env: Mapping[str, str]) -> str | None:
    """``BALANCED_NEWS_STATUS_TOKEN``: None when unset or empty; a short one is refused (it
    guards the status page wherever the server is reachable, so it must not be guessable)."""
    token = (env.get(ENV_STATUS_TOKEN) or "").strip()
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{ENV_STATUS_TOKEN}: too short ({len(token)} characters; use at least "
            f"{MIN_TOKEN_CHARS}, e.g. the output of `openssl rand -hex 32`)"
        )
    return token or None


# --- command-line and environment options ------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command takes; each also has an environment variable."""
    parser.add_argument(
        "--sources",
        metavar="FILE",
        help=f"sources file (env {ENV_SOURCES}; default {DEFAULT_SOURCES})",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help=f"SQLAlchemy database URL (env {ENV_DB}; default {DEFAULT_DB})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=f"where feeds are published (env {ENV_OUT}; default {DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--allow-private-hosts",
        action="store_true",
        default=None,
        help="allow loopback and private addresses, for tests and local sources "
        f"(env {ENV_ALLOW_PRIVATE}=1)",
    )


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def private_hosts_allowed(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> bool:
    """``--allow-private-hosts``, else ``BALANCED_NEWS_ALLOW_PRIVATE_HOSTS``, else no."""
    env = os.environ if env is None else env
    if args.allow_private_hosts is not None:
        return bool(args.allow_private_hosts)
    return _env_flag(env.get(ENV_ALLOW_PRIVATE))


def db_url_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str:
    """``--db``, else ``BALANCED_NEWS_DB``, else the default: the database a command uses,
    known even when the rest of the configuration is not (to name it in an error)."""
    env = os.environ if env is None else env
    return getattr(args, "db", None) or env.get(ENV_DB) or DEFAULT_DB


ORIGIN_FILE = ".balanced-news.json"  # beside the output: what wrote it (never served: dotted)


def read_origin(out_dir: Path) -> dict[str, str]:
    """The database URL and sources file that last published into ``out_dir`` (as
    ``Pipeline.publish`` records them), or {} when nothing recorded them or the record is
    unreadable. A URL whose password was hidden is left out: it cannot be used."""
    try:
        data = json.loads((out_dir / ORIGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    origin = {k: v for k, v in data.items() if k in ("db", "sources") and isinstance(v, str)}
    if "***" in origin.get("db", ""):
        del origin["db"]
    return origin


def config_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None, *, origin: bool = False
) -> Config:
    """Options first, then environment, then (with ``origin``: for commands that read what
    was published) the record beside the output folder, then defaults; then load and
    validate the sources file."""
    env = os.environ if env is None else env
    out_dir = args.out or env.get(ENV_OUT) or DEFAULT_OUT
    recorded = read_origin(Path(out_dir)) if origin else {}
    sources = args.sources or env.get(ENV_SOURCES) or recorded.get("sources") or DEFAULT_SOURCES
    db_url = args.db or env.get(ENV_DB) or recorded.get("db") or DEFAULT_DB
    return load_config(sources, db_url, out_dir, private_hosts_allowed(args, env), env)
