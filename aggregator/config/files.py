"""What is written beside the configuration: the record of who published into an output folder
(read back by ``serve``), and a source as a ``[[source]]`` table (``sources import``)."""

from __future__ import annotations

import json
from pathlib import Path

from aggregator.config.schema import Source

ORIGIN_FILE = ".balanced-news.json"  # beside the output: what wrote it (never served: dotted)


def read_origin(out_dir: Path) -> dict[str, str]:
    """The database URL and sources file that last published into ``out_dir`` (as
    ``Pipeline.publish`` records them), or {} when nothing recorded them or the record is
    unreadable. A URL whose password was hidden is left out: it cannot be used."""
    try:
        data = json.loads((out_dir / ORIGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    origin = {k: v for k, v in data.items() if k in ("db", "sources") and isinstance(v, str)}
    if "***" in origin.get("db", ""):
        del origin["db"]
    return origin


def source_toml(source: Source) -> str:
    """``source`` as a ``[[source]]`` table that :func:`parse_sources` reads back the same.

    TOML basic strings take JSON's escapes, so json.dumps quotes any name safely.
    """
    q = json.dumps
    feed = q(source.feeds[0]) if len(source.feeds) == 1 else f"[{', '.join(map(q, source.feeds))}]"
    lines = [
        "[[source]]",
        f"id = {q(source.id)}",
        f"name = {q(source.name)}",
        f"homepage = {q(source.homepage)}",
        f"feed = {feed}",
        f"lean = {q(source.lean)}",
        f"kind = {q(source.kind)}",
    ]
    if source.rated_by:
        lines.append(f"rated_by = {q(source.rated_by)}")
    if source.owner:
        lines.append(f"owner = {q(source.owner)}")
        lines.append(f"owner_source = {q(source.owner_source)}")
    return "\n".join(lines) + "\n"
