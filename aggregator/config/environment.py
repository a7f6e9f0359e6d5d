"""The environment variables a run reads, and what they mean: where things live, whether private
hosts may be polled, and the status page's token."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from aggregator.config.schema import DEFAULT_DB
from aggregator.errors import ConfigError

ENV_SOURCES = "BALANCED_NEWS_SOURCES"
ENV_DB = "BALANCED_NEWS_DB"
ENV_OUT = "BALANCED_NEWS_OUT"
ENV_ALLOW_PRIVATE = "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS"
ENV_STATUS_TOKEN = "BALANCED_NEWS_STATUS_TOKEN"
MIN_TOKEN_CHARS = 16


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
