"""The operator's status page (``aggregator/status.py``, served by ``serve``): who may see it,
decided for real requests from loopback and from this machine's outward address, and what it
reports against a real database (SQLite; PostgreSQL with procrastinate's worker tables).
The page itself in a browser: tests/test_browser.py."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from aggregator.config import (
    ENV_STATUS_TOKEN,
    ConfigError,
    Source,
    load_config,
)
from aggregator.demo import SampleWeb
from aggregator.models import QueueState, SourceState, StageEvent
from aggregator.pipeline import Pipeline
from aggregator.serve import create_app
from aggregator.status import access, hold_reason, recent_cycles, sent_token
from aggregator.store import Store
from aggregator.store.health import KEPT_STAGE_RUNS
from tests.conftest import extra_source, make_config, outward_address, respond, serving

TOKEN = "status-token-for-tests-0123456789"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


# --- who may see it: the pure rule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "headers", "sent", "token", "verdict"),
    [
        ("127.0.0.1", {}, None, None, "ok"),
        ("127.0.0.2", {}, None, None, "ok"),  # all of 127/8 is this machine
        ("::1", {}, None, None, "ok"),
        ("::ffff:127.0.0.1", {}, None, None, "ok"),
        ("192.0.2.7", {}, None, None, "local"),
        ("::ffff:192.0.2.7", {}, None, None, "local"),
        (None, {}, None, None, "local"),  # no address (a Unix socket): not known to be local
        ("localhost", {}, None, None, "local"),  # a name is not an address
        # Relayed by a proxy on this host: the socket says loopback, the request does not.
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, None, None, "local"),
        ("127.0.0.1", {"forwarded": "for=203.0.113.9"}, None, None, "local"),
        ("127.0.0.1", {"x-real-ip": "203.0.113.9"}, None, None, "local"),
        ("127.0.0.1", {"via": "1.1 proxy"}, None, None, "local"),
        # With a token configured: the token opens it from anywhere, loopback still may.
        ("192.0.2.7", {}, None, TOKEN, "token"),
        ("192.0.2.7", {}, "wrong-token-wrong-token", TOKEN, "token"),
        ("192.0.2.7", {}, TOKEN[:-1], TOKEN, "token"),
        ("192.0.2.7", {}, TOKEN, TOKEN, "ok"),
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, TOKEN, TOKEN, "ok"),
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, None, TOKEN, "token"),
        ("127.0.0.1", {}, None, TOKEN, "ok"),
        # A token sent where none is configured opens nothing.
        ("192.0.2.7", {}, TOKEN, None, "local"),
    ],
)
def test_the_access_rule(
    client: str | None, headers: dict[str, str], sent: str | None, token: str | None, verdict: str
) -> None:
    assert access(client, headers, sent, token) == verdict


def test_the_token_is_read_from_a_bearer_header_or_the_query() -> None:
    assert sent_token({"authorization": f"Bearer {TOKEN}"}, {}) == TOKEN
    assert sent_token({"authorization": f"bearer  {TOKEN} "}, {}) == TOKEN
    assert sent_token({}, {"token": TOKEN}) == TOKEN
    assert sent_token({"authorization": f"Basic {TOKEN}"}, {}) is None
    assert sent_token({"authorization": "Bearer "}, {"token": ""}) is None


def test_the_token_comes_from_the_environment_and_must_not_be_guessable(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[source]]\nid = "a"\nname = "A"\nhomepage = "https://a.example/"\n'
        'feed = "https://a.example/feed.xml"\nlean = "center"\n'
    )
    assert load_config(path, env={}).status_token is None
    assert load_config(path, env={ENV_STATUS_TOKEN: f" {TOKEN}\n"}).status_token == TOKEN
    assert load_config(path, env={ENV_STATUS_TOKEN: ""}).status_token is None
    assert TOKEN not in repr(load_config(path, env={ENV_STATUS_TOKEN: TOKEN}))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={ENV_STATUS_TOKEN: "secret"})
    assert str(info.value) == (
        f"{ENV_STATUS_TOKEN}: too short (6 characters; use at least 16, "
        "e.g. the output of `openssl rand -hex 32`)"
    )


# --- who may see it: real requests ------------------------------------------------------------


def test_from_elsewhere_only_with_the_token(web: SampleWeb, tmp_path: Path) -> None:
    """A real request from this machine's outward address (not loopback) is refused, unless
    it sends the configured token; from loopback the page answers, unless a proxy relayed
    the request."""
    outward = outward_address()
    if outward is None:
        pytest.skip("this machine has no address but loopback: no request from elsewhere")
    config = make_config(web, tmp_path)
    Pipeline(config).run_cycle()
    bearer = {"authorization": f"Bearer {TOKEN}"}
    open_app, token_app = (
        create_app(config),
        create_app(dataclasses.replace(config, status_token=TOKEN)),
    )
    with serving(open_app, outward) as base, httpx.Client(trust_env=False) as client:
        refused = client.get(f"{base}/status")
        assert refused.status_code == 403
        assert ENV_STATUS_TOKEN in refused.text and "alpha" not in refused.text
        assert client.get(f"{base}/status.json", headers=bearer).status_code == 403
        assert client.get(f"{base}/healthz").status_code == 200  # the public path stays open
    with serving(token_app, outward) as base, httpx.Client(trust_env=False) as client:
        for path, headers in (
            ("/status", {}),
            ("/status.json", {"authorization": "Bearer wrong-token-wrong-token"}),
            (f"/status?token={TOKEN[:-1]}", {}),
        ):
            no = client.get(f"{base}{path}", headers=headers)
            assert no.status_code == 401 and no.headers["www-authenticate"].startswith("Bearer")
            assert "alpha" not in no.text
        page = client.get(f"{base}/status", headers=bearer)
        assert page.status_code == 200 and "Alpha Times" in page.text
        assert page.headers["cache-control"] == "no-store"
        data = client.get(f"{base}/status.json?token={TOKEN}")
        assert data.status_code == 200 and data.json()["sources"][0]["id"] == "alpha"
        linked = client.get(f"{base}/status?token={TOKEN}").text
        assert f'href="status.json?token={TOKEN}"' in linked  # the JSON link keeps it
    with serving(open_app) as base, httpx.Client(trust_env=False) as client:
        assert client.get(f"{base}/status").status_code == 200
        for header in ({"forwarded": "for=203.0.113.9"}, {"via": "1.1 proxy"}):
            assert client.get(f"{base}/status.json", headers=header).status_code == 403


# --- what it shows ------------------------------------------------------------------------------


def test_status_json_reports_every_source_cycle_and_failure(web: SampleWeb, tmp_path: Path) -> None:
    web.routes["/down/rss.xml"] = respond(503, b"maintenance")
    web.routes["/gone/rss.xml"] = respond(410, b"this feed is gone")
    kestrel = dataclasses.replace(
        extra_source(web, "kestrel", "kestrel/rss.xml"), select=".storytext"
    )
    quiet = dataclasses.replace(extra_source(web, "quiet", "quiet/rss.xml"), enabled=False)
    extra: tuple[Source, ...] = (
        extra_source(web, "down", "down/rss.xml"),
        extra_source(web, "gone", "gone/rss.xml", lean="right"),
        kestrel,
        quiet,
    )
    config = make_config(web, tmp_path, extra=extra)
    with Pipeline(config) as pipeline:
        pipeline.run_cycle()
        pipeline.run_cycle()
    with serving(create_app(config)) as base:
        data = httpx.get(f"{base}/status.json", trust_env=False).json()
    by_id = {s["id"]: s for s in data["sources"]}
    assert list(by_id) == [s.id for s in config.sources]
    alpha = by_id["alpha"]
    assert (alpha["status"], alpha["lean"], alpha["hold"], alpha["error"]) == (
        "ok",
        "center",
        None,
        None,
    )
    assert alpha["last_poll"]["outcome"] in ("unchanged", "not-modified")  # the second poll
    assert alpha["entries"] == 3 and alpha["last_new_entry"] is not None
    assert alpha["next_poll"] > alpha["last_poll"]["at"]
    down = by_id["down"]
    assert down["status"] == "failing" and down["error"] == "HTTP 503 Service Unavailable"
    assert down["last_poll"]["outcome"] == "error" and down["last_poll"]["http_status"] == 503
    assert down["hold"].startswith("backing off after errors; next try ")
    assert down["hold"].endswith("(1 in a row)")  # run --once waits out the backoff
    gone = by_id["gone"]
    assert gone["status"] == "parked" and gone["lean"] == "right"
    assert gone["hold"].startswith("parked; next try ")
    assert "(the feed answered 410 Gone; tried once a day)" in gone["hold"]
    assert by_id["kestrel"]["extract_failures"] == 1
    assert by_id["kestrel"]["last_extract_error"] == (
        "select '.storytext' matched nothing on the page"
    )
    assert alpha["extract_failures"] == 0 and alpha["last_extract_error"] is None
    assert by_id["quiet"]["status"] == "disabled" and by_id["quiet"]["last_poll"] is None
    assert by_id["quiet"]["hold"] == "disabled in the sources file"
    # Two cycles, newest first, each stage timed; nothing else ran.
    assert [c["published"] for c in data["cycles"]] == [True, True]
    newest = data["cycles"][0]
    assert list(newest["stages"]) == ["fetch", "extract", "group", "rewrite", "publish"]
    assert all(stage["runs"] == 1 for stage in newest["stages"].values())
    assert newest["started"] >= data["cycles"][1]["ended"]
    assert newest["seconds"] == pytest.approx(
        sum(s["seconds"] for s in newest["stages"].values()), abs=0.01
    )
    assert data["workers"] is None  # SQLite: no workers


def test_recent_cycles_group_stage_runs_by_publish() -> None:
    def run(stage: str, minute: int, seconds: float = 1.0) -> StageEvent:
        return StageEvent(stage, NOW + timedelta(minutes=minute), seconds)

    events = [
        run("extract", 0),  # the tail of a cycle whose start the history lost
        run("publish", 1),
        run("fetch", 10, 2.0),  # a poll that found nothing to publish
        run("fetch", 20, 3.0),
        run("extract", 21),
        run("group", 22),
        run("publish", 23, 0.5),
        run("fetch", 30),  # under way
    ]
    newest, published = recent_cycles(events, 10, cut=True)
    assert not newest.published and newest.stages == {"fetch": (1.0, 1)}
    assert published.published and published.stages == {
        "fetch": (5.0, 2),
        "extract": (1.0, 1),
        "group": (1.0, 1),
        "publish": (0.5, 1),
    }
    assert published.started == NOW + timedelta(minutes=10, seconds=-2)
    assert published.ended == NOW + timedelta(minutes=23) and published.seconds == 7.5
    assert len(recent_cycles(events, 10)) == 3  # nothing cut: the first cycle is whole
    assert len(recent_cycles(events, 1)) == 1


def test_hold_reasons() -> None:
    later = NOW + timedelta(hours=2)
    failing = SourceState("a", "failing", consecutive_errors=3, next_poll_at=later)
    assert hold_reason(failing, 3, NOW) == (
        "backing off after errors; next try 2026-12-07 05:00 UTC (3 in a row)"
    )
    parked = dataclasses.replace(failing, status="parked", last_http_status=500)
    assert hold_reason(parked, 3, NOW) == (
        "parked; next try 2026-12-07 05:00 UTC (failing for more than 3 days; tried once a day)"
    )
    asked = SourceState("a", "ok", retry_until=later, next_poll_at=later)
    assert hold_reason(asked, 3, NOW) == "server asked us to wait until 2026-12-07 05:00 UTC"
    assert hold_reason(SourceState("a", "ok", next_poll_at=later), 3, NOW) is None
    assert hold_reason(dataclasses.replace(failing, next_poll_at=NOW), 3, NOW) is None  # due


def test_the_stage_history_keeps_the_newest_runs(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        for i in range(KEPT_STAGE_RUNS + 30):
            store.record_stage("fetch" if i % 2 else "publish", i / 10, NOW + timedelta(seconds=i))
        kept = store.stage_history(10_000)
        assert len(kept) == KEPT_STAGE_RUNS
        assert kept[0].at == NOW + timedelta(seconds=30)  # the oldest 30 are gone
        assert kept[-1] == StageEvent("fetch", NOW + timedelta(seconds=KEPT_STAGE_RUNS + 29), 52.9)
        assert store.stage_runs()["fetch"].runs == (KEPT_STAGE_RUNS + 30) // 2  # totals stay


def test_workers_and_their_queue_on_postgresql(web: SampleWeb, tmp_path: Path, pg_url: str) -> None:
    """procrastinate's own tables, as its own manager fills them: a worker that beats, one
    that stopped beating, and tasks waiting and running."""
    from procrastinate import App, PsycopgConnector

    from aggregator.store.queue import QUEUE_SCHEMA, ensure_queue_schema, queue_conninfo

    config = dataclasses.replace(make_config(web, tmp_path), db_url=pg_url)
    with Store.open(pg_url) as store:
        assert store.queue_state() == QueueState((), ())  # no worker ever ran: no tables yet
    ensure_queue_schema(pg_url)

    async def fill() -> tuple[int, int]:
        connector = PsycopgConnector(
            conninfo=queue_conninfo(pg_url),
            kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"},
        )
        app = App(connector=connector)
        async with app.open_async():
            alive = await app.job_manager.register_worker()
            dead = await app.job_manager.register_worker()
            async with connector.pool.connection() as conn:  # its heartbeat stopped long ago
                await conn.execute(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                    " WHERE id = %s",
                    (dead,),
                )
            for _ in range(3):
                await app.configure_task("balanced_news.poll", queue="poll").defer_async(claims=[])
            await app.configure_task("balanced_news.publish", queue="process").defer_async()
            job = await app.job_manager.fetch_job(queues=["process"], worker_id=alive)
            assert job is not None and job.task_name == "balanced_news.publish"
            return alive, dead

    alive, dead = asyncio.run(fill())
    with serving(create_app(config)) as base:
        data = httpx.get(f"{base}/status.json", trust_env=False).json()["workers"]
        page = httpx.get(f"{base}/status", trust_env=False).text
    workers = {w["id"]: w for w in data["workers"]}
    assert set(workers) == {alive, dead}
    assert workers[alive]["stalled"] is False and workers[alive]["heartbeat_age_seconds"] < 60
    assert workers[alive]["running"] == ["balanced_news.publish"]
    assert workers[dead]["stalled"] is True and workers[dead]["heartbeat_age_seconds"] > 3000
    assert workers[dead]["running"] == []
    queue = {d["task"]: d for d in data["queue"]}
    assert (
        queue["balanced_news.poll"]["waiting"] == 3 and queue["balanced_news.poll"]["running"] == 0
    )
    assert queue["balanced_news.poll"]["oldest_wait_seconds"] >= 0
    assert queue["balanced_news.publish"] == {
        "task": "balanced_news.publish",
        "waiting": 0,
        "running": 1,
        "oldest_wait_seconds": None,
    }
    assert f"#{alive}" in page and "stalled" in page and "Not used" not in page
