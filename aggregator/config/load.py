"""Read and validate a sources file, once: every mistake is a :class:`ConfigError` of one line
naming the file, the table or source, and the problem."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aggregator import embeddings
from aggregator.config.checks import ENV_NAME_RE, ID_RE, is_http_url, selector_problem
from aggregator.config.environment import status_token_from
from aggregator.config.schema import (
    DEFAULT_DB,
    DEFAULT_OUT,
    DEFAULT_SOURCES,
    KINDS,
    LEANS,
    QUEUE_CONNECTIONS,
    Config,
    GroupingSettings,
    ModelSettings,
    RewriteSettings,
    Settings,
    Source,
    WorkerSettings,
)
from aggregator.errors import ConfigError

_SOURCE_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "homepage": (str,),
    "feed": (str, list),
    "lean": (str,),
    "kind": (str,),
    "rated_by": (str,),
    "owner": (str,),
    "owner_source": (str,),
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
    if values.get("api_key_env") and not ENV_NAME_RE.match(values["api_key_env"]):
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


def _check_source_keys(raw: Mapping[str, Any], at: str) -> None:
    """A source's keys known, of their types, and the required ones there."""
    for key, value in raw.items():
        if key not in _SOURCE_KEYS:
            known = ", ".join(_SOURCE_KEYS)
            raise ConfigError(f"{at}: unknown key {key!r} (known: {known})")
        if not _type_ok(value, _SOURCE_KEYS[key]):
            raise ConfigError(f"{at}: {key} must be {_expected(_SOURCE_KEYS[key])}, not {value!r}")
    for key in _REQUIRED_SOURCE_KEYS:
        if key not in raw:
            raise ConfigError(f"{at}: missing required key {key!r}")


def _check_rules(select: str | None, strip: list[Any], at: str) -> None:
    """A source's content rules: each a CSS selector lxml compiles."""
    rules = ([("select", select)] if select is not None else []) + [("strip", c) for c in strip]
    for key, css in rules:
        problem = selector_problem(css)
        if problem:
            raise ConfigError(f"{at}: {key} {css!r}: {problem}")


def _check_owner(raw: Mapping[str, Any], at: str) -> tuple[str, str]:
    """A source's owner and where that comes from: both or neither, neither blank. The owner's
    spaces are normalised, so one owner spelt alike is one owner."""
    owner = " ".join(raw.get("owner", "").split())
    cited = raw.get("owner_source", "").strip()
    if "owner" in raw and not owner:
        raise ConfigError(f"{at}: owner is empty (leave it out when the owner is not known)")
    if owner and not cited:
        raise ConfigError(
            f"{at}: owner {owner!r} needs owner_source (where the ownership comes from, "
            'e.g. "News Corp, Form 10-K 2024")'
        )
    if cited and not owner:
        raise ConfigError(f"{at}: owner_source without an owner")
    return owner, cited


def _check_source(raw: Any, index: int, where: str) -> Source:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: source #{index} must be a table")
    label = f"source {raw.get('id')!r}" if isinstance(raw.get("id"), str) else f"source #{index}"
    _check_source_keys(raw, f"{where}: {label}")
    if not ID_RE.match(raw["id"]):
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
    _check_rules(select, strip, f"{where}: {label}")
    owner, owner_source = _check_owner(raw, f"{where}: {label}")
    return Source(
        id=raw["id"],
        name=raw["name"].strip(),
        homepage=raw["homepage"],
        feeds=tuple(feeds),
        lean=raw["lean"],
        kind=kind,
        rated_by=raw.get("rated_by", ""),
        owner=owner,
        owner_source=owner_source,
        interval=interval,
        full_text=raw.get("full_text", True),
        enabled=raw.get("enabled", True),
        select=select,
        strip=tuple(strip),
    )


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
