"""Migrations: a fresh database starts at head; a database made before migrations (today's
schema, and an older one without the newest columns) upgrades with every row kept, on a real
SQLite file and a real PostgreSQL; every command refuses an out-of-date schema in one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    inspect,
    select,
    text,
)

from aggregator import demo, migrations
from aggregator.cli import main
from aggregator.config import Config, parse_sources
from aggregator.demo.server import PLACEHOLDER
from aggregator.pipeline import Pipeline
from aggregator.publish import atom_id
from aggregator.serve import create_app
from aggregator.store import schema as db
from aggregator.store.schema import Base, EntryRow, SchemaError, SourceRow, StoryRow
from tests.conftest import FIXTURES, serving

TODAY_SQLITE = FIXTURES / "db" / "5e8b103-sqlite.sql"  # schema and rows, by that commit's code
TODAY_POSTGRESQL = FIXTURES / "db" / "5e8b103-postgresql.sql"  # that commit's DDL
ROOT = Path(__file__).resolve().parents[1]
# The columns the newest pre-migration versions added (story identity and attribution).
NEWEST = {"copy_of", "merged_into", "first_source_id", "outlets_json", "blindspot"}
NEWEST |= {"count_left", "count_center", "count_right"}


def _baseline() -> Any:
    """The baseline migration module: its ``schema`` is the pre-migration schema, frozen."""
    path = Path(migrations.__file__).parent / "versions" / "0001_baseline.py"
    spec = importlib.util.spec_from_file_location("baseline_0001", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BASELINE: MetaData = _baseline().schema


def _todays_sqlite(path: Path) -> None:
    """A SQLite file as commit 5e8b103 left it after one cycle (tests/fixtures/db)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(TODAY_SQLITE.read_text(encoding="utf-8"))
    conn.close()


def _older_schema() -> MetaData:
    """The pre-migration schema without its newest columns: a database an older version made."""
    older = MetaData()
    for table in BASELINE.sorted_tables:
        uniques = [
            UniqueConstraint(*c.columns.keys(), name=c.name)
            for c in table.constraints
            if isinstance(c, UniqueConstraint)
        ]
        columns = [
            Column(
                c.name,
                c.type,
                *(ForeignKey(fk.target_fullname, ondelete=fk.ondelete) for fk in c.foreign_keys),
                primary_key=c.primary_key,
                nullable=c.nullable,
            )
            for c in table.columns
            if c.name not in NEWEST
        ]
        Table(table.name, older, *columns, *uniques)
    return older


def _copy_rows(source: Engine, target: Engine, schema: MetaData) -> None:
    """Every row of the 5e8b103 database into ``target``'s tables (the columns ``schema``
    has), with PostgreSQL's id sequences moved past them as real inserts would have."""
    with source.connect() as src, target.begin() as dst:
        for table in schema.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(*table.columns))]
            if rows:
                dst.execute(table.insert(), rows)
            serial = "id" in table.c and isinstance(table.c.id.type, Integer)
            if target.dialect.name == "postgresql" and serial and rows:
                dst.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :n)"),
                    {"n": max(r["id"] for r in rows)},
                )


def _snapshot(engine: Engine, schema: MetaData) -> dict[str, list[tuple]]:
    """Every row of every table, in the columns ``schema`` knows, ordered by primary key."""
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(*t.columns).order_by(*t.primary_key))]
            for t in schema.sorted_tables
        }


