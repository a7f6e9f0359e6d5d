"""``balanced-news serve``: the published files over HTTP, plus /healthz, /metrics and the
operator's /status (``aggregator/status.py``: loopback or a token only).

Starlette on uvicorn. Files are served from the output folder only, and only the kinds we
publish (feeds, pages, stylesheet, OPML): never the database, temporary files or anything
dotted. Each file is read once per change and kept in memory with its ETag and a gzip copy, so
a conditional GET costs one ``stat`` and answers 304 without touching the disk's contents.
Pages go out with a strict Content-Security-Policy: we publish no script, so none may run.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aggregator import status, statuspage
from aggregator.config import ENV_STATUS_TOKEN, Config
from aggregator.errors import SchemaError, Unavailable
from aggregator.models import Health, Metrics
from aggregator.pipeline.publishing import Publishing, publishing_of
from aggregator.store import Store, connect, utcnow

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
GZIP_MIN_BYTES = 512
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' https: http:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
CACHE_CONTROL = "public, max-age=60"
PRIVATE = {"cache-control": "no-store", "x-robots-tag": "noindex", **SECURITY_HEADERS}
REFUSED = {
    "token": (
        401,
        "the status page needs its token: send Authorization: Bearer TOKEN (or ?token=TOKEN)\n",
    ),
    "local": (
        403,
        "the status page answers loopback clients only "
        f"(set {ENV_STATUS_TOKEN} to open it to others with that token)\n",
    ),
}


@dataclass(frozen=True)
class StaticFile:
    """One published file as served: both encodings and their validators, computed once."""

    body: bytes
    gzipped: bytes | None
    etag: str
    gzip_etag: str
    mtime: int  # whole seconds, as Last-Modified carries
    content_type: str

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime, usegmt=True)


class FileCache:
    """Published files by URL path, re-read only when their stat changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, tuple[tuple[int, int, int], StaticFile]] = {}

    def resolve(self, url_path: str) -> Path | None:
        """The file for ``url_path``, or None when it is not something we publish."""
        rel = url_path.strip("/") or "index.html"
        parts = rel.split("/")
        if any(not p or p.startswith(".") or "\\" in p for p in parts):
            return None
        if os.path.splitext(parts[-1])[1] not in CONTENT_TYPES:
            return None
        return self.root.joinpath(*parts)

    def get(self, url_path: str) -> StaticFile | None:
        path = self.resolve(url_path)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._files.get(url_path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            body = path.read_bytes()
        except OSError:
            return None
        digest = hashlib.sha256(body).hexdigest()[:32]
        compress = len(body) >= GZIP_MIN_BYTES
        entry = StaticFile(
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0) if compress else None,
            etag=f'"{digest}"',
            gzip_etag=f'"{digest}-gz"',
            mtime=int(st.st_mtime),
            content_type=CONTENT_TYPES[path.suffix],
        )
        self._files[url_path] = (key, entry)
        return entry


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            return not (params.strip().startswith("q=") and _float(q) == 0.0)
    return False


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def not_modified(request: Request, file: StaticFile) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since counts only without it."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or file.etag in tags or file.gzip_etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return file.mtime <= since.timestamp()
    return False


