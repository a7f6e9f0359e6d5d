"""The commands as an operator runs them: real processes where exit codes and signals matter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.demo import SampleWeb
from tests.conftest import FIXTURES, free_port, outward_address, write_sources

ROOT = Path(__file__).resolve().parents[1]


def common(web: SampleWeb, tmp_path: Path) -> list[str]:
    return [
        "--sources",
        str(write_sources(web, tmp_path)),
        "--db",
        f"sqlite:///{tmp_path / 'cli.db'}",
        "--out",
        str(tmp_path / "out"),
        "--allow-private-hosts",
    ]


def test_run_once_then_sources_table(web: SampleWeb, tmp_path: Path, capsys) -> None:
    assert main(["run", "--once", *common(web, tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Feed written: {tmp_path / 'out' / 'balanced.atom'}" in out
    assert f"Front page: {tmp_path / 'out' / 'index.html'}" in out
    assert "Sources: 5 ok, 0 failing" in out and "Seconds per stage: fetch" in out
    assert main(["sources", *common(web, tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["SOURCE", "LEAN", "KIND", "STATUS"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert all(row[3] == "ok" for row in rows.values())


def test_sources_table_shows_extraction_failures(web: SampleWeb, tmp_path: Path, capsys) -> None:
    args = common(web, tmp_path)
    sources = Path(args[1])
    text = sources.read_text(encoding="utf-8")
    rule = 'id = "alpha"\nselect = ".no-such-body"'  # matches nothing on alpha's pages
    sources.write_text(text.replace('id = "alpha"', rule, 1), encoding="utf-8")
    assert main(["run", "--once", *args]) == 0
    capsys.readouterr()
    assert main(["sources", *args]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    start = header.index("EXTRACT FAILS")
    column = slice(start, start + len("EXTRACT FAILS"))
    rows = {line.split()[0]: line for line in lines}
    assert rows["alpha"][column].strip() == "3"  # each of its three stored entries
    assert rows["alpha"].endswith("extract: select '.no-such-body' matched nothing on the page")
    assert rows["beta"][column].strip() == "0" and "extract:" not in rows["beta"]


def test_sources_table_lists_owners(web: SampleWeb, tmp_path: Path, capsys) -> None:
    """Issue 22: ``sources`` lists who owns each outlet where the sources file says, "-" where
    it does not."""
    args = common(web, tmp_path)
    sources = Path(args[1])
    text = sources.read_text(encoding="utf-8")
    owned = 'id = "alpha"\nowner = "Harlow Media Group"\nowner_source = "test fixture"'
    sources.write_text(text.replace('id = "alpha"', owned, 1), encoding="utf-8")
    assert main(["sources", *args]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    start = header.index("OWNER")
    column = slice(start, header.index("LAST ERROR"))
    rows = {line.split()[0]: line for line in lines}
    assert rows["alpha"][column].strip() == "Harlow Media Group"
    assert {rows[s][column].strip() for s in ("beta", "gamma", "delta", "epsilon")} == {"-"}


def test_poll_then_publish(web: SampleWeb, tmp_path: Path, capsys) -> None:
    assert main(["poll", *common(web, tmp_path)]) == 0
    assert "Sources: 5 ok, 0 failing, 0 waiting" in capsys.readouterr().out
    assert not (tmp_path / "out" / "balanced.atom").exists()
    assert main(["publish", *common(web, tmp_path)]) == 0
    assert (tmp_path / "out" / "balanced.atom").exists()


def test_environment_variables_configure_every_command(
    web: SampleWeb, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("BALANCED_NEWS_SOURCES", str(write_sources(web, tmp_path)))
    monkeypatch.setenv("BALANCED_NEWS_DB", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("BALANCED_NEWS_OUT", str(tmp_path / "env-out"))
    monkeypatch.setenv("BALANCED_NEWS_ALLOW_PRIVATE_HOSTS", "1")
    assert main(["run", "--once"]) == 0
    assert (tmp_path / "env-out" / "balanced.atom").exists()
    assert (tmp_path / "env.db").exists()


def test_bad_sources_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    bad = FIXTURES / "bad-sources" / "unknown-lean.toml"
    db = tmp_path / "never.db"
    assert main(["run", "--once", "--sources", str(bad), "--db", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"balanced-news: configuration error: {bad}: source 'nypost': unknown lean 'far-right' "
        "(use one of: left, lean-left, center, lean-right, right)"
    )
    assert not db.exists(), "nothing runs"


def test_extract_prints_json(web: SampleWeb, capsys) -> None:
    page = next((FIXTURES / "site" / "beta" / "articles").glob("*.html"))
    assert main(["extract", str(page), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"text", "title", "author", "date", "image"}
    assert len(data["text"]) > 500
    url = web.url(str(page.relative_to(FIXTURES / "site")))
    assert main(["extract", url]) == 1  # loopback refused by default
    assert "--allow-private-hosts" in capsys.readouterr().err
    assert main(["extract", url, "--allow-private-hosts"]) == 0
    assert data["text"][:40] in capsys.readouterr().out


def test_extract_with_a_sources_content_rules(web: SampleWeb, tmp_path: Path, capsys) -> None:
    """`extract URL --source ID`: what the pipeline will store for that source's pages, so an
    operator can try a rule before the next cycle."""
    sources = write_sources(web, tmp_path)
    rule = '\n[[source]]\nid = "kestrel"\nname = "K"\nhomepage = "{0}/"\nfeed = "{0}/rss.xml"\n'
    rule += 'lean = "center"\nstrip = [".ledger-box"]\nselect = ".story"\n'
    sources.write_text(sources.read_text() + rule.format(web.url("kestrel")))
    url = web.url("kestrel/stories/orchard-street-bakery-award.html")
    base = ["extract", url, "--allow-private-hosts", "--sources", str(sources)]
    assert main(base) == 0
    assert "in your inbox every weekday" in capsys.readouterr().out  # trafilatura keeps it
    assert main([*base, "--source", "kestrel"]) == 0
    out = capsys.readouterr().out
    assert "in your inbox" not in out and "By Tomas Reyl" not in out  # stripped; selected
    assert "Marrow said the prize money will buy a second mixer" in out
    assert main([*base, "--source", "nope"]) == 2
    error = one_line_error(capsys)
    assert error == f"balanced-news: configuration error: {sources}: no source 'nope'"


def test_demo_runs_offline(tmp_path: Path, capsys) -> None:
    port = str(free_port())
    assert main(["demo", "--out", str(tmp_path), "--port", port]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "balanced.atom").exists()
    assert "Sources: 8 ok, 0 failing" in out
    assert "Seconds per stage" in out
    assert f"See it: balanced-news serve --out {tmp_path}" in out
    first = ids_of(tmp_path / "balanced.atom")
    # Again into the same folder: the same outlets at the same address, the same articles.
    assert main(["demo", "--out", str(tmp_path), "--port", port]) == 0
    assert "new entries: 0;" in capsys.readouterr().out
    assert ids_of(tmp_path / "balanced.atom") == first


def test_the_demos_common_ground_states_each_claim_once_from_both_sides(tmp_path: Path) -> None:
    """Issue 13, in the demo itself: no Common Ground paragraph repeats another (word-set
    overlap under 0.6), and each cites a left-leaning and a right-leaning outlet."""
    from lxml import html

    from aggregator.config import parse_sources
    from aggregator.vocab import SIDES, side_of
    from tests.stories import word_overlap

    assert main(["demo", "--out", str(tmp_path), "--port", str(free_port())]) == 0
    _, sources = parse_sources((tmp_path / "demo-sources.toml").read_text(encoding="utf-8"))
    lean = {s.name: s.lean for s in sources}
    seen = 0
    for page in sorted((tmp_path / "stories").glob("*.html")):
        section = html.parse(str(page)).getroot().find_class("common-ground")
        claims = [p for s in section for p in s.iter("p") if p.get("class") != "missing"]
        texts = []
        for claim in claims:
            cite = claim.find("cite")
            # "The Left Review, “Opinion: ...”": two articles of one outlet carry their titles
            outlets = {a.text_content().split(", \u201c")[0] for a in cite.iter("a")}
            sides = {side_of(lean[o]) for o in outlets}
            assert sides >= set(SIDES), (page.name, outlets)
            cite.drop_tree()
            texts.append(claim.text_content())
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                assert word_overlap(a, b) < 0.6, (page.name, a, b)
        seen += len(claims)
    assert seen >= 4, "the demo's stories have common ground to show"


def ids_of(feed: Path) -> list[str]:
    from lxml import etree

    ns = {"a": "http://www.w3.org/2005/Atom"}
    return etree.fromstring(feed.read_bytes()).xpath("/a:feed/a:entry/a:id/text()", namespaces=ns)


def test_demo_refuses_sources(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path), "--sources", "mine.toml"]) == 2
    assert one_line_error(capsys) == (
        "balanced-news: configuration error: demo: --sources is not used: the demo polls its "
        "own sample outlets; for your sources run `balanced-news run --once --sources mine.toml`"
    )
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_missing_folder(web: SampleWeb, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing-here"
    args = ["--sources", str(write_sources(web, tmp_path)), "--out", str(missing)]
    assert main(["serve", *args]) == 2
    assert one_line_error(capsys) == (
        f"balanced-news: configuration error: output folder {missing}: no such folder "
        f"(publish into it first: balanced-news run --once --out {missing})"
    )
    assert not missing.exists()


def test_serve_reads_the_database_that_wrote_the_folder(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """The demo's folder served with no --db or --sources: its own database and outlets,
    not the defaults (which would say "nothing published yet" about 44 other sources)."""
    import httpx

    from aggregator.cli import build_parser, serve_config
    from aggregator.serve import create_app
    from tests.conftest import serving

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--port", str(free_port())]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # where no sources.toml and no storage/ are
    for name in ("BALANCED_NEWS_DB", "BALANCED_NEWS_SOURCES"):
        monkeypatch.delenv(name, raising=False)
    config = serve_config(build_parser().parse_args(["serve", "--out", str(out)]))
    assert config.db_url == f"sqlite:///{out.resolve() / 'demo.db'}"
    assert len(config.sources) == 8
    with serving(create_app(config)) as base:
        health = httpx.get(f"{base}/healthz")
        metrics = httpx.get(f"{base}/metrics").text
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    assert "balanced_news_sources 8.0" in metrics
    assert not (tmp_path / "storage").exists()


def run_script(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scheduler.py"), *args],
        cwd=kw.get("cwd", ROOT),
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_scheduler_once_and_bad_config(web: SampleWeb, tmp_path: Path) -> None:
    ok = run_script("--once", *common(web, tmp_path))
    out, err = ok.communicate(timeout=120)
    assert ok.returncode == 0, err
    assert "Feed written" in out
    bad = run_script("--once", "--sources", str(FIXTURES / "bad-sources" / "bad-url.toml"))
    _, err = bad.communicate(timeout=60)
    assert bad.returncode == 2
    assert err.strip().endswith("feed 'nypost.com/feed/' is not an http(s) URL")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_scheduler_runs_until_sigterm(web: SampleWeb, tmp_path: Path) -> None:
    proc = run_script(*common(web, tmp_path))
    feed = tmp_path / "out" / "balanced.atom"
    deadline = time.monotonic() + 90
    while not feed.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert feed.exists(), proc.stderr.read() if proc.poll() is not None else "no feed yet"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "received SIGTERM" in err and "scheduler stopped" in err


# --- sources import FILE.opml -------------------------------------------------------------------


def opml_file(web: SampleWeb, tmp_path: Path) -> Path:
    path = tmp_path / "reader.opml"
    path.write_text(web.render((FIXTURES / "opml" / "reader-export.opml").read_text()), "utf-8")
    return path


def test_sources_import_appends_valid_sources(web: SampleWeb, tmp_path: Path, capsys) -> None:
    from aggregator.config import load_config

    args = common(web, tmp_path)
    sources = Path(args[1])
    before = load_config(sources).sources
    opml = str(opml_file(web, tmp_path))
    assert main(["sources", "import", opml, "--lean", "center", *args]) == 0
    out = capsys.readouterr().out
    assert "Added 3 sources" in out
    after = load_config(sources).sources
    assert after[: len(before)] == before, "existing sources untouched"
    new = {s.id: s for s in after[len(before) :]}
    assert set(new) == {"zeta-ledger", "eta-morning-star", "theta-courier"}
    assert new["eta-morning-star"].name == 'Eta "Morning" Star'
    assert new["eta-morning-star"].homepage == "https://eta.example/"
    assert new["theta-courier"].homepage == "https://theta.example/"  # javascript: refused
    assert {s.lean for s in new.values()} == {"center"}
    # Again: everything is there already (the alpha feed was there from the start).
    assert main(["sources", "import", opml, "--lean", "center", *args]) == 0
    assert "Nothing to import" in capsys.readouterr().out


def test_sources_import_needs_a_lean(web: SampleWeb, tmp_path: Path, capsys, monkeypatch) -> None:
    import io

    args = common(web, tmp_path)
    sources = Path(args[1])
    text = sources.read_text()
    opml = str(opml_file(web, tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: nobody to ask
    assert main(["sources", "import", opml, *args]) == 2
    assert "'Zeta Ledger': lean required" in capsys.readouterr().err
    assert sources.read_text() == text, "nothing written"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    # Asked for the two without a lean category (a wrong answer is asked again).
    monkeypatch.setattr("sys.stdin", Terminal("far-left\nleft\nright\n"))
    assert main(["sources", "import", opml, *args]) == 0
    from aggregator.config import load_config

    leans = {s.id: s.lean for s in load_config(sources).sources}
    assert (leans["zeta-ledger"], leans["eta-morning-star"]) == ("left", "right")
    assert leans["theta-courier"] == "lean-right"  # from the file's /lean/ category


def test_sources_import_refuses_a_non_opml_file(web: SampleWeb, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text("<html><body>not opml</body></html>")
    assert main(["sources", "import", str(bad), "--lean", "left", *common(web, tmp_path)]) == 1
    assert "not an OPML file" in capsys.readouterr().err


# --- serve --------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_command_serves_the_published_folder(web: SampleWeb, tmp_path: Path) -> None:

    import httpx

    args = common(web, tmp_path)
    assert main(["run", "--once", *args]) == 0
    port = free_port()
    token = "a-status-token-from-the-environment"
    outward = outward_address()  # served there, /status needs the token
    host = outward or "127.0.0.1"
    serving_args = [*args, "--host", host, "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "serve", *serving_args],
        cwd=ROOT,
        env={**os.environ, "BALANCED_NEWS_STATUS_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, health = time.monotonic() + 30, None
        while health is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://{host}:{port}/healthz", timeout=2, trust_env=False)
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert health.status_code == 200 and health.json()["status"] == "ok"
        feed = httpx.get(f"http://{host}:{port}/balanced.atom", trust_env=False)
        assert feed.content == (tmp_path / "out" / "balanced.atom").read_bytes()
        if outward is not None:  # the token, read from the environment, opens /status
            status = f"http://{outward}:{port}/status.json"
            assert httpx.get(status, trust_env=False).status_code == 401
            bearer = {"authorization": f"Bearer {token}"}
            assert httpx.get(status, headers=bearer, trust_env=False).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit shows the signal.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"Serving {tmp_path / 'out'}/ at http://{host}:{port}/" in err
    assert "Status page: /status (loopback clients, and requests sending BALANCED_NEWS_" in err


# --- environment errors: one line, the right exit status, no traceback --------------------------


@pytest.fixture
def unwritable(tmp_path: Path) -> Path:
    """A folder this process may not write in: a read-only folder, or for root (whom file
    modes do not stop) /sys, where not even root may create a file."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys")
    try:
        (folder / "balanced-news-probe").touch()
    except OSError:
        return folder
    pytest.skip("no folder here refuses root's writes (/sys is writable)")