def _schema_drift(engine: Engine) -> list[Any]:
    """What differs between the database and the models (alembic's autogenerate compare)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if d[0] != "remove_table"]


def _pre_migration_database(kind: str, backend: str, tmp_path: Path, pg_url: str | None) -> str:
    """A database as balanced-news left it before migrations, with rows: ``today`` (5e8b103's
    schema) or ``older`` (without the newest columns); on SQLite or PostgreSQL."""
    fixture = tmp_path / "5e8b103.db"
    _todays_sqlite(fixture)
    if backend == "sqlite" and kind == "today":
        return f"sqlite:///{fixture}"
    url = pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'older.db'}"
    assert url is not None
    target = create_engine(url)
    if kind == "today":  # PostgreSQL with 5e8b103's DDL
        with target.begin() as conn:
            conn.exec_driver_sql(TODAY_POSTGRESQL.read_text(encoding="utf-8"))
        schema = BASELINE
    else:
        schema = _older_schema()
        schema.create_all(target)
    source = create_engine(f"sqlite:///{fixture}")
    _copy_rows(source, target, schema)
    source.dispose()
    target.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None on SQLite; a fresh PostgreSQL database (or a skip saying why there is none)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


def _backend(url: str | None) -> str:
    return "sqlite" if url is None else "postgresql"


# --- a fresh database ---------------------------------------------------------------------------


def test_a_fresh_database_starts_at_head_with_no_extra_step(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    engine = db.connect(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            migrations.head()
        )
    assert _schema_drift(engine) == []
    engine.dispose()
    assert main(["db", "status", "--db", url]) == 0
    assert "state: current" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_every_migration_from_scratch_gives_the_models_schema(backend_url: str | None, tmp_path):
    """Running the migrations on an empty database, and creating it from the models (what a
    fresh install does), give the same schema: a model change without its migration fails."""
    url = backend_url or f"sqlite:///{tmp_path / 'scratch.db'}"
    engine = migrations.migration_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "head")
    engine.dispose()
    engine = db.engine_for(url)
    assert _schema_drift(engine) == []
    with engine.connect() as conn:
        assert db.schema_status(conn).state == "current"
    engine.dispose()


def test_processes_starting_together_create_the_database_once(
    backend_url: str | None, tmp_path: Path
) -> None:
    url = backend_url or f"sqlite:///{tmp_path / 'race.db'}"
    code = "import sys; from aggregator.store import connect; connect(sys.argv[1]).dispose()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    engine = db.connect(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


# --- a database made before migrations ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["today", "older"])
def test_a_pre_migration_database_upgrades_without_loss(
    kind: str, backend_url: str | None, config: Config, tmp_path: Path
) -> None:
    url = _pre_migration_database(kind, _backend(backend_url), tmp_path, backend_url)
    schema = BASELINE if kind == "today" else _older_schema()
    engine = create_engine(url)
    before = _snapshot(engine, schema)
    assert len(before["entries"]) == 11 and len(before["stories"]) == 3
    with pytest.raises(SchemaError, match="run `balanced-news db upgrade`"):
        db.connect(url)
    assert _snapshot(engine, schema) == before, "a refused start changed nothing"

    assert main(["db", "upgrade", "--db", url]) == 0
    assert _snapshot(engine, schema) == before, "every row and value kept"
    # The schema a fresh install gets; but for an older database, as the pre-migration upgrade
    # did, an added column gets no foreign key (SQLite cannot add one to an existing table).
    drift = [(d[0], d[1].table.name, *d[1].columns.keys()) for d in _schema_drift(engine)]
    assert drift == ([] if kind == "today" else [("add_fk", "entries", "copy_of")])
    with engine.connect() as conn:
        if kind == "older":  # the new columns took the values the models give new rows
            counts = conn.execute(select(func.sum(StoryRow.count_left + StoryRow.count_right)))
            assert counts.scalar() == 0
            assert conn.execute(select(func.count()).where(StoryRow.blindspot)).scalar() == 0
        names = {ix["name"] for ix in inspect(conn).get_indexes("entries")}
        assert {"ix_entries_copy_of", "ix_entries_story_id", "ix_entries_source_ident"} <= names
    engine.dispose()

    # and the upgraded database works: a full cycle over the same outlets
    upgraded = dataclasses.replace(config, db_url=url)
    with Pipeline(upgraded) as pipeline:
        report = pipeline.run_cycle()
        assert report.failed == [] and report.stories >= 3
        with pipeline.session() as s:
            assert s.scalar(select(func.count()).select_from(EntryRow)) >= 11
            assert s.scalar(select(func.count()).where(StoryRow.first_source_id.is_(None))) == 0


def test_a_database_with_only_early_tables_upgrades(tmp_path: Path) -> None:
    """The earliest installs had a sources table of five columns: its row keeps its values and
    gains the defaults; the other tables are made."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE sources (id VARCHAR(100) PRIMARY KEY, name VARCHAR(300), "
            "lean VARCHAR(20), kind VARCHAR(20), status VARCHAR(20))"
        )
        conn.execute("INSERT INTO sources VALUES ('old', 'Old News', 'center', 'news', 'ok')")
    conn.close()
    url = f"sqlite:///{path}"
    before, after = db.upgrade(url)
    assert (before.state, after.state) == ("old", "current")
    engine = db.connect(url)
    assert {t.name for t in Base.metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    with db.session_factory(engine)() as s:
        row = s.scalars(select(SourceRow)).one()
        assert (row.name, row.status, row.consecutive_errors) == ("Old News", "ok", 0)
    engine.dispose()
    assert db.upgrade(url)[0].state == "current"  # a second upgrade changes nothing


def test_image_captions_arrive_empty_and_leave_without_loss(
    backend_url: str | None, tmp_path: Path
) -> None:
    """0007 adds ``entries.image_caption``: stored entries keep every value and have no
    caption (their title stays their picture's alt text) until a new entry brings one; a
    downgrade to 0006 drops the column and keeps every row."""
    url = _pre_migration_database("today", _backend(backend_url), tmp_path, backend_url)
    assert db.upgrade(url)[1].state == "current"
    engine = create_engine(url)
    before = _snapshot(engine, BASELINE)
    with engine.begin() as conn:
        captions = conn.execute(select(EntryRow.id, EntryRow.image_caption)).all()
        assert len(captions) == 11 and {c for _, c in captions} == {None}
        conn.execute(EntryRow.__table__.update().values(image_caption="A caption"))
    migration = migrations.migration_engine(url)
    with migration.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0006")
    with engine.connect() as conn:
        assert "image_caption" not in {c["name"] for c in inspect(conn).get_columns("entries")}
    assert _snapshot(engine, BASELINE) == before
    with migration.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "head")
    migration.dispose()
    with engine.connect() as conn:
        assert {c for (c,) in conn.execute(select(EntryRow.image_caption))} == {None}
    assert _snapshot(engine, BASELINE) == before and _schema_drift(engine) == []
    engine.dispose()


