"""Hand-written story fixtures (tests/fixtures/stories/*.json) as the plain data stages take."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path

from aggregator.config import Source
from aggregator.demo import SampleWeb
from aggregator.models import ClusterArticle, Rewrite, Sentence, StoryArticle
from aggregator.publish.prose import worded
from aggregator.rewrite import coverage_of, rewrite_story
from aggregator.text import words
from tests.conftest import respond

STORIES = Path(__file__).parent / "fixtures" / "stories"


def _raw(name: str) -> list[dict]:
    return json.loads((STORIES / f"{name}.json").read_text(encoding="utf-8"))


def worded_story(articles: Sequence[StoryArticle], summary_words: int | None = None) -> Rewrite:
    """The story as a reader gets it: the rewrite, worded by publishing (its lead-ins and
    summary, ``publish.prose.worded``)."""
    kwargs = {} if summary_words is None else {"summary_words": summary_words}
    return worded(rewrite_story(articles, **kwargs), coverage_of(articles).first_source)


def worded_body(body: Sequence[Sentence], articles: Sequence[StoryArticle]) -> list[Sentence]:
    """A body (``rewrite.body.body_of``) as publishing words it, behind its lead-ins."""
    story = Rewrite("", "", tuple(body), (), (), ())
    return list(worded(story, coverage_of(articles).first_source).body)


def story_articles(name: str) -> list[StoryArticle]:
    return [
        StoryArticle(
            **{k: v for k, v in d.items() if k not in ("gold", "published")},
            published=datetime.fromisoformat(d["published"]),
        )
        for d in _raw(name)
    ]


def gold_stories(name: str) -> dict[int, str]:
    """Entry id -> the story it truly belongs to, for fixtures that say (``gold``)."""
    return {d["entry_id"]: d["gold"] for d in _raw(name)}


def cluster_articles(name: str) -> list[ClusterArticle]:
    return [
        ClusterArticle(
            entry_id=a.entry_id,
            source_id=a.source_id,
            title=a.title,
            text=a.text,
            published=a.published,
            kind=a.kind,
        )
        for a in story_articles(name)
    ]


def serve_as_outlets(
    web: SampleWeb, name: str, changes: dict[int, dict] | None = None
) -> tuple[Source, ...]:
    """A story fixture served on the loopback web as real outlets: one RSS feed per source
    (``/<name>-<source>/rss.xml``) and one article page per entry, with the fixture's text.
    ``changes`` overrides fields of entries by id; a ``section`` puts its page in that folder
    of its source's (``/<name>-<source>/<section>/<id>.html``)."""
    by_source: dict[str, list[dict]] = {}
    for d in _raw(name):
        d = {**d, **(changes or {}).get(d["entry_id"], {})}
        by_source.setdefault(d["source_id"], []).append(d)
    sources = []
    for source_id, items in by_source.items():
        folder = f"{name}-{source_id}"
        rss_items = []
        for d in items:
            section = f"{d['section']}/" if d.get("section") else ""
            path = f"/{folder}/{section}{d['entry_id']}.html"
            page = (
                "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>{escape(d['title'])}</title></head><body><article>"
                f"<h1>{escape(d['title'])}</h1>"
                + "".join(f"<p>{escape(p)}</p>" for p in d["text"].split(". "))
                + "</article></body></html>"
            ).encode()
            web.routes[path] = respond(200, page, "text/html; charset=utf-8")
            when = format_datetime(datetime.fromisoformat(d["published"]), usegmt=True)
            rss_items.append(
                f"<item><title>{escape(d['title'])}</title><link>{web.url(path[1:])}</link>"
                f"<guid>{web.url(path[1:])}</guid><pubDate>{when}</pubDate></item>"
            )
        rss = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{escape(items[0]['source_name'])}</title><link>{web.url(folder + '/')}</link>"
            + "".join(rss_items)
            + "</channel></rss>"
        ).encode()
        web.routes[f"/{folder}/rss.xml"] = respond(200, rss, "application/rss+xml")
        sources.append(
            Source(
                id=folder,
                name=items[0]["source_name"],
                homepage=web.url(folder + "/"),
                feeds=(web.url(f"{folder}/rss.xml"),),
                lean=items[0]["lean"],
                kind=items[0]["kind"],
                owner=items[0].get("owner", ""),
                owner_source="test fixture; owner set by the balanced-news authors"
                if items[0].get("owner")
                else "",
            )
        )
    return tuple(sources)


def word_overlap(a: str, b: str) -> float:
    """Word-set overlap of two texts (shared words over the smaller set): issue 13's test of
    whether two Common Ground claims say the same thing (0.6 or more)."""
    wa, wb = set(words(a.lower())), set(words(b.lower()))
    return len(wa & wb) / min(len(wa), len(wb))