def one_line_error(capsys) -> str:  # noqa: ANN001 - pytest's fixture
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_db_in_a_folder_we_may_not_write(
    web: SampleWeb, tmp_path: Path, unwritable: Path, capsys
) -> None:
    db = f"sqlite:///{unwritable / 'news.db'}"
    args = ["--sources", str(write_sources(web, tmp_path)), "--out", str(tmp_path / "out")]
    assert main(["run", "--once", *args, "--allow-private-hosts", "--db", db]) == 1
    assert one_line_error(capsys).startswith(f"balanced-news: database {db}: ")
    assert web.requests == [], "nothing polled"


def test_an_unreachable_postgresql_server(web: SampleWeb, tmp_path: Path, capsys) -> None:
    db = f"postgresql+psycopg://news:secret@127.0.0.1:{free_port()}/news"
    args = ["--sources", str(write_sources(web, tmp_path)), "--out", str(tmp_path / "out")]
    assert main(["poll", *args, "--allow-private-hosts", "--db", db]) == 1
    line = one_line_error(capsys)
    assert line.startswith("balanced-news: database postgresql+psycopg://news:***@127.0.0.1:")
    assert "refused" in line and "secret" not in line
    assert web.requests == []


def test_a_database_url_of_no_known_kind(web: SampleWeb, tmp_path: Path, capsys) -> None:
    sources = str(write_sources(web, tmp_path))
    assert main(["publish", "--sources", sources, "--db", "nosuch://x"]) == 2
    assert one_line_error(capsys) == (
        "balanced-news: configuration error: --db nosuch://x: unknown database type 'nosuch' "
        "(use sqlite:///PATH or postgresql+psycopg://...)"
    )


