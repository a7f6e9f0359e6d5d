"""The front page and one page per story, rendered with Jinja2 (autoescaping on).

Static HTML and one stylesheet: no JavaScript and no inline styles, so the server can send a
strict Content-Security-Policy. Links between our pages are relative, so the site works from
any address (or straight from the folder). Story HTML comes in already sanitized; every other
field is escaped by Jinja2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from aggregator.config import PublishSettings
from aggregator.models import LeadImage, PublishedStory, RetiredStory, SourceStatus
from aggregator.publish.atom import rfc3339
from aggregator.publish.media import shown_image
from aggregator.publish.story import SIDE_LABELS, status_notice, story_path
from aggregator.related import blindspot_side
from aggregator.vocab import Side, side_of

INDEX_FILE = "index.html"
STYLE_FILE = "style.css"
MAX_GROW = 50  # the stylesheet's largest flex-grow class for the coverage bar


@dataclass(frozen=True)
class StoryView:
    """What the templates need of a story, worked out once."""

    story: PublishedStory
    content: Markup
    path: str
    bar: tuple[tuple[Side, str, int], ...]  # (side, label, outlets)
    coverage_label: str
    blindspot: Side | None
    published_iso: str
    published_text: str
    updated_iso: str
    updated_text: str
    image: LeadImage | None = None  # as shown (``media.shown_image``)

    @property
    def content_under_h1(self) -> Markup:
        """The content with its headings one level up, for a page whose h1 is the headline."""
        html = str(self.content)
        for old, new in (("h3", "h2"), ("h4", "h3"), ("h5", "h4")):
            html = html.replace(f"<{old}>", f"<{new}>").replace(f"</{old}>", f"</{new}>")
        return Markup(html)  # noqa: S704 - the same sanitized HTML, headings renamed


def coverage_counts(story: PublishedStory) -> dict[Side, int]:
    """Distinct outlets per side (left, center, right) among the story's sources."""
    outlets: dict[Side, set[str]] = {side: set() for side in Side}
    for link in story.related:
        outlets[side_of(link.lean, Side.CENTER)].add(link.outlet)
    return {side: len(names) for side, names in outlets.items()}


def _when(story_time) -> str:  # noqa: ANN001 - a datetime
    return story_time.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def story_view(story: PublishedStory, content: str, settings: PublishSettings) -> StoryView:
    counts = coverage_counts(story)
    return StoryView(
        story=story,
        content=Markup(content),  # noqa: S704 - sanitized by clean_html before it gets here
        path=story_path(story.id),
        bar=tuple((side, SIDE_LABELS[side], counts[side]) for side in Side),
        coverage_label=(
            f"Coverage: {counts[Side.LEFT]} left, {counts[Side.CENTER]} center, "
            f"{counts[Side.RIGHT]} right outlets"
        ),
        blindspot=blindspot_side(story.leans, story.notes),
        published_iso=rfc3339(story.published),
        published_text=_when(story.published),
        updated_iso=rfc3339(story.updated),
        updated_text=_when(story.updated),
        image=shown_image(story, settings),
    )


@cache
def jinja_env(package: str) -> Environment:
    """The one way we set up Jinja2, for ``package``'s ``templates/`` folder (the status page
    uses it too): everything escaped, whatever the file's suffix, and block tags leave no
    blank lines behind."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_index(
    views: Sequence[StoryView],
    settings: PublishSettings,
    failing: Sequence[SourceStatus] = (),
    total_sources: int = 0,
) -> bytes:
    """The front page: status banner, tagline, latest headlines, then every story in full."""
    return _render("index.html", "", settings, failing, total_sources, views=views)


def render_story_pages(
    views: Sequence[StoryView],
    settings: PublishSettings,
    failing: Sequence[SourceStatus] = (),
    total_sources: int = 0,
) -> list[tuple[str, bytes]]:
    """Each story's own page (``stories/<id>.html``), the target of the feeds' alternate links.

    The page around the story is the same for all of them, so it is rendered once and each
    story's article (the same macro the front page uses) is set into it.
    """
    shell = _render(
        "story.html",
        "../",
        settings,
        failing,
        total_sources,
        page_title=_TITLE,
        article=Markup(_ARTICLE),
    ).decode("utf-8")
    # <title> comes before any other text and the footer after the article holds none of ours:
    # the first title mark and the last article mark are the placeholders, whatever else says.
    head, rest = shell.split(_TITLE, 1)
    middle, tail = rest.rsplit(_ARTICLE, 1)
    story = jinja_env("aggregator.publish").get_template("_story.html")
    macro = story.module.story_article  # type: ignore[attr-defined]
    pages = []
    for view in views:
        title = escape(f"{view.story.headline} - {settings.title}")
        page = f"{head}{title}{middle}{macro(view, 'h1', '../')}{tail}"
        pages.append((view.path, page.encode("utf-8")))
    return pages


def render_retired_pages(
    retired: Sequence[RetiredStory],
    settings: PublishSettings,
    failing: Sequence[SourceStatus] = (),
    total_sources: int = 0,
) -> list[tuple[str, bytes]]:
    """A page at each merged story's old address, pointing to the story it is now part of:
    links in readers and on other sites keep leading somewhere."""
    return [
        (
            story_path(r.id),
            _render(
                "moved.html",
                "../",
                settings,
                failing,
                total_sources,
                headline=r.headline,
                target=story_path(r.merged_into),
            ),
        )
        for r in retired
    ]


_TITLE, _ARTICLE = "\ue000title\ue000", "\ue000article\ue000"  # private-use: never in a page


def _render(
    template: str,
    root: str,
    settings: PublishSettings,
    failing: Sequence[SourceStatus],
    total_sources: int = 0,
    **context: object,
) -> bytes:
    """A page: ``root`` leads from the page's folder back to the site's (links are relative)."""
    notice = status_notice(failing, total_sources)
    page = (
        jinja_env("aggregator.publish")
        .get_template(template)
        .render(settings=settings, notice=notice, root=root, **context)
    )
    return page.encode("utf-8")


@cache
def stylesheet() -> bytes:
    """The stylesheet, with the coverage bar's proportions as classes (no inline styles)."""
    base = resources.files("aggregator.publish").joinpath("templates", STYLE_FILE).read_text()
    grow = "".join(f".g{n}{{flex-grow:{n}}}" for n in range(1, MAX_GROW + 1))
    return (base + grow + "\n").encode("utf-8")
