"""The published site in a real headless browser: Debian's chromium driven by Playwright.

Checks what a reader sees on a phone and on a desktop (sections visible, nothing wider than
the screen, perspectives side by side only where there is room), basic accessibility (one h1,
no skipped heading levels, alt text, contrast), that the strict CSP breaks nothing, and that
the hostile corpus runs no script in the browser. Screenshots go to the test's tmp folder.
Skips where chromium is not installed (a user's machine); CI installs it.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest

from aggregator.config import Config
from aggregator.demo import SampleWeb
from aggregator.pipeline import Pipeline
from aggregator.serve import create_app
from tests.conftest import (
    assert_valid_atom,
    extra_source,
    hostile_outlet,
    make_config,
    respond,
    serving,
)
from tests.site_events import CAPTIONS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run "
        "the browser tests (.ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Contrast of an element's text against the nearest opaque background (WCAG 2 formula).
CONTRAST_JS = """
(el) => {
  const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92
                                      : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  let bg = null;
  for (let n = el; n && !bg; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length < 4 || c[3] > 0) bg = c;
  }
  const fg = lum(rgb(getComputedStyle(el).color)), back = lum(bg || [255, 255, 255]);
  return (Math.max(fg, back) + 0.05) / (Math.min(fg, back) + 0.05);
}
"""

HEADINGS_JS = """
() => Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).map((h) => +h.tagName[1])
"""


def assert_heading_outline(page) -> None:  # noqa: ANN001 - a Playwright page
    """One h1, first; no level skipped on the way down (screen readers navigate by them)."""
    levels = page.evaluate(HEADINGS_JS)
    assert levels.count(1) == 1 and levels[0] == 1, levels
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def png(width: int, height: int) -> bytes:
    """A plain grey PNG: the picture an outlet's og:image points to."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x99" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def published(web: SampleWeb, tmp_path: Path) -> Config:
    """The fixture outlets plus one failing source (for the status banner), published; the
    outlets serve the pictures their pages name (the browser loads them from there)."""
    web.routes["/down/rss.xml"] = respond(503, b"maintenance")
    config = make_config(web, tmp_path, extra=(extra_source(web, "down", "down/rss.xml"),))
    Pipeline(config).run_cycle()
    picture = respond(200, png(120, 80), "image/png")
    for item in json.loads((config.out_dir / "balanced.json").read_bytes())["items"]:
        web.routes[urlsplit(item["image"]).path] = picture
    return config


def shown_images(config: Config) -> dict[str, dict[str, str]]:
    """Each story's lead image as the JSON Feed gives it (address, credit, alt), by story id
    (its page's name)."""
    items = json.loads((config.out_dir / "balanced.json").read_bytes())["items"]
    return {
        Path(urlsplit(i["url"]).path).stem: {"url": i["image"], **i["_balanced_news"]["image"]}
        for i in items
        if "image" in i
    }


def assert_lead_images(page, width: int, images: dict[str, dict[str, str]]) -> None:  # noqa: ANN001
    """Every story shows its lead image, loaded, within the screen, with its alt text (the
    picture's own caption where it has one, else its article's title) and a visible credit
    naming its outlet."""
    stories = page.locator("article.story")
    figures = page.locator("article.story figure.lead-image")
    assert figures.count() == stories.count() > 0
    for story in stories.all():
        shown = images[(story.get_attribute("id") or "").removeprefix("story-")]
        figure = story.locator("figure.lead-image")
        img = figure.locator("img")
        figure.scroll_into_view_if_needed()  # lazy loading: the reader scrolls to it
        img.evaluate("(i) => i.decode()")
        assert img.is_visible() and img.get_attribute("src") == shown["url"]
        caption = CAPTIONS.get(urlsplit(shown["url"]).path)
        assert img.get_attribute("alt") == shown["alt"] == (caption or shown["alt"])
        assert img.get_attribute("alt"), "a title at least"
        assert img.evaluate("(i) => i.complete && i.naturalWidth") == 120
        box = img.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert 0 < box["height"] <= 0.45 * page.viewport_size["height"] + 1, "the summary follows"
        credit = figure.locator("figcaption")
        assert credit.is_visible() and credit.inner_text() == f"Image: {shown['credit']}"


SIDES = ("Left", "Center", "Right")


def assert_headlines_by_side(story, width: int) -> list[str]:  # noqa: ANN001 - a Playwright locator
    """ "How each side headlined it" on screen: its sides in the order Left, Center, Right,
    every headline visible within the screen with its outlet. Returns the sides shown."""
    heading = story.get_by_role("heading", name="How each side headlined it", exact=True)
    heading.scroll_into_view_if_needed()
    assert heading.is_visible()
    labels = story.locator(".by-side > section > :first-child").all_inner_texts()  # h4 or h3
    assert labels and labels == [side for side in SIDES if side in labels], labels
    sections = [s.bounding_box() for s in story.locator(".by-side > section").all()]
    tops = {round(box["y"]) for box in sections if box}
    if width >= 760:  # side by side, sharing the whole width however many sides there are
        whole = story.locator(".by-side").bounding_box()
        assert len(tops) == 1 and whole is not None and sections[-1] is not None
        right = sections[-1]["x"] + sections[-1]["width"]
        assert abs(right - (whole["x"] + whole["width"])) <= 1, (labels, right, whole)
    else:  # one above the other
        assert len(tops) == len(labels), labels
    items = story.locator(".by-side li")
    assert items.count() >= len(labels)
    for item in items.all():
        item.scroll_into_view_if_needed()
        assert item.is_visible() and item.locator("a").first.is_visible()
        outlet = item.locator(".outlet")
        assert outlet.is_visible() and outlet.inner_text().endswith(")")
        box = item.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    return labels


