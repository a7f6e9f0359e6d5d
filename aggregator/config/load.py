"""Read and validate a sources file, once: the TOML read once and validated against the schema
(:mod:`aggregator.config.schema`) in one pass; every mistake is a :class:`ConfigError` of one
line naming the file, the table or source, and the problem (:mod:`aggregator.config.mistakes`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from aggregator.config.environment import status_token_from
from aggregator.config.mistakes import first_mistake
from aggregator.config.schema import (
    DEFAULT_DB,
    DEFAULT_OUT,
    DEFAULT_SOURCES,
    Config,
    Settings,
    Source,
    SourcesFile,
    WorkerSettings,
)
from aggregator.errors import ConfigError

T = TypeVar("T")


def _toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None


def _validated(kind: type[T], raw: Any, data: Mapping[str, Any], where: str, *at: str | int) -> T:
    """``raw`` (the part of the file ``data`` at ``at``) validated as ``kind``."""
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError as exc:
        raise first_mistake(exc, data, where, at) from None


def parse_file(text: str, where: str = DEFAULT_SOURCES) -> SourcesFile:
    """The text of a sources file, validated whole; :class:`ConfigError` on its first mistake."""
    data = _toml(text, where)
    return _validated(SourcesFile, data, data, where)


def parse_sources(text: str, where: str = DEFAULT_SOURCES) -> tuple[Settings, tuple[Source, ...]]:
    """The ``[settings]`` and ``[[source]]`` of a sources file (the whole file validated)."""
    parsed = parse_file(text, where)
    return parsed.settings, parsed.sources


def source_of(table: Mapping[str, Any], where: str = DEFAULT_SOURCES) -> Source:
    """One ``[[source]]`` table (its keys as the file spells them), validated as the file's
    are: a source made from what another file said (``sources import``) is checked, and its
    mistake told, exactly as if the sources file held it."""
    return _validated(Source, dict(table), {"source": [table]}, where, "source", 0)


def parse_workers(text: str, where: str = DEFAULT_SOURCES) -> WorkerSettings:
    """The ``[workers]`` table alone (``balanced-news worker``'s checks, without sources)."""
    data = _toml(text, where)
    return _validated(WorkerSettings, data.get("workers", {}), data, where, "workers")


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
    parsed = parse_file(text, str(path))
    model = parsed.model
    if model.api_key_env and env is not None:
        model = dataclasses.replace(model, api_key=env.get(model.api_key_env) or None)
    return Config(
        sources=parsed.sources,
        settings=parsed.settings,
        sources_path=path,
        db_url=db_url,
        out_dir=Path(out_dir),
        allow_private_hosts=allow_private_hosts,
        rewrite=parsed.rewrite,
        model=model,
        grouping=parsed.grouping,
        workers=parsed.workers,
        status_token=status_token_from(env or {}),
    )
