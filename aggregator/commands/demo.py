"""``demo``: the bundled sample outlets served on 127.0.0.1, and one full cycle over them."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from aggregator import demo
from aggregator.commands.cycle import print_report
from aggregator.config import Config, parse_sources
from aggregator.errors import ConfigError, Unavailable
from aggregator.pipeline import Pipeline
from aggregator.progress import TerminalProgress
from aggregator.publish import write_atomic
from aggregator.publish.files import check_folder
from aggregator.store import connect

DEMO_SOURCES_FILE = "demo-sources.toml"


def cmd_demo(args: argparse.Namespace) -> int:
    if args.sources:
        raise ConfigError(
            "demo: --sources is not used: the demo polls its own sample outlets; "
            f"for your sources run `balanced-news run --once --sources {args.sources}`"
        )
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="balanced-news-demo-"))
    # A --db at an old schema is refused before anything is made; the default lives in --out.
    db_url = args.db or f"sqlite:///{out.resolve() / 'demo.db'}"
    engine = connect(db_url) if args.db else None
    check_folder(out)
    engine = engine or connect(db_url)
    try:
        web = demo.SampleWeb(demo.SITE, port=args.port)
    except OSError as exc:
        raise Unavailable(
            f"demo: cannot serve the sample outlets on 127.0.0.1:{args.port}: "
            f"{exc.strerror or exc} (choose another with --port)"
        ) from None
    with web:
        # Written out with the sample web's address: serve reads it, and a person can too.
        sources_path = out / DEMO_SOURCES_FILE
        write_atomic(sources_path, web.render(demo.SOURCES.read_text("utf-8")).encode())
        settings, sources = parse_sources(sources_path.read_text("utf-8"), str(sources_path))
        config = Config(
            sources=sources,
            settings=settings,
            sources_path=sources_path,
            db_url=db_url,
            out_dir=out,
            allow_private_hosts=True,  # the sample outlets live on 127.0.0.1
        )
        print(f"Serving {len(sources)} sample outlets at {web.base}/ ...", file=sys.stderr)
        progress = TerminalProgress()
        with Pipeline(config, engine, progress=progress) as pipeline:
            report = pipeline.run_cycle()
        progress.close()
    engine.dispose()
    print_report(report)
    print(f"See it: balanced-news serve --out {out}  (then open http://127.0.0.1:8000/)")
    return 0
