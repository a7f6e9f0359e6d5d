"""Shared test parts: a real loopback web serving tests/fixtures/site, configs that point at it,
fault behaviours for any path, the Atom schema (tests/fixtures/atom.rng), and a fresh database
on the PostgreSQL server when one answers."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import NoReturn

import pytest

from aggregator import embeddings
from aggregator.config import Config, Source, load_config
from aggregator.demo import SampleWeb

FIXTURES = Path(__file__).parent / "fixtures"
SITE = FIXTURES / "site"
SHARED = Path(__file__).resolve().parents[2] / "shared"
ATOM_RNG = FIXTURES / "atom.rng"  # RFC 4287 Appendix B, as XML (see tests/fixtures/README.md)
# CI (CI=true, as .ci/run and most CI services set it) promises PostgreSQL: there a test that
# cannot reach it fails with the reason instead of skipping, so a green run means it ran.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_worker_mode() -> None:
    """Skip the calling test module where procrastinate (worker mode) is not installed; under
    ``CI=true`` fail instead: CI promises the worker mode."""
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        if IN_CI:
            raise
        reason = "procrastinate not installed: pip install -e '.[test]'"
        pytest.skip(reason, allow_module_level=True)


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, which promises what the test needs."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)


# Tests of the optional sentence embeddings (marker ``embeddings``) run where the extra is
# installed; .ci/run runs them in a second venv with BALANCED_NEWS_TEST_EMBEDDINGS=1, where a
# missing extra fails them instead.
_EMBEDDINGS_SKIP = pytest.mark.skipif(
    not embeddings.available() and not os.environ.get("BALANCED_NEWS_TEST_EMBEDDINGS"),
    reason="the embeddings extra is not installed (pip install -e '.[embeddings]')",
)


def needs_embeddings(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test of the embeddings extra (``-m embeddings`` selects them)."""
    return pytest.mark.embeddings(_EMBEDDINGS_SKIP(test))


Handler = Callable[[BaseHTTPRequestHandler], None]

