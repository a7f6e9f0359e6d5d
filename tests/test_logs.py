"""Log lines as an operator reads them: a timestamp and a level on each, libraries quiet
unless -v, one line per source per poll, and JSON for log shippers."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator import logs
from aggregator.cli import main
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from tests.conftest import extra_source, make_config, respond, write_sources

STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logs.setup(logging.WARNING)  # back to standard error for whoever comes next


def poll_logged(web: SampleWeb, tmp_path: Path, stream: io.StringIO, **setup: object) -> str:
    web.routes["/err/rss.xml"] = respond(500, b"Internal Server Error")
    config = make_config(web, tmp_path, extra=(extra_source(web, "err", "err/rss.xml"),))
    logs.setup(logging.INFO, stream=stream, **setup)  # type: ignore[arg-type]
    with Pipeline(config) as pipeline:
        pipeline.poll()
        pipeline.extract_pending()
    return stream.getvalue()


def test_every_line_has_a_time_and_a_level_and_libraries_keep_quiet(
    web: SampleWeb, tmp_path: Path, stream: io.StringIO
) -> None:
    text = poll_logged(web, tmp_path, stream)
    lines = text.splitlines()
    assert lines and all(STAMPED.match(line) for line in lines), text
    assert "HTTP Request" not in text, "httpx's line per request"
    per_source = Counter(
        m.group(1) for line in lines if (m := re.search(r"INFO \S+: source (\S+?):", line))
    )
    assert set(per_source) == {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert max(per_source.values()) == 1, "at most one INFO line per source per poll"
    assert sum("WARNING" in line and "source err " in line for line in lines) == 1


def test_verbose_lets_the_libraries_speak(
    web: SampleWeb, tmp_path: Path, stream: io.StringIO
) -> None:
    text = poll_logged(web, tmp_path, stream, verbose=True)
    assert "INFO httpx: HTTP Request: GET" in text


def test_json_lines_for_log_shippers(web: SampleWeb, tmp_path: Path, stream: io.StringIO) -> None:
    lines = poll_logged(web, tmp_path, stream, fmt="json").splitlines()
    records = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert all(r["time"].endswith("+00:00") for r in records)
    warning = next(r for r in records if r["level"] == "WARNING")
    assert warning["message"] == "source err (Err News): HTTP 500 Internal Server Error"


def test_the_command_line_takes_the_log_format(web: SampleWeb, tmp_path: Path, capsys) -> None:
    web.routes["/err/rss.xml"] = respond(500, b"Internal Server Error")
    sources = write_sources(web, tmp_path)
    with sources.open("a", encoding="utf-8") as f:
        f.write(
            f'\n[[source]]\nid = "err"\nname = "Err News"\nhomepage = "{web.url("err/")}"\n'
            f'feed = "{web.url("err/rss.xml")}"\nlean = "center"\n'
        )
    args = ["--sources", str(sources), "--db", f"sqlite:///{tmp_path / 'j.db'}"]
    assert main(["poll", *args, "--allow-private-hosts", "--log-format", "json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(json.loads(line)["level"] == "WARNING" for line in err)