# The database `balanced-news demo --port 8791` left at a9c4179, the last commit that stored
# each story's rendered HTML (schema 0007): eight sample outlets, five stories and one merged.
RENDERED_SQLITE = FIXTURES / "db" / "a9c4179-demo-sqlite.sql"


def _demo_config(url: str, out: Path) -> Config:
    """The demo's own sources (names, leans, owners) at the address that run served them on."""
    text = demo.SOURCES.read_text("utf-8").replace(PLACEHOLDER, "http://127.0.0.1:8791")
    settings, sources = parse_sources(text, "demo-sources.toml")
    return Config(
        sources=sources,
        settings=settings,
        sources_path=out / "demo-sources.toml",
        db_url=url,
        out_dir=out,
        allow_private_hosts=True,
    )


def test_stories_stored_as_html_are_published_alike_and_rendered_from_data_after_0008(
    tmp_path: Path,
) -> None:
    """0008 stores the rewrite as data and lets publishing render it. On the database a9c4179
    made: every row and value is kept; what it published is published as it rendered it; the
    next rewrite run adds each story's coverage without rewriting it (its inputs did not
    change), and publishing then renders, from the data, the HTML a9c4179 rendered, byte for
    byte; no story's ``updated`` time moves. A downgrade leaves the rows whose HTML only 0008
    renders to the older version's next rewrite."""
    path = tmp_path / "a9c4179.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(RENDERED_SQLITE.read_text(encoding="utf-8"))
    conn.close()
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    made = MetaData()
    made.reflect(engine)
    made.remove(made.tables["alembic_version"])
    before = _snapshot(engine, made)
    with engine.connect() as conn:
        old = {
            sid: (html, content_hash, updated)
            for sid, html, content_hash, updated in conn.execute(
                text("SELECT id, content_html, content_hash, updated_at FROM stories")
            )
        }
    published = {sid for sid, (html, _, _) in old.items() if html}
    assert len(published) == 5 and len(old) == 6, "five stories published, one merged away"

    assert db.upgrade(url)[1].state == "current"
    assert _snapshot(engine, made) == before, "every row and value kept"
    with engine.connect() as conn:
        status = dict(conn.execute(select(StoryRow.id, StoryRow.status)).all())
    assert status == {sid: "ready" if sid in published else "merged" for sid in old}

    config = _demo_config(url, tmp_path / "feeds")
    with Pipeline(config) as pipeline:
        shown = {s.id: s.content_html for s in pipeline.published_stories(everything=True)}
        assert shown == {sid: old[sid][0] for sid in published}, "published as a9c4179 rendered"
        assert pipeline.rewrite() == 5, "each stored story gains its coverage"
        with engine.connect() as conn:
            rows = conn.execute(
                select(StoryRow.id, StoryRow.coverage_json, StoryRow.content_html).where(
                    StoryRow.status == "ready"
                )
            ).all()
        assert {sid for sid, coverage, html in rows if coverage and html is None} == published
        rendered = {s.id: s.content_html for s in pipeline.published_stories(everything=True)}
        assert rendered == shown, "rendered from the data: the HTML a9c4179 rendered"
        pipeline.publish()
        assert pipeline.rewrite() == 0, "nothing left to do"
    with engine.connect() as conn:
        after = {
            sid: (content_hash, updated)
            for sid, content_hash, updated in conn.execute(
                text("SELECT id, content_hash, updated_at FROM stories")
            )
        }
    assert after == {sid: (h, u) for sid, (_, h, u) in old.items()}, "no updated time moved"
    feed = (tmp_path / "feeds" / "balanced.atom").read_text("utf-8")
    assert all(atom_id(sid) in feed for sid in published)

    migration = migrations.migration_engine(url)
    with migration.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0007")
    migration.dispose()
    with engine.connect() as conn:
        due = conn.execute(
            text("SELECT id FROM stories WHERE input_hash IS NULL AND merged_into IS NULL")
        ).scalars()
        assert set(due) == published, "the older version rewrites (and renders) them"
    engine.dispose()


