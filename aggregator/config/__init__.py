"""Load and validate ``sources.toml`` and the run-time options, once.

Nothing else in the package reads TOML or environment variables: every other module gets the
typed :class:`Config` built here, so a typo is caught before anything runs and reported in one
line that names the file, the source and the problem.

One module per concern: ``schema`` (one set of frozen pydantic dataclasses: the typed values,
their bounds and defaults, and each stage's own settings), ``load`` (the sources file read once
and validated against it), ``mistakes`` (pydantic's errors as the one line an operator reads),
``checks`` (single values: URLs, ids, CSS selectors), ``environment`` (the environment
variables), ``options`` (the options every command takes, and a command's configuration found
from them), ``files`` (the origin record beside the output, and the ``[[source]]`` writer).
``ConfigError`` and ``Unavailable`` are :mod:`aggregator.errors`'.
"""

from __future__ import annotations

from aggregator.config.checks import css_selector, is_http_url, selector_problem
from aggregator.config.environment import (
    ENV_ALLOW_PRIVATE,
    ENV_DB,
    ENV_OUT,
    ENV_SOURCES,
    ENV_STATUS_TOKEN,
    MIN_TOKEN_CHARS,
    db_url_from_args,
    private_hosts_allowed,
    status_token_from,
)
from aggregator.config.files import ORIGIN_FILE, read_origin, source_toml
from aggregator.config.load import (
    load_config,
    parse_file,
    parse_sources,
    parse_workers,
    source_of,
)
from aggregator.config.options import add_common_arguments, config_from_args
from aggregator.config.schema import (
    DEFAULT_DB,
    DEFAULT_OUT,
    DEFAULT_SOURCES,
    KINDS,
    QUEUE_CONNECTIONS,
    Config,
    ExtractSettings,
    FetchSettings,
    GroupingSettings,
    HttpSettings,
    ModelSettings,
    PublishSettings,
    RewriteSettings,
    Settings,
    Source,
    SourcesFile,
    WorkerSettings,
)
from aggregator.errors import ConfigError, Unavailable

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_OUT",
    "DEFAULT_SOURCES",
    "ENV_ALLOW_PRIVATE",
    "ENV_DB",
    "ENV_OUT",
    "ENV_SOURCES",
    "ENV_STATUS_TOKEN",
    "KINDS",
    "MIN_TOKEN_CHARS",
    "ORIGIN_FILE",
    "QUEUE_CONNECTIONS",
    "Config",
    "ConfigError",
    "ExtractSettings",
    "FetchSettings",
    "GroupingSettings",
    "HttpSettings",
    "ModelSettings",
    "PublishSettings",
    "RewriteSettings",
    "Settings",
    "Source",
    "SourcesFile",
    "Unavailable",
    "WorkerSettings",
    "add_common_arguments",
    "config_from_args",
    "css_selector",
    "db_url_from_args",
    "is_http_url",
    "load_config",
    "parse_file",
    "parse_sources",
    "parse_workers",
    "private_hosts_allowed",
    "read_origin",
    "selector_problem",
    "source_of",
    "source_toml",
    "status_token_from",
]