# The PostgreSQL server tests use (.ci/run sets it); where none answers, they skip with the
# reason (fail, in CI).
PG_ADMIN = os.environ.get(
    "BALANCED_NEWS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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


class SilentHost:
    """A host that takes connections, reads their requests and never answers, counting the
    connections still open: a client that gave up has closed its end. A context manager."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self._sock = socket.create_server((host, 0))
        self.base = f"http://{host}:{self._sock.getsockname()[1]}"
        self.opened = 0  # connections accepted
        self.open = 0  # connections the client has not closed yet
        self.changed = threading.Condition()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> SilentHost:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def wait_closed(self, timeout: float = 30) -> bool:
        """Whether every connection is closed within ``timeout`` seconds (a safety net)."""
        with self.changed:
            return self.changed.wait_for(lambda: self.open == 0, timeout)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            with self.changed:
                self.opened += 1
                self.open += 1
                self.changed.notify_all()
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):  # the request, then nothing until the client closes
                    pass
            except OSError:
                pass
        with self.changed:
            self.open -= 1
            self.changed.notify_all()


# --- Atom validity ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def atom_schema():  # -> lxml.etree.RelaxNG
    """The RFC 4287 RELAX NG schema (a copy kept in tests/fixtures: no test skips for it)."""
    from lxml import etree

    return etree.RelaxNG(etree.parse(str(ATOM_RNG)))


def assert_valid_atom(schema, data: bytes) -> None:  # noqa: ANN001 - lxml's type
    from lxml import etree

    doc = etree.fromstring(data)
    if not schema.validate(doc):
        raise AssertionError(f"Atom feed is not schema-valid: {schema.error_log}")


# --- hostile input (tests/fixtures/xss) ---------------------------------------------------------

XSS_PAYLOADS = [
    line
    for line in (FIXTURES / "xss" / "payloads.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
# Elements that run code, load active content, navigate or submit: never in what we publish.
ACTIVE_TAGS = frozenset(
    "script style iframe frame frameset object embed applet svg math base form input button "
    "textarea select keygen isindex noscript template xmp marquee video audio source".split()
)
URL_ATTRIBUTES = frozenset(
    "href src action formaction background cite data poster srcset xlink:href lowsrc".split()
)


def _scheme_of(value: str) -> str:
    """The scheme a browser would see: controls and whitespace are ignored inside it."""
    import re

    squeezed = re.sub(r"[\x00-\x20\x7f]", "", value).lower()
    return squeezed.split(":", 1)[0] if ":" in squeezed else ""


def active_parts(html: str, page: bool = False) -> list[str]:
    """Everything in ``html`` that could run script; [] when inert.

    ``page`` allows what our own page head needs (meta charset/viewport/referrer and
    stylesheet/alternate links), which a fragment must not have at all.
    """
    import lxml.html

    if not html.strip():
        return []
    root = (
        lxml.html.document_fromstring(html)
        if page
        else lxml.html.fragment_fromstring(html, create_parent="div")
    )
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag in ACTIVE_TAGS:
            found.append(f"<{tag}>")
        if tag == "meta" and (not page or el.get("http-equiv")):
            found.append("<meta http-equiv>" if el.get("http-equiv") else "<meta>")
        if tag == "link" and (not page or el.get("rel") not in ("stylesheet", "alternate")):
            found.append("<link>")
        for name, value in el.attrib.items():
            name = name.lower()
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                found.append(f"{tag}@{name}")
            if name in URL_ATTRIBUTES and _scheme_of(value) in ("javascript", "data", "vbscript"):
                found.append(f"{tag}@{name}={value[:40]}")
    return found


def assert_inert(html: str, where: str, page: bool = False) -> None:
    found = active_parts(html, page)
    assert not found, f"{where}: active content survived: {found}"


def hostile_outlet(web: SampleWeb, source_id: str = "hostile") -> Source:
    """An outlet on the fixture web whose feed and article pages carry every XSS payload.

    Item ``i`` has payload ``i`` in its title, author, category, summary and content; its
    article page has payloads ``i..i+3`` raw in the markup and again as visible text, in the
    title, author and body. Some items link to ``javascript:`` and ``data:`` URLs.
    """
    from html import escape

    from lxml import etree

    content_ns = "http://purl.org/rss/1.0/modules/content/"
    rss = etree.Element("rss", version="2.0", nsmap={"content": content_ns})
    channel = etree.SubElement(rss, "channel")
    etree.SubElement(channel, "title").text = XSS_PAYLOADS[0]
    etree.SubElement(channel, "link").text = web.url(f"{source_id}/")
    etree.SubElement(channel, "description").text = XSS_PAYLOADS[1]
    bad_links = ("javascript:alert(document.domain)", "data:text/html,<script>alert(1)</script>")
    n = len(XSS_PAYLOADS)
    for i, payload in enumerate(XSS_PAYLOADS):
        path = f"/{source_id}/articles/{i}.html"
        item = etree.SubElement(channel, "item")
        etree.SubElement(item, "title").text = f"Quillon zoning board report {i} {payload}"
        link = bad_links[i % 2] if i % 10 == 9 else web.url(path)
        etree.SubElement(item, "link").text = link
        etree.SubElement(item, "guid", isPermaLink="false").text = f"{source_id}-{i}"
        etree.SubElement(item, "author").text = f"desk@hostile.example ({payload})"
        etree.SubElement(item, "category").text = payload
        etree.SubElement(item, "description").text = f"Council members said {payload} today."
        etree.SubElement(
            item, f"{{{content_ns}}}encoded"
        ).text = f"<p>The Quillon zoning board met. {payload}</p><p>{XSS_PAYLOADS[(i + 1) % n]}</p>"
        etree.SubElement(
            item, "pubDate"
        ).text = f"Wed, 04 Nov 2026 {10 + i % 12:02d}:{i % 60:02d}:00 GMT"
        nearby = [XSS_PAYLOADS[(i + k) % n] for k in range(4)]
        body = "".join(
            f"<p>The Quillon zoning board heard testimony number {k} about the "
            f"warehouse permit and the rail spur. {raw} Residents quoted the notice "
            f"{escape(raw)} in full before the vote on the permit.</p>"
            for k, raw in enumerate(nearby)
        )
        page = (
            f"<!DOCTYPE html><html><head><title>{payload}</title>"
            f'<meta name="author" content="{escape(payload)}"></head><body><article>'
            f"<h1>Quillon zoning board report {i} {escape(payload)}</h1>{body}</article>"
            "</body></html>"
        )
        web.routes[path] = respond(200, page.encode(), "text/html; charset=utf-8")
    feed = etree.tostring(rss, xml_declaration=True, encoding="UTF-8")
    web.routes[f"/{source_id}/rss.xml"] = respond(200, feed, "application/rss+xml")
    return Source(
        id=source_id,
        name="Hostile Wire",
        homepage=web.url(f"{source_id}/"),
        feeds=(web.url(f"{source_id}/rss.xml"),),
        lean="right",
    )


def free_port() -> int:
    """A 127.0.0.1 port nobody listens on (for refused connections, or a server to start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def silent_address(host: str = "127.0.0.2") -> Iterator[int]:
    """A port on ``host`` where connecting hangs, as on an address that drops packets: a
    listener whose tiny backlog is already full, so the kernel ignores further SYNs."""
    with socket.socket() as server:
        server.bind((host, 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                filler.connect_ex((host, port))
            time.sleep(0.1)
            yield port
        finally:
            for filler in fillers:
                filler.close()


# --- our own server ------------------------------------------------------------------------------


@contextmanager
def serving(app, host: str = "127.0.0.1") -> Iterator[str]:  # noqa: ANN001 - any ASGI app
    """Run ``app`` on a real uvicorn server on a free port of ``host``; yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def outward_address() -> str | None:
    """This machine's address on its way out (not loopback), or None when it has none: a
    client connecting from it is, to a server here, a client from elsewhere."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


# --- a real PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("PostgreSQL driver not installed (pip install -e '.[postgres]')")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bn_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server, bad credentials, no right to create: say which
        admin.dispose()
        unavailable(f"PostgreSQL not usable at {PG_ADMIN}: {str(exc).splitlines()[0]}")
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))