# An extra step, in a copy of the migrations folder, that copies the stories table (SQLite's
# way to alter it), fills the new column, and then fails or is killed before it ends.
FAILING_STEP = """
import os, signal
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"


def upgrade():
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("probe_id", sa.String(64)))
    op.execute("UPDATE stories SET probe_id = id, headline = 'half-done'")
    if os.environ.get("HOW") == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError("this step fails")
"""


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_an_interrupted_upgrade_leaves_the_previous_schema_and_every_row(
    how: str, backend_url: str | None, tmp_path: Path
) -> None:
    url = _pre_migration_database("today", _backend(backend_url), tmp_path, backend_url)
    assert db.upgrade(url)[1].state == "current"
    engine = create_engine(url)
    before = _snapshot(engine, BASELINE)
    folder = tmp_path / "migrations"
    shutil.copytree(Path(migrations.__file__).parent, folder)
    failing = FAILING_STEP.replace("{head}", migrations.head())  # one step past the newest
    (folder / "versions" / "9999_fails.py").write_text(failing, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(folder / "alembic.ini"), "-x", f"db={url}"]
        + ["upgrade", "head"],
        env={**os.environ, "HOW": how},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == (-9 if how == "kill" else 1), proc.stderr
    assert _snapshot(engine, BASELINE) == before
    with engine.connect() as conn:
        assert "probe_id" not in {c["name"] for c in inspect(conn).get_columns("stories")}
        assert db.schema_status(conn).state == "current"  # still at the head, as before
    engine.dispose()
    db.connect(url).dispose()  # and usable


# --- refusing an out-of-date schema -------------------------------------------------------------

COMMANDS = [
    ["run", "--once"],
    ["poll"],
    ["publish"],
    ["sources"],
    ["serve", "--port", "1"],
    ["demo"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_every_command_refuses_an_out_of_date_schema(
    argv: list[str], config: Config, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "today.db"
    _todays_sqlite(path)
    url = f"sqlite:///{path}"
    common = ["--db", url, "--out", str(tmp_path / "o")]
    if argv[0] != "demo":  # the demo refuses --sources: it polls its own sample outlets
        common += ["--sources", str(config.sources_path)]
    if argv[0] == "serve":  # serve refuses a missing folder before it looks at the database
        published = tmp_path / "published"
        published.mkdir()
        common[3] = str(published)
    assert main([*argv, *common, "--allow-private-hosts"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"balanced-news: database {url} is at schema none (made before migrations), "
        f"this version needs {migrations.head()}: run `balanced-news db upgrade`"
    ]
    assert not (tmp_path / "o").exists(), "nothing published"
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "alembic_version" not in tables


def test_serve_reports_an_out_of_date_schema_as_unhealthy(config: Config, tmp_path: Path):
    path = tmp_path / "today.db"
    _todays_sqlite(path)
    old = dataclasses.replace(config, db_url=f"sqlite:///{path}")
    with serving(create_app(old)) as base:
        response = httpx.get(f"{base}/healthz")
    assert response.status_code == 503
    assert response.json()["database"].endswith("run `balanced-news db upgrade`")


def test_a_schema_from_a_newer_version_is_refused(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    db.connect(url).dispose()
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    with pytest.raises(SchemaError, match="a newer balanced-news upgraded it"):
        db.connect(url)
    assert main(["db", "upgrade", "--db", url]) == 2
    assert "9999" in capsys.readouterr().err
    assert main(["db", "status", "--db", url]) == 1


def test_the_scheduler_script_refuses_an_out_of_date_schema(config: Config, tmp_path: Path):
    path = tmp_path / "today.db"
    _todays_sqlite(path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scheduler.py"), "--once", "--db", f"sqlite:///{path}"]
        + ["--sources", str(config.sources_path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("run `balanced-news db upgrade`")
    assert len(proc.stderr.strip().splitlines()) == 1


# --- shipped in the package ---------------------------------------------------------------------

IGNORED = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
IGNORED += (".hypothesis", "storage", "feeds")


def test_an_installed_package_finds_its_migrations(tmp_path: Path) -> None:
    """The wheel carries the migrations; from it, outside the source tree, `db upgrade` works."""
    source = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("balanced_news-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    for name in (
        "env.py",
        "script.py.mako",
        "alembic.ini",
        "README.md",
        "versions/0001_baseline.py",
    ):
        assert f"aggregator/migrations/{name}" in names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    code = (
        "import sys, aggregator; from aggregator.cli import main; "
        "print(aggregator.__file__); sys.exit(main(['db', 'upgrade', '--db', 'sqlite:///x.db']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(tmp_path / "site")), "ran the installed copy"
    assert f"Database created at schema {migrations.head()}" in proc.stdout