def assert_follow_links(page, expected: int, config: Config, base: str, atom_schema) -> None:  # noqa: ANN001
    """Each "Follow this story" link is on screen and leads to the storyline's own Atom feed
    (an address on the site, ``site_url``; fetched here from the server at ``base``): served
    as Atom, valid against RFC 4287, with the storyline's events as its entries."""
    follow = page.get_by_role("link", name="Follow this story", exact=True)
    assert follow.count() == expected
    site = config.settings.site_url.rstrip("/") + "/"
    for link in follow.all():
        link.scroll_into_view_if_needed()
        href = urljoin(site, link.get_attribute("href") or "")
        assert link.is_visible() and href.startswith(site + "storylines/")
        assert href.endswith(".atom")
        response = page.request.get(f"{base}/{href.removeprefix(site)}")
        assert response.ok and response.headers["content-type"].startswith("application/atom+xml")
        body = response.body()
        assert_valid_atom(atom_schema, body)
        feed = feedparser.parse(body)
        assert not feed.bozo and len(feed.entries) >= 2, "a storyline has two events at least"


def test_front_page_on_phone_and_desktop(
    browser, web: SampleWeb, tmp_path: Path, atom_schema
) -> None:
    config = published(web, tmp_path)
    images = shown_images(config)
    with serving(create_app(config)) as base:
        for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page = browser.new_page(viewport=viewport)
            errors: list[str] = []
            page.on(
                "console",
                lambda m, e=errors: (
                    e.append(f"{m.text} {m.location.get('url')}")
                    if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                    else None
                ),
            )
            page.goto(f"{base}/")
            status = page.get_by_role("status")
            assert status.is_visible() and "is down (Down News)" in status.inner_text()
            assert page.locator(".tagline").inner_text() == config.settings.subtitle
            latest = page.get_by_role("navigation").locator("li")
            assert latest.count() == 4 and latest.first.is_visible()
            stories = page.locator("article.story")
            assert stories.count() == 4
            shared = (
                stories.filter(has=page.locator(".seg.left"))
                .filter(has=page.locator(".seg.right"))
                .first
            )
            for selector in (".headline", ".summary", ".bar", ".sourcing", ".sources", ".content"):
                assert shared.locator(selector).first.is_visible(), (name, selector)
            for heading in ("Sources", "Different Perspectives"):
                assert shared.get_by_role("heading", name=heading).is_visible()
            sections = [shared.locator(f".perspectives .{c}") for c in PERSPECTIVES]
            assert all(s.is_visible() for s in sections)
            tops = {round(s.bounding_box()["y"]) for s in sections}
            assert (len(tops) == 1) == (name == "desktop"), "side by side only on a desktop"
            assert shared.locator(".seg").count() >= 2 and shared.locator(".seg").first.is_visible()
            # Nothing wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            # Accessibility basics.
            assert_heading_outline(page)
            assert page.evaluate("document.documentElement.lang") == "en"
            assert page.locator("img:not([alt])").count() == 0
            assert_lead_images(page, viewport["width"], images)
            # How each side headlined it, on every story; both sides on the shared one.
            for story in stories.all():
                assert_headlines_by_side(story, viewport["width"])
            assert {"Left", "Right"} <= set(assert_headlines_by_side(shared, viewport["width"]))
            # The water cuts and the hearing on them, one storyline: each offers its feed.
            assert_follow_links(page, 2, config, base, atom_schema)
            for selector in (
                "body",
                ".tagline",
                ".meta",
                ".sourcing",
                ".seg",
                ".status p",
                "a",
                ".credit",
            ):
                ratio = page.locator(selector).first.evaluate(CONTRAST_JS)
                assert ratio >= 4.5, (name, selector, ratio)
            assert errors == [], "the CSP blocks nothing the page needs"
            shot = tmp_path / f"index-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            page.close()


PERSPECTIVES = ("progressive", "conservative", "common-ground")


