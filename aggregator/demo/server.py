"""A small static web server on 127.0.0.1 for the bundled sample outlets (and our tests).

It serves a folder as a publisher would: ``{{BASE}}`` in text files becomes the server's own
address, feeds get an ETag and a Last-Modified, and conditional requests get a 304. Tests add
special behaviours (slow, broken, failing) per path through ``routes``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

PLACEHOLDER = "{{BASE}}"
Route = Callable[[BaseHTTPRequestHandler], None]
_TYPES = {".xml": "application/xml", ".atom": "application/atom+xml", ".rss": "application/rss+xml"}
_LAST_MODIFIED = formatdate(1_764_000_000, usegmt=True)  # fixed: the sample web never changes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a poller opens many connections at once; 5 would drop SYNs


class SampleWeb:
    """Serve ``root`` on a free loopback port; use as a context manager."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers), for tests
        self._lock = threading.Lock()
        handler = self._handler_class()
        self._server = _Server((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def render(self, text: str) -> str:
        """Replace the placeholder with this server's address."""
        return text.replace(PLACEHOLDER, self.base)

    def start(self) -> SampleWeb:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SampleWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def seen(self, path: str) -> list[dict[str, str]]:
        """Headers of each request made for ``path`` so far."""
        with self._lock:
            return [h for p, h in self.requests if p == path]

    def body(self, path: str) -> bytes | None:
        """The bytes served for ``path`` (placeholder filled in), or None when absent."""
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()):
            return None
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return None
        data = target.read_bytes()
        if _is_text(target):
            data = self.render(data.decode("utf-8")).encode("utf-8")
        return data

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "SampleWeb/1.0"

            def log_message(self, format: str, *args: object) -> None:  # quiet by default
                return None

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = urlsplit(self.path).path
                with web._lock:
                    web.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                route = web.routes.get(path)
                if route is not None:
                    route(self)
                    return
                data = web.body(path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-Modified-Since") == _LAST_MODIFIED
                    and not self.headers.get("If-None-Match")
                ):
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", _content_type(path))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", _LAST_MODIFIED)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                """Only routes answer a POST (fake APIs, a WebSub hub): the site is static."""
                path = urlsplit(self.path).path
                with web._lock:
                    web.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                route = web.routes.get(path)
                if route is None:
                    self.send_error(405, "Method Not Allowed")
                    return
                route(self)

        return Handler


def _is_text(path: Path) -> bool:
    return path.suffix in (".xml", ".html", ".htm", ".atom", ".rss", ".txt", ".json", ".toml")


def _content_type(path: str) -> str:
    suffix = Path(path).suffix
    if suffix in _TYPES:
        return _TYPES[suffix] + "; charset=utf-8"
    guessed = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


SITE = Path(__file__).with_name("site")
SOURCES = Path(__file__).with_name("sources.toml")
