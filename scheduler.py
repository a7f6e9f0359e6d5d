"""The long-running scheduler: ``python scheduler.py`` polls until stopped; ``--once`` runs one
full cycle and exits (0 even when some sources failed; 2 when the configuration is bad, 1 when
the database or the output folder cannot be used).

The same as ``balanced-news run [--once]`` (it is that command), startable from a checkout.
"""

from __future__ import annotations

import sys

from aggregator.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
