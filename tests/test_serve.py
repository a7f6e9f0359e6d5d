"""``serve`` on a real uvicorn server: validators, 304, gzip, what is never served, /healthz and
/metrics against the real database."""

from __future__ import annotations

import dataclasses
import gzip
from email.utils import formatdate
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from aggregator.config import Config
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.publish import write_atomic
from aggregator.serve import create_app
from aggregator.store.schema import EntryRow, PollRow, SourceRow
from tests.conftest import extra_source, make_config, respond, serving
from tests.site_events import EVENTS


def test_files_have_validators_304_and_gzip(config: Config) -> None:
    Pipeline(config).run_cycle()
    feed = (config.out_dir / "balanced.atom").read_bytes()
    with serving(create_app(config)) as base, httpx.Client(base_url=base) as client:
        plain = client.get("/balanced.atom", headers={"accept-encoding": "identity"})
        assert plain.status_code == 200 and plain.content == feed
        assert plain.headers["content-type"] == "application/atom+xml; charset=utf-8"
        assert "content-encoding" not in plain.headers
        etag, modified = plain.headers["etag"], plain.headers["last-modified"]
        assert etag.startswith('"') and modified.endswith("GMT")

        zipped = client.get("/balanced.atom", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == feed  # httpx decompressed it
        assert zipped.num_bytes_downloaded < len(feed) / 2
        assert zipped.headers["vary"] == "Accept-Encoding"

        for headers in (
            {"if-none-match": etag},
            {"if-none-match": zipped.headers["etag"], "accept-encoding": "gzip"},
            {"if-none-match": f'"other", W/{etag}'},
            {"if-modified-since": modified},
        ):
            again = client.get("/balanced.atom", headers=headers)
            assert again.status_code == 304, headers
            assert again.content == b"" and again.headers["etag"]
        stale = client.get("/balanced.atom", headers={"if-none-match": '"other"'})
        assert stale.status_code == 200
        early = formatdate(0, usegmt=True)
        assert client.get("/balanced.atom", headers={"if-modified-since": early}).status_code == 200

        # A new publish: new validators, the old ETag no longer matches.
        write_atomic(config.out_dir / "balanced.atom", feed.replace(b"Fixture News", b"Renamed"))
        fresh = client.get("/balanced.atom", headers={"if-none-match": etag})
        assert fresh.status_code == 200 and b"Renamed" in fresh.content
        assert fresh.headers["etag"] != etag

        assert (
            client.head("/balanced.json")
            .headers["content-type"]
            .startswith("application/feed+json")
        )


def test_pages_are_served_with_a_strict_policy(config: Config) -> None:
    Pipeline(config).run_cycle()
    with serving(create_app(config)) as base, httpx.Client(base_url=base) as client:
        index = client.get("/")
        assert index.status_code == 200 and b"Latest Headlines" in index.content
        assert index.content == (config.out_dir / "index.html").read_bytes()
        csp = index.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        assert client.get("/style.css").headers["content-type"] == "text/css; charset=utf-8"
        page = next((config.out_dir / "stories").glob("*.html"))
        assert client.get(f"/stories/{page.name}").status_code == 200


def test_only_published_kinds_of_file_are_served(config: Config) -> None:
    Pipeline(config).run_cycle()
    out = config.out_dir
    (out / "state.db").write_bytes(b"secret")
    (out / ".balanced.atom.123.tmp").write_bytes(b"half")
    (out / ".hidden.html").write_bytes(b"hidden")
    with serving(create_app(config)) as base, httpx.Client(base_url=base) as client:
        for path in (
            "/state.db",
            "/.balanced.atom.123.tmp",
            "/.hidden.html",
            "/stories/",
            "/../test.db",
            "/%2e%2e/test.db",
            "/stories/..%2f..%2ftest.db",
            "/nothing.atom",
        ):
            assert client.get(path).status_code == 404, path


def test_healthz_reports_publish_age_and_failing_sources(web: SampleWeb, tmp_path: Path) -> None:
    web.routes["/err/rss.xml"] = respond(500, b"down")
    config = make_config(web, tmp_path, extra=(extra_source(web, "err", "err/rss.xml"),))
    app = create_app(config)
    with serving(app) as base, httpx.Client(base_url=base) as client:
        before = client.get("/healthz")
        assert before.status_code == 503
        assert before.json()["problems"] == ["nothing published yet"]
        Pipeline(config).run_cycle()
        after = client.get("/healthz")
        assert after.status_code == 200, after.json()
        body = after.json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert 0 <= body["publish_age_seconds"] < 600
        assert [s["name"] for s in body["failing_sources"]] == ["Err News"]
        assert body["failing_sources"][0]["error"] == "HTTP 500 Internal Server Error"

    stale = dataclasses.replace(
        config, settings=dataclasses.replace(config.settings, stale_after=1)
    )
    with Pipeline(stale).session.begin() as s:
        from aggregator.store.schema import StageRow

        row = s.get(StageRow, "publish")
        assert row is not None
        row.last_at = row.last_at.replace(year=row.last_at.year - 1)
    with serving(create_app(stale)) as base:
        old = httpx.get(f"{base}/healthz")
        assert old.status_code == 503 and old.json()["problems"][0].startswith("last publish")


def test_healthz_fails_when_the_database_is_unreachable(config: Config, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    broken = dataclasses.replace(config, db_url=f"sqlite:///{tmp_path / 'blocker' / 'x.db'}")
    with serving(create_app(broken)) as base:
        res = httpx.get(f"{base}/healthz")
        assert res.status_code == 503
        assert res.json()["database"].startswith("unreachable: ")
        assert httpx.get(f"{base}/metrics").status_code == 503


def test_metrics_are_prometheus_text_matching_the_database(config: Config) -> None:
    pipeline = Pipeline(config)
    report = pipeline.run_cycle()
    with pipeline.session() as s:
        polls = s.scalar(select(func.count()).select_from(PollRow))
        entries = s.scalar(select(func.count()).select_from(EntryRow))
    with serving(create_app(config)) as base:
        res = httpx.get(f"{base}/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(res.text)
        for s in family.samples
    }
    assert sum(v for (n, _), v in samples.items() if n == "balanced_news_polls_total") == polls
    assert samples[("balanced_news_poll_errors_total", ())] == 0
    assert samples[("balanced_news_entries", ())] == entries
    assert samples[("balanced_news_stories", ())] == report.stories == len(EVENTS)
    for stage in ("fetch", "extract", "group", "rewrite", "publish"):
        assert samples[("balanced_news_stage_seconds_count", (("stage", stage),))] == 1
        assert samples[("balanced_news_stage_seconds_sum", (("stage", stage),))] >= 0
    assert 0 <= samples[("balanced_news_seconds_since_last_publish", ())] < 600


def test_gzip_body_is_a_valid_gzip_of_the_file(config: Config) -> None:
    Pipeline(config).run_cycle()
    with (
        serving(create_app(config)) as base,
        httpx.Client(base_url=base) as client,
        client.stream("GET", "/index.html", headers={"accept-encoding": "gzip"}) as res,
    ):
        raw = b"".join(res.iter_raw())
    assert gzip.decompress(raw) == (config.out_dir / "index.html").read_bytes()


def test_health_from_a_database_it_may_only_read(config: Config) -> None:
    """serve only reads: a read-only database is healthy, not "unreachable"."""
    Pipeline(config).run_cycle()
    path = config.db_url.removeprefix("sqlite:///")
    read_only = dataclasses.replace(config, db_url=f"sqlite:///file:{path}?mode=ro&uri=true")
    with serving(create_app(read_only)) as base:
        health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok", health.text


def test_serving_writes_nothing_to_the_database(web: SampleWeb, tmp_path: Path) -> None:
    """serve reads: a source added to sources.toml since the last cycle is not stored by a
    /healthz or /metrics request (only a cycle syncs the sources)."""
    config = make_config(web, tmp_path)
    Pipeline(config).run_cycle()
    newer = make_config(web, tmp_path, extra=(extra_source(web, "late", "late/rss.xml"),))
    with serving(create_app(newer)) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 200
    with Pipeline(config).session() as s:
        stored = set(s.scalars(select(SourceRow.id)))
    assert "late" not in stored and stored == {src.id for src in config.sources}
