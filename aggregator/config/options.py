"""The options every command takes, and how a command's :class:`Config` is found from them:
options first, then the environment, then the origin record, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from aggregator.config.environment import (
    ENV_ALLOW_PRIVATE,
    ENV_DB,
    ENV_OUT,
    ENV_SOURCES,
    private_hosts_allowed,
)
from aggregator.config.files import read_origin
from aggregator.config.load import load_config
from aggregator.config.schema import DEFAULT_DB, DEFAULT_OUT, DEFAULT_SOURCES, Config


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
