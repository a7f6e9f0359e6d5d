"""``serve``: the published folder over HTTP."""

from __future__ import annotations

import argparse
import sys

from aggregator.config import ENV_STATUS_TOKEN, Config, config_from_args
from aggregator.errors import ConfigError
from aggregator.store import connect


def serve_config(args: argparse.Namespace) -> Config:
    """What ``serve`` serves: the output folder (which must exist), with the database and
    sources file that published into it (recorded beside it) unless --db/--sources or their
    environment variables say otherwise."""
    config = config_from_args(args, origin=True)
    if not config.out_dir.is_dir():
        raise ConfigError(
            f"output folder {config.out_dir}: no such folder (publish into it first: "
            f"balanced-news run --once --out {config.out_dir})"
        )
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    from aggregator import serve

    config = serve_config(args)
    # an out-of-date schema is refused now, not per request
    connect(config.db_url, writable=False).dispose()
    print(f"Serving {config.out_dir}/ at http://{args.host}:{args.port}/", file=sys.stderr)
    who = (
        f"loopback clients, and requests sending {ENV_STATUS_TOKEN}"
        if config.status_token
        else f"loopback clients only; set {ENV_STATUS_TOKEN} to open it to others"
    )
    print(f"Status page: /status ({who})", file=sys.stderr)
    serve.serve(config, args.host, args.port)
    return 0
