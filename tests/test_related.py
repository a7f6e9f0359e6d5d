"""The looser search behind "not covered" claims (aggregator/related.py): the decision on plain
data, and a whole cycle on the loopback web where one side tells an event in other words."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import feedparser
from lxml import html as lxml_html

from aggregator import related
from aggregator.demo import SampleWeb
from aggregator.models import CoverageNote, PublishedStory
from aggregator.pipeline import Pipeline
from aggregator.related import blindspot_side
from tests.conftest import extra_source, make_config, respond
from tests.stories import serve_as_outlets, story_articles

NOT_COVERED = "outlet has covered this story yet"


def test_related_steps_keep_other_stories_at_or_above_the_threshold_once() -> None:
    near = [("a", 0.9), ("own", 0.8), ("b", 0.004), ("c", 0.02), ("a", 0.3)]
    steps = related.related_steps(7, "own", near, threshold=0.01)
    assert {(s.story_id, s.score) for s in steps} == {("a", 0.9), ("c", 0.02)}
    assert all(s.entry_id == 7 for s in steps)


def test_a_missing_side_is_a_related_angle_only_when_the_search_found_that_side() -> None:
    dam, library = story_articles("other-words")[:2], story_articles("other-words")[3:]
    centre, right = dam
    left_elsewhere = story_articles("other-words")[2]
    # Nothing found: the left side is not covered.
    assert related.coverage_notes(dam, []) == (CoverageNote("no_coverage", "left"),)
    # A centre article or one of the same side found is no coverage of the missing side.
    assert related.coverage_notes(dam, [centre, right]) == (CoverageNote("no_coverage", "left"),)
    (note,) = related.coverage_notes(dam, [left_elsewhere, *library])
    assert (note.code, note.side, note.outlet, note.title, note.link) == (
        "related_angle",
        "left",
        "Harbor Progressive",
        left_elsewhere.title,
        left_elsewhere.link,
    )
    # The most related comes first and is the one named.
    (note,) = related.coverage_notes(dam, [*library, left_elsewhere])
    assert note.link == library[0].link
    # An article of that side from long before is no coverage of this story.
    old = dataclasses.replace(left_elsewhere, published=centre.published - timedelta(days=5))
    assert related.coverage_notes(dam, [old]) == (CoverageNote("no_coverage", "left"),)
    assert related.coverage_notes(dam, [old], days=timedelta(days=6))[0].code == "related_angle"
    # Both sides covered: nothing to say.
    assert related.coverage_notes([*dam, left_elsewhere], []) == ()


def test_a_side_reached_only_by_a_side_completion_join_is_named_as_joined() -> None:
    """The left article the side-completion search joined (below the join threshold) reaches
    the left side, but the reader is told which article that is and that it was joined on a
    weaker match: a ``side_join`` note naming it, never "not covered" nor a related angle."""
    dam = story_articles("other-words")[:2]
    left = dataclasses.replace(story_articles("other-words")[2], side_join=True)
    library = story_articles("other-words")[3:]
    (note,) = related.coverage_notes([*dam, left], [*library])
    assert (note.code, note.side, note.outlet, note.title, note.link) == (
        "side_join",
        "left",
        "Harbor Progressive",
        left.title,
        left.link,
    )
    # The same article joined at the threshold: both sides reached, nothing to say.
    firm = dataclasses.replace(left, side_join=False)
    assert related.coverage_notes([*dam, firm], []) == ()


def test_a_story_is_a_blindspot_only_when_the_search_found_nothing_of_the_other_side() -> None:
    angle = CoverageNote("related_angle", "left", "Harbor Progressive", "t", "http://h.example/")
    assert blindspot_side(("center", "right")) == "right"
    assert blindspot_side(("center", "right"), (CoverageNote("no_coverage", "left"),)) == "right"
    assert blindspot_side(("center", "right"), (angle,)) is None
    assert blindspot_side(("left", "right")) is None


def _entries(path: Path) -> list[feedparser.FeedParserDict]:
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    return [e for e in feed.entries if any(x.rel == "related" for x in e.links)]


def _related(entry: feedparser.FeedParserDict) -> set[str]:
    return {x.href.rsplit("/", 1)[-1] for x in entry.links if x.rel == "related"}


def test_one_side_in_other_words_is_no_blindspot_and_no_not_covered_claim(
    web: SampleWeb, tmp_path: Path
) -> None:
    """A left-leaning outlet tells the dam evacuation in other words than the centre and
    right-leaning ones (families, a tenant organizer, no spillway): the grouping keeps it
    apart, but the dam story does not say the left has not covered it, names the left article
    as a related angle (outlet, headline, link) on its page and in the JSON Feed, and the
    blindspot feed does not list it. The library strike only the left covered still is one."""
    config = make_config(web, tmp_path, extra=serve_as_outlets(web, "other-words"))
    report = Pipeline(config).run_cycle()
    assert report.failed == []
    entries = _entries(report.feed_path)
    by_article = {name: e for e in entries for name in _related(e)}
    dam, left, library = by_article["601.html"], by_article["603.html"], by_article["604.html"]
    assert by_article["602.html"] is dam
    assert left is not dam, "the left article should be a split, else this tests nothing"

    content = dam.content[0].value
    assert NOT_COVERED not in content
    page = lxml_html.fragment_fromstring(content, create_parent="div")
    (angle,) = page.xpath(".//section[@class='progressive']/p[@class='related-angle']")
    (link,) = angle.iter("a")
    assert link.get("href") == web.url("other-words-harbor/603.html")
    assert "Harbor Progressive" in link.text_content()
    assert "Brackenford families flee" in link.text_content()
    assert "related angle" in angle.text_content()
    # The left article's own story names the right-leaning dam report the same way.
    assert NOT_COVERED not in left.content[0].value
    assert "Ironside Courier" in left.content[0].value

    # The library strike: nothing of the right's found, so it says so and is a blindspot.
    assert "No right-leaning outlet has covered this story yet." in library.content[0].value
    blind = {e.id for e in _entries(config.out_dir / "blindspot.atom")}
    assert library.id in blind
    assert dam.id not in blind and left.id not in blind
    assert "blindspot" not in {t.term for t in dam.get("tags", [])}

    # The story page and the JSON Feed say which of the two happened.
    items = {
        i["id"]: i for i in json.loads((config.out_dir / "balanced.json").read_text())["items"]
    }
    (note,) = items[dam.id]["_balanced_news"]["coverage"]
    assert (note["note"], note["side"], note["outlet"]) == (
        "related_angle",
        "left",
        "Harbor Progressive",
    )
    assert note["url"] == web.url("other-words-harbor/603.html")
    (note,) = items[library.id]["_balanced_news"]["coverage"]
    assert (note["note"], note["side"]) == ("no_coverage", "right")
    # The dam story's own page (its entry's alternate link): the related angle, no blindspot
    # line, no claim.
    page = (config.out_dir / "stories" / dam.link.rsplit("/", 1)[-1]).read_text()
    view = lxml_html.fromstring(page).xpath("//section[@class='progressive']")[0]
    assert NOT_COVERED not in view.text_content()
    assert [a.get("href") for a in view.iter("a")] == [web.url("other-words-harbor/603.html")]
    assert 'class="blindspot"' not in page
    library_page = (config.out_dir / "stories" / library.link.rsplit("/", 1)[-1]).read_text()
    assert 'class="blindspot"' in library_page

    # Another cycle: the same entries under the same ids, every article still linked.
    ids = {e.id: _related(e) for e in entries}
    Pipeline(config).run_cycle()
    again = {e.id: _related(e) for e in _entries(report.feed_path)}
    assert again == ids


def test_a_story_whose_related_story_changed_is_rechecked_after_a_crash(
    web: SampleWeb, tmp_path: Path, backend: str
) -> None:
    """The left's article on the dam is grouped apart, right side not covered. A right-leaning
    outlet then republishes the centre's dam report: a copy, so it joins the dam story without
    being compared with the left story. The process dies after the group stage; a fresh
    pipeline's rewrite stage still looks at the left story's notes again (the right side is
    now found, through the dam story), and only once."""
    dam_report = web.url("other-words-kestrel/601.html")
    rss = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>"
        f"<item><title>Dam spillway cracks</title><link>{dam_report}</link>"
        "<pubDate>Mon, 14 Sep 2026 12:00:00 GMT</pubDate></item></channel></rss>"
    ).encode()
    web.routes["/syndicated/rss.xml"] = respond(200, rss, "application/rss+xml")
    wire = extra_source(web, "syndicated", "syndicated/rss.xml", lean="right")
    config = make_config(web, tmp_path, extra=(*serve_as_outlets(web, "other-words"), wire))
    config = dataclasses.replace(config, db_url=backend)
    outlets = {s.id: s for s in config.sources}

    def left_story(pipeline: Pipeline) -> PublishedStory:
        (story,) = [
            s
            for s in pipeline.published_stories(everything=True)
            if web.url("other-words-harbor/603.html") in {r.url for r in s.related}
        ]
        return story

    first = Pipeline(config)
    first.poll([outlets["other-words-kestrel"], outlets["other-words-harbor"]])
    first.extract_pending()
    first.rewrite(first.group())
    first.publish()  # what readers see, and when it last changed
    before = left_story(first)
    assert [(n.code, n.side) for n in before.notes] == [("no_coverage", "right")]
    assert dam_report not in {r.url for r in before.related}, "the left article stands apart"

    first.poll([wire])
    first.extract_pending()
    first.group()
    first.store.engine.dispose()  # ... and the process dies here, before the rewrite stage

    again = Pipeline(config)
    assert again.rewrite() == 2, "the dam story (a new outlet) and the left story (its notes)"
    again.publish()
    after = left_story(again)
    assert after.id == before.id
    (note,) = after.notes
    assert (note.code, note.side, note.outlet) == ("related_angle", "right", wire.name)
    assert note.link == dam_report
    assert after.updated > before.updated
    # Looked at once: the next rewrite stage finds nothing changed.
    assert Pipeline(config).rewrite() == 0