def test_story_page_from_a_headline(browser, web: SampleWeb, tmp_path: Path, atom_schema) -> None:
    """From each headline of the front page to its story page, on a phone and a desktop: the
    picture with its alt text and credit, the headlines by side, and on a storyline's story
    its "Follow this story" link to a valid feed."""
    config = published(web, tmp_path)
    images = shown_images(config)
    with serving(create_app(config)) as base:
        for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page = browser.new_page(viewport=viewport)
            page.goto(f"{base}/")
            count = page.locator("article.story").count()
            followed = 0
            for n in range(count):
                page.goto(f"{base}/")
                story = page.locator("article.story").nth(n)
                in_storyline = story.get_by_role("link", name="Follow this story").count()
                headline = story.locator(".headline a")
                title = headline.inner_text()
                headline.click()
                page.wait_for_load_state()
                assert "/stories/" in page.url
                assert page.get_by_role("heading", level=1).inner_text() == title
                assert_heading_outline(page)
                for heading in ("Sources", "Different Perspectives", "Common Ground"):
                    assert page.get_by_role("heading", name=heading).is_visible()
                assert page.locator(".bar").is_visible() and page.get_by_role("status").is_visible()
                assert_lead_images(page, viewport["width"], images)
                assert_headlines_by_side(page.locator("article.story"), viewport["width"])
                assert_follow_links(page, in_storyline, config, base, atom_schema)
                followed += in_storyline
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                font = page.evaluate("getComputedStyle(document.body).fontFamily")
                assert font.startswith("Georgia")
                page.screenshot(path=str(tmp_path / f"story-{n}-{name}.png"), full_page=True)
            assert count == 4 and followed == 2, "both of the storyline's stories were opened"
            page.close()


def test_hostile_corpus_runs_no_script(browser, web: SampleWeb, tmp_path: Path) -> None:
    """Opened from the folder (no CSP to help): the sanitizing alone must hold."""
    config = make_config(web, tmp_path, extra=(hostile_outlet(web),))
    Pipeline(config).run_cycle()
    pages = [config.out_dir / "index.html", *sorted((config.out_dir / "stories").glob("*.html"))]
    dialogs: list[str] = []
    page = browser.new_page(viewport=DESKTOP)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in pages:
        page.goto(path.as_uri())
        page.mouse.move(200, 300)  # hover handlers, were any left
        page.keyboard.press("Tab")  # focus handlers, likewise
        assert page.evaluate("document.scripts.length") == 0, path.name
    page.screenshot(path=str(tmp_path / "hostile-desktop.png"), full_page=True)
    page.close()
    assert dialogs == []
    assert "Quillon zoning board" in pages[0].read_text(encoding="utf-8")


def test_status_page_on_a_desktop(browser, web: SampleWeb, tmp_path: Path) -> None:
    """/status as an operator sees it, with one failing and one parked source: both stand
    out with their reasons, every source and stage is there, its inline stylesheet applies
    under its own CSP (by hash) and it runs no script."""
    web.routes["/down/rss.xml"] = respond(503, b"maintenance")
    web.routes["/gone/rss.xml"] = respond(410, b"this feed is gone")
    failing = extra_source(web, "down", "down/rss.xml")
    parked = extra_source(web, "gone", "gone/rss.xml", lean="right")
    config = make_config(web, tmp_path, extra=(failing, parked))
    Pipeline(config).run_cycle()
    with serving(create_app(config)) as base:
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/status")
        assert page.title() == f"Status · {config.settings.title}"
        assert_heading_outline(page)
        rows = page.locator("table.sources tbody tr")
        assert rows.count() == len(config.sources) == 7
        down, gone, alpha = (page.locator(f"#source-{i}") for i in ("down", "gone", "alpha"))
        assert down.locator(".badge").inner_text() == "failing"
        assert gone.locator(".badge").inner_text() == "parked"
        assert alpha.locator(".badge").inner_text() == "ok"
        problem = down.locator(".problem").inner_text()
        assert "backing off after errors; next try" in problem
        assert "HTTP 503 Service Unavailable" in problem
        assert "the feed answered 410 Gone" in gone.locator(".problem").inner_text()
        assert "error (HTTP 410)" in gone.inner_text() and "Right" not in gone.inner_text()
        assert "new: 3 entries" in alpha.inner_text()
        for row in (down, gone, alpha):
            assert row.is_visible()
        for cell in page.locator("table.sources thead th").all():  # every column on screen
            box = cell.bounding_box()
            right = box["x"] + box["width"] if box else None
            assert right is not None and right <= DESKTOP["width"], cell.inner_text()
        background = "e => getComputedStyle(e).backgroundColor"
        shades = {row.evaluate(background) for row in (down, gone, alpha)}
        assert len(shades) == 3, "failing and parked rows stand out, each its own way"
        cycles = page.locator("table.cycles tbody tr")
        assert cycles.count() == 1 and "published" in cycles.inner_text()
        stage_cells = cycles.locator("td.num").all_inner_texts()
        assert len(stage_cells) == 6 and all(t.endswith(" s") for t in stage_cells), stage_cells
        assert (
            "Not used: the database is SQLite"
            in page.locator("section", has=page.locator("#workers")).inner_text()
        )
        # The stylesheet is inline, allowed by its hash: applied, and nothing blocked.
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
        assert errors == [], "the CSP blocks nothing the page needs"
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        for selector in (
            "body",
            ".meta",
            "thead th",
            ".id",
            ".badge.ok",
            ".badge.failing",
            ".badge.parked",
            ".problem .hold",
            ".problem .error",
        ):
            ratio = page.locator(selector).first.evaluate(CONTRAST_JS)
            assert ratio >= 4.5, (selector, ratio)
        shot = tmp_path / "status-desktop.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        page.close()
