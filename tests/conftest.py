"""Shared test parts: a real loopback web serving tests/fixtures/site, configs that point at it,
fault behaviours for any path, and the Atom schema from ../shared when it is there."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from aggregator.config import Config, Source, load_config
from aggregator.demo import SampleWeb

FIXTURES = Path(__file__).parent / "fixtures"
SITE = FIXTURES / "site"
SHARED = Path(__file__).resolve().parents[2] / "shared"
ATOM_RNG = SHARED / "schemas" / "atom.rng"

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def web() -> Iterator[SampleWeb]:
    """The fixture outlets on a free 127.0.0.1 port, fresh for each test."""
    with SampleWeb(SITE) as server:
        yield server


def write_sources(web: SampleWeb, folder: Path, name: str = "sources.toml") -> Path:
    """tests/fixtures/<name> with the loopback address filled in, written into ``folder``."""
    text = web.render((FIXTURES / name).read_text(encoding="utf-8"))
    path = folder / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def make_config(
    web: SampleWeb,
    folder: Path,
    *,
    extra: tuple[Source, ...] = (),
    allow_private_hosts: bool = True,
    **settings: object,
) -> Config:
    """A config for the fixture outlets with a real SQLite file and output folder in ``folder``."""
    config = load_config(
        write_sources(web, folder),
        db_url=f"sqlite:///{folder / 'test.db'}",
        out_dir=folder / "feeds",
        allow_private_hosts=allow_private_hosts,
    )
    return dataclasses.replace(
        config,
        sources=config.sources + extra,
        settings=dataclasses.replace(config.settings, **settings),
    )


@pytest.fixture
def config(web: SampleWeb, tmp_path: Path) -> Config:
    return make_config(web, tmp_path)


def extra_source(web: SampleWeb, source_id: str, path: str, lean: str = "center") -> Source:
    """One more source whose feed is ``path`` on the fixture web (usually a fault route)."""
    return Source(
        id=source_id,
        name=f"{source_id.title()} News",
        homepage=web.url(f"{source_id}/"),
        feeds=(web.url(path),),
        lean=lean,
    )


# --- fault behaviours for SampleWeb.routes ------------------------------------------------------


def respond(status: int, body: bytes = b"", content_type: str = "text/plain", **headers: str):
    """A route answering ``status`` with ``body``."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(body)

    return handler


def hang(seconds: float) -> Handler:
    """A route that says nothing for ``seconds`` (longer than the client's read timeout)."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        respond(200, b"late")(h)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, Location=location)


def trickle(body: bytes, every: float, content_type: str = "application/rss+xml") -> Handler:
    """A route that sends ``body`` one byte per ``every`` seconds (never idle long enough for a
    read timeout: only a total timeout stops it)."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(every)
        except OSError:  # the client gave up, as it should
            return

    return handler


def hang_mid_body(body: bytes, seconds: float) -> Handler:
    """A route that sends half of ``body`` and then says nothing for ``seconds``."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            time.sleep(seconds)
            h.wfile.write(body[len(body) // 2 :])
        except OSError:
            return

    return handler


# --- Atom validity ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def atom_schema():  # -> lxml.etree.RelaxNG
    """The RFC 4287 RELAX NG schema from ../shared; skips where ../shared is absent."""
    if not ATOM_RNG.is_file():
        pytest.skip(f"Atom schema not found at {ATOM_RNG} (../shared is absent outside CI)")
    from lxml import etree

    return etree.RelaxNG(etree.parse(str(ATOM_RNG)))


def assert_valid_atom(schema, data: bytes) -> None:  # noqa: ANN001 - lxml's type
    from lxml import etree

    doc = etree.fromstring(data)
    if not schema.validate(doc):
        raise AssertionError(f"Atom feed is not schema-valid: {schema.error_log}")