class _Site:
    """What the server answers: the published files, health, metrics and the status page.

    The database is opened on first use and kept: one that is down at start-up is retried on
    the next request. Serving only reads (not even the sources a whole pipeline would sync), so
    a database it may not write serves them all the same."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.files = FileCache(config.out_dir)
        self._publishing: Publishing | None = None
        self._stores: list[Store] = []  # to close at shutdown

    def publishing(self) -> Publishing:
        if self._publishing is None:
            store = Store(connect(self.config.db_url, writable=False), owns_engine=True)
            self._stores.append(store)
            self._publishing = publishing_of(store, self.config)
        return self._publishing

    async def static(self, request: Request) -> Response:
        file = self.files.get(request.url.path)
        if file is None:
            return Response("Not Found\n", 404, media_type="text/plain", headers=SECURITY_HEADERS)
        use_gzip = file.gzipped is not None and _accepts_gzip(
            request.headers.get("accept-encoding", "")
        )
        headers = {
            "etag": file.gzip_etag if use_gzip else file.etag,
            "last-modified": file.last_modified,
            "cache-control": CACHE_CONTROL,
            "vary": "Accept-Encoding",
            **SECURITY_HEADERS,
        }
        if not_modified(request, file):
            return Response(status_code=304, headers=headers)
        if use_gzip:
            headers["content-encoding"] = "gzip"
            return Response(file.gzipped, headers=headers, media_type=file.content_type)
        return Response(file.body, headers=headers, media_type=file.content_type)

    async def healthz(self, request: Request) -> Response:
        try:
            health = await run_in_threadpool(lambda: self.publishing().health())
        except (SQLAlchemyError, OSError, Unavailable, SchemaError) as exc:
            down = {"status": "unhealthy", "database": _database_down(exc)}
            return JSONResponse(down, 503, headers={"cache-control": "no-store"})
        code = 503 if health.problems else 200
        return JSONResponse(_health_json(health), code, headers={"cache-control": "no-store"})

    async def metrics(self, request: Request) -> Response:
        try:
            data = await run_in_threadpool(lambda: prometheus_text(self.publishing().metrics()))
        except (SQLAlchemyError, OSError, Unavailable) as exc:
            return Response(f"# database unreachable: {type(exc).__name__}\n", 503)
        return Response(data, headers={"content-type": CONTENT_TYPE_LATEST})

    def read_status(self) -> status.Status:
        publishing = self.publishing()
        return status.gather(publishing.store, self.config, publishing.health(), utcnow())

    async def status_page(self, request: Request) -> Response:
        client = request.client.host if request.client else None
        sent = status.sent_token(request.headers, request.query_params)
        verdict = status.access(client, request.headers, sent, self.config.status_token)
        if verdict != "ok":
            code, why = REFUSED[verdict]
            headers = {"www-authenticate": 'Bearer realm="status"'} if code == 401 else {}
            return Response(why, code, media_type="text/plain", headers={**PRIVATE, **headers})
        try:
            found = await run_in_threadpool(self.read_status)
        except (SQLAlchemyError, OSError, Unavailable, SchemaError) as exc:
            line = f"status: database {_database_down(exc)}\n"
            return Response(line, 503, media_type="text/plain", headers=PRIVATE)
        if request.url.path.endswith(".json"):
            return JSONResponse(status.as_json(found), headers=PRIVATE)
        query = f"?{request.url.query}" if request.query_params.get("token") else ""
        page = statuspage.render(found, query)
        headers = {**PRIVATE, "content-security-policy": statuspage.CSP}
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self._publishing = None
        while self._stores:
            self._stores.pop().close()


def _health_json(health: Health) -> dict[str, object]:
    """``/healthz``'s body: a monitor's verdict and what it rests on."""
    return {
        "status": "unhealthy" if health.problems else "ok",
        "database": "ok",
        "last_publish": health.last_publish.isoformat() if health.last_publish else None,
        "publish_age_seconds": round(health.publish_age, 1)
        if health.publish_age is not None
        else None,
        "failing_sources": [
            {"name": s.name, "since": s.since.isoformat(), "error": s.error} for s in health.failing
        ],
        "problems": health.problems,
    }


def create_app(config: Config) -> Starlette:
    """The ASGI app serving ``config.out_dir`` and the operator's two endpoints."""
    site = _Site(config)
    return Starlette(
        routes=[
            Route("/healthz", site.healthz),
            Route("/metrics", site.metrics),
            Route("/status", site.status_page),
            Route("/status.json", site.status_page),
            Route("/{path:path}", site.static, methods=["GET", "HEAD"]),
        ],
        lifespan=site.lifespan,
    )


def _database_down(exc: BaseException) -> str:
    """A database problem in one line: a schema to upgrade, or why it cannot be reached."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return reason if isinstance(exc, SchemaError) else f"unreachable: {reason}"


class _Snapshot:
    """A one-off collector over a :class:`Metrics` value (no global registry state)."""

    def __init__(self, m: Metrics, now: datetime) -> None:
        self.m, self.now = m, now

    def collect(self):  # noqa: ANN201 - prometheus_client's protocol
        m = self.m
        polls = CounterMetricFamily(
            "balanced_news_polls", "Feed polls by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(m.polls.items()):
            polls.add_metric([outcome], n)
        yield polls
        yield CounterMetricFamily(
            "balanced_news_poll_errors", "Feed polls that failed.", value=m.polls.get("error", 0)
        )
        yield GaugeMetricFamily("balanced_news_entries", "Stored entries.", value=m.entries)
        yield GaugeMetricFamily("balanced_news_stories", "Stored stories.", value=m.stories)
        yield GaugeMetricFamily("balanced_news_sources", "Configured sources.", value=m.sources)
        yield GaugeMetricFamily(
            "balanced_news_sources_failing", "Sources failing now.", value=m.failing_sources
        )
        summary = SummaryMetricFamily(
            "balanced_news_stage_seconds", "Time spent per pipeline stage.", labels=["stage"]
        )
        last = GaugeMetricFamily(
            "balanced_news_stage_last_seconds", "The last run of each stage.", labels=["stage"]
        )
        for stage, (last_s, total, runs, _at) in sorted(m.stages.items()):
            summary.add_metric([stage], count_value=runs, sum_value=total)
            last.add_metric([stage], last_s)
        yield summary
        yield last
        if "publish" in m.stages:
            age = (self.now - m.stages["publish"][3]).total_seconds()
            yield GaugeMetricFamily(
                "balanced_news_seconds_since_last_publish", "Age of the published feed.", value=age
            )


def prometheus_text(m: Metrics, now: datetime | None = None) -> bytes:
    """``m`` in the Prometheus text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(m, now or datetime.now(UTC)))
    return generate_latest(registry)


def serve(config: Config, host: str, port: int, access_log: bool = False) -> None:
    """Run the server until interrupted."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        access_log=access_log,
        log_config=None,  # uvicorn's lines go through ours: timestamps, levels, --log-format
        log_level="info",
        server_header=False,
    )