def test_out_pointing_at_a_file_fails_before_polling(
    web: SampleWeb, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "feed.xml"
    out.write_text("not a folder")
    args = [*common(web, tmp_path), "--out", str(out)]
    assert main(["run", "--once", *args]) == 2
    assert one_line_error(capsys) == (
        f"balanced-news: configuration error: output folder {out}: not a folder (a file is there)"
    )
    assert web.requests == [], "nothing polled"
    assert out.read_text() == "not a folder"


def test_an_out_folder_we_may_not_write(
    web: SampleWeb, tmp_path: Path, unwritable: Path, capsys
) -> None:
    out = unwritable / "feeds"
    assert main(["publish", *common(web, tmp_path), "--out", str(out)]) == 1
    assert one_line_error(capsys).startswith(f"balanced-news: output folder {out}: ")
    assert main(["run", "--once", *common(web, tmp_path), "--out", str(out)]) == 1
    assert one_line_error(capsys).startswith(f"balanced-news: output folder {out}: ")
    assert web.requests == []


def test_a_working_directory_we_may_not_write(
    web: SampleWeb, tmp_path: Path, unwritable: Path
) -> None:
    """The default database and output folder are relative: here they cannot be made."""
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "run", "--once", "--allow-private-hosts"],
        cwd=unwritable,
        env={**os.environ, "BALANCED_NEWS_SOURCES": str(write_sources(web, tmp_path))},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("balanced-news: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "storage" in proc.stderr or "feeds" in proc.stderr
    assert web.requests == []


def test_verbose_shows_the_traceback_too(web: SampleWeb, tmp_path: Path, capsys) -> None:
    sources = str(write_sources(web, tmp_path))
    out = tmp_path / "file"
    out.write_text("")
    db = f"sqlite:///{tmp_path / 'v.db'}"
    assert main(["publish", "-v", "--sources", sources, "--db", db, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("balanced-news: configuration error:")


def test_extract_into_a_closed_pipe_is_quiet(web: SampleWeb) -> None:
    """`extract --json URL | head -1`: the reader goes away before we write."""
    page = next((FIXTURES / "site" / "beta" / "articles").glob("*.html"))
    url = web.url(str(page.relative_to(FIXTURES / "site")))
    read, write = os.pipe()
    os.close(read)  # like head after its line: nobody reads any more
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "extract", "--json", url, "--allow-private-hosts"],
        cwd=ROOT,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == 1


def test_extract_of_an_ftp_url_says_so(capsys) -> None:
    assert main(["extract", "ftp://example.com/page.html"]) == 2
    assert one_line_error(capsys) == (
        "balanced-news: extract ftp://example.com/page.html: cannot read ftp:// URLs "
        "(give an http(s) URL or a file)"
    )


def test_sources_lists_without_creating_anything(web: SampleWeb, tmp_path: Path, capsys) -> None:
    db = tmp_path / "storage" / "never.db"
    args = ["--sources", str(write_sources(web, tmp_path)), "--db", f"sqlite:///{db}"]
    assert main(["sources", *args]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["alpha", "beta", "gamma", "delta", "epsilon"]
    assert all(r.split()[3] == "new" for r in rows)
    assert not db.parent.exists(), "neither the database nor its folder"
    # Once something polled, the listing reads what it stored, and changes nothing.
    assert main(["poll", *args, "--allow-private-hosts"]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["sources", *args]) == 0
    assert "ok" in capsys.readouterr().out
    assert db.read_bytes() == before
