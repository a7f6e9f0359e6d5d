"""``extract``: what article extraction finds on one page, to debug a site."""

from __future__ import annotations

import argparse
import json
import re

from aggregator import extract
from aggregator.commands import read_given
from aggregator.config import Source, config_from_args, private_hosts_allowed
from aggregator.errors import ConfigError, ExtractionError, FetchError, UsageError
from aggregator.fetch import Fetcher
from aggregator.pipeline import PAGE_ACCEPT


def cmd_extract(args: argparse.Namespace) -> int:
    target: str = args.target
    rules = _source_rules(args) if args.source else None
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", target)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise UsageError(
            f"extract {target}: cannot read {scheme.group(1)}:// URLs "
            "(give an http(s) URL or a file)"
        )
    if scheme:
        with Fetcher(allow_private_hosts=private_hosts_allowed(args)) as fetcher:
            res = fetcher.get(target, accept=PAGE_ACCEPT)
        if res.error:
            raise FetchError(f"{target}: {res.error}")
        html, url = extract.decode_page(res.content or b"", res.content_type), res.final_url
    else:
        html, url = extract.decode_page(read_given(target)), None
    if rules is not None:
        html = extract.strip_elements(html, rules.strip)
    try:
        found = extract.extract_article(html, url, select=rules.select if rules else None)
    except ExtractionError as exc:
        raise ExtractionError(f"{target}: {exc}") from None
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    else:
        for key, value in found.as_dict().items():
            if key != "text":
                print(f"{key + ':':<8} {value or '-'}")
        print()
        print(found.text)
    return 0


def _source_rules(args: argparse.Namespace) -> Source:
    """The source ``extract --source`` names, for its content rules."""
    config = config_from_args(args)
    try:
        return config.source(args.source)
    except KeyError:
        raise ConfigError(f"{config.sources_path}: no source {args.source!r}") from None
