"""The long-running scheduler: ``python scheduler.py`` polls until stopped; ``--once`` runs one
full cycle and exits (0 even when some sources failed; 2 when the configuration is bad).

The same as ``balanced-news run [--once]``, startable from a checkout.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aggregator import schedule
from aggregator.config import ConfigError, add_common_arguments, config_from_args
from aggregator.db import SchemaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scheduler.py",
        description="Poll every source at its interval and publish the balanced feed after "
        "changes, until Ctrl-C or SIGTERM.",
    )
    add_common_arguments(parser)
    parser.add_argument("--once", action="store_true", help="run one full cycle and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or not args.once else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"scheduler.py: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return schedule.run(config, args.once)
    except SchemaError as exc:
        print(f"scheduler.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
