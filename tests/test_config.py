"""sources.toml is validated once, into typed objects, with one clear line per mistake."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aggregator import embeddings
from aggregator.config import (
    ConfigError,
    add_common_arguments,
    config_from_args,
    load_config,
    parse_sources,
    source_toml,
)
from aggregator.vocab import LEANS
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_sources_cover_the_spectrum() -> None:
    config = load_config(ROOT / "sources.toml")
    sources = config.sources
    assert len(sources) >= 24
    assert {s.lean for s in sources} == set(LEANS)
    names = {s.name for s in sources}
    assert "The Wall Street Journal" in names
    assert "New York Post" in names
    opinion = [s for s in sources if s.kind == "opinion"]
    assert sum(s.side == "left" for s in opinion) >= 2
    assert sum(s.side == "right" for s in opinion) >= 2
    assert all(s.rated_by for s in sources), "every lean cites who rated it"
    assert all(bool(s.owner) == bool(s.owner_source) for s in sources), "every owner is cited"
    owner = {s.id: s.owner for s in sources}
    assert owner["wsj"] == owner["nypost"] == owner["marketwatch"] == "News Corp"
    assert owner["fox-news"] == owner["fox-business"] == "Fox Corporation"
    assert owner["the-hill"] == owner["newsnation"] == "Nexstar Media Group"
    assert owner["cbs-news"] == "", "sold in 2025: not set until it is settled"
    assert all(s.feeds and all(f.startswith("https://") for f in s.feeds) for s in sources)
    assert config.settings.feed_size == 50
    assert config.settings.retention_days == 0


def test_fields_become_typed_values() -> None:
    settings, (src,) = parse_sources(
        """
        [settings]
        feed_size = 7
        [[source]]
        id = "x"
        name = "X News"
        homepage = "https://x.example/"
        feed = ["https://x.example/a.xml", "https://x.example/b.xml"]
        lean = "lean-left"
        kind = "opinion"
        interval = 15
        full_text = false
        """
    )
    assert settings.feed_size == 7
    assert src.feeds == ("https://x.example/a.xml", "https://x.example/b.xml")
    assert (src.side, src.kind, src.interval, src.full_text, src.enabled) == (
        "left",
        "opinion",
        15,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unknown-key", "source 'wsj': unknown key 'intervall'"),
        ("bad-url", "source 'nypost': feed 'nypost.com/feed/' is not an http(s) URL"),
        ("duplicate-id", "source 'wsj': duplicate id"),
        ("unknown-lean", "source 'nypost': unknown lean 'far-right'"),
        ("wrong-type", "source 'wsj': interval must be an integer"),
        ("not-toml", "not valid TOML"),
        ("bad-setting", "[settings]: feed_size must be at least 1"),
        ("bad-parse-timeout", "[settings]: parse_timeout must be positive"),
        ("bad-grouping", "[grouping]: embeddings must be"),
    ],
)
def test_bad_file_names_file_source_and_problem(name: str, message: str) -> None:
    path = FIXTURES / "bad-sources" / f"{name}.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert "\n" not in text


def test_an_owner_is_optional_and_cited(tmp_path: Path) -> None:
    """Issue 22: ``owner`` says who owns an outlet (spaces normalised, so one owner is spelt
    alike), ``owner_source`` where that comes from; neither is needed, and the writer of
    ``sources import`` writes them back."""
    path = tmp_path / "sources.toml"
    path.write_text(_ONE_SOURCE + 'owner = " News  Corp "\nowner_source = "News Corp, Form 10-K"\n')
    (src,) = load_config(path).sources
    assert (src.owner, src.owner_source) == ("News Corp", "News Corp, Form 10-K")
    _, (again,) = parse_sources(source_toml(src))
    assert (again.owner, again.owner_source) == (src.owner, src.owner_source)
    path.write_text(_ONE_SOURCE)
    (plain,) = load_config(path).sources
    assert (plain.owner, plain.owner_source) == ("", "")
    assert "owner" not in source_toml(plain)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('owner = "News Corp"', "source 'a': owner 'News Corp' needs owner_source"),
        ('owner = "News Corp"\nowner_source = " "', "owner 'News Corp' needs owner_source"),
        ('owner_source = "News Corp, Form 10-K"', "source 'a': owner_source without an owner"),
        ('owner = "  "\nowner_source = "x"', "source 'a': owner is empty"),
        ("owner = 3", "source 'a': owner must be a string, not 3"),
    ],
)
def test_owner_mistakes_are_one_line(tmp_path: Path, keys: str, message: str) -> None:
    assert_one_line_error(tmp_path, f"{_ONE_SOURCE}{keys}\n", message)


def test_grouping_defaults_to_no_embeddings() -> None:
    assert load_config(ROOT / "sources.toml").grouping.embeddings is False


def test_embeddings_need_the_extra_and_say_so_in_one_line() -> None:
    """``[grouping] embeddings = true`` loads where the extra is installed; elsewhere it is one
    line naming the file, the setting and the install command."""
    path = FIXTURES / "grouping" / "embeddings.toml"
    if embeddings.available():
        assert load_config(path).grouping.embeddings is True
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path}: [grouping]: embeddings = true, but ")
    assert "pip install -e '.[embeddings]'" in text and "\n" not in text


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser.parse_args(argv)


def test_options_beat_environment_beat_defaults(tmp_path: Path) -> None:
    sources = ROOT / "sources.toml"
    env = {
        "BALANCED_NEWS_SOURCES": str(sources),
        "BALANCED_NEWS_DB": "sqlite:///env.db",
        "BALANCED_NEWS_OUT": str(tmp_path / "env-out"),
        "BALANCED_NEWS_ALLOW_PRIVATE_HOSTS": "1",
    }
    from_env = config_from_args(_args(), env)
    assert (from_env.db_url, from_env.out_dir, from_env.allow_private_hosts) == (
        "sqlite:///env.db",
        tmp_path / "env-out",
        True,
    )
    from_args = config_from_args(_args("--db", "sqlite:///arg.db", "--out", "o"), env)
    assert (from_args.db_url, from_args.out_dir) == ("sqlite:///arg.db", Path("o"))
    default = config_from_args(_args("--sources", str(sources)), {})
    assert (default.db_url, default.out_dir, default.allow_private_hosts) == (
        "sqlite:///storage/balanced-news.db",
        Path("feeds"),
        False,
    )


_ONE_SOURCE = """
[[source]]
id = "a"
name = "A"
homepage = "https://a.example/"
feed = "https://a.example/feed.xml"
lean = "center"
"""


def test_workers_table_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(_ONE_SOURCE)
    defaults = load_config(path).workers
    assert (defaults.lease_seconds, defaults.batch, defaults.keep_jobs) == (120, 20, False)
    path.write_text(
        "[workers]\nconcurrency = 4\nlease_seconds = 30\nkeep_jobs = true\n" + _ONE_SOURCE
    )
    workers = load_config(path).workers
    assert (workers.concurrency, workers.lease_seconds, workers.keep_jobs) == (4, 30, True)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("concurrency = 0", "[workers]: concurrency must be at least 1"),
        ("dispatch_seconds = 60", "[workers]: dispatch_seconds must be from 1 to 59"),
        ("lease = 5", "[workers]: unknown key 'lease'"),
        ("keep_jobs = 1", "[workers]: keep_jobs must be true/false"),
        (
            "heartbeat_seconds = 30\nstalled_seconds = 30",
            "[workers]: stalled_seconds must be more than heartbeat_seconds",
        ),
    ],
)
def test_workers_table_mistakes_are_one_line(tmp_path: Path, table: str, message: str) -> None:
    assert_one_line_error(tmp_path, f"[workers]\n{table}\n{_ONE_SOURCE}", message)


def assert_one_line_error(folder: Path, text: str, message: str) -> None:
    """Loading ``text`` as a sources file fails with one line naming the file and ``message``."""
    path = folder / "sources.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = str(info.value)
    assert error.startswith(f"{path}: ") and message in error and "\n" not in error


def test_content_rules_become_typed_values(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    rules = 'select = "td.storycell .storytext"\nstrip = [".ledger-box", "aside > p"]\n'
    path.write_text(_ONE_SOURCE + rules)
    (src,) = load_config(path).sources
    assert src.select == "td.storycell .storytext"
    assert src.strip == (".ledger-box", "aside > p")
    path.write_text(_ONE_SOURCE)
    (plain,) = load_config(path).sources
    assert (plain.select, plain.strip) == (None, ())


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('select = "div..body"', "source 'a': select 'div..body': not a valid CSS selector ("),
        ('strip = [".ok", "a["]', "source 'a': strip 'a[': not a valid CSS selector ("),
        ('strip = ["p::first-line"]', "strip 'p::first-line': not a valid CSS selector ("),
        ('select = "  "', "source 'a': select '  ': is empty"),
        ("strip = [3]", "source 'a': strip 3: must be a string, not 3"),
        ('strip = ".ad"', "source 'a': strip must be a list, not '.ad'"),
    ],
)
def test_content_rule_mistakes_are_one_line_naming_the_source(
    tmp_path: Path, rules: str, message: str
) -> None:
    """A selector lxml cannot compile is caught at load, not on the first page it meets."""
    assert_one_line_error(tmp_path, f"{_ONE_SOURCE}{rules}\n", message)
