"""The events of the fixture web (tests/fixtures/site-events.json), decided by construction, and
the check that a pipeline grouped the fixture articles into exactly those events."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from aggregator.pipeline import Pipeline
from aggregator.store.schema import EntryRow

_DATA = json.loads(
    (Path(__file__).parent / "fixtures" / "site-events.json").read_text(encoding="utf-8")
)
EVENTS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _DATA["events"].items()}
STORYLINES: list[list[str]] = _DATA["storylines"]
EVENT_OF: dict[str, str] = {page: event for event, pages in EVENTS.items() for page in pages}
# The fixture web's pictures with a caption of their own (Alpha's bridge page gives an
# og:image:alt, Gamma's feed a media:description): as lead images, their alt text. Every other
# lead image's alt text is its article's title.
CAPTIONS: dict[str, str] = {
    "/alpha/img/harbor-bridge-closed-412-million-repair.jpg": (
        "Barriers close the Harbor Bridge approach on the Port Ellery waterfront."
    ),
    "/gamma/img/fairhaven-county-property-tax-cut.jpg": (
        "Commissioners Roy Tillman and Gail Sorensen before Thursday's 3-2 vote in the "
        "Fairhaven County courthouse."
    ),
}


def stories_by_event(pipeline: Pipeline) -> dict[str, str]:
    """Event name -> the story id its articles were grouped into; fails unless every fixture
    article is stored and the stories are exactly the fixture's events (none merged or split).
    Articles of other routes (extra sources of a test) are left out."""
    with pipeline.session() as s:
        rows = s.execute(select(EntryRow.link, EntryRow.story_id)).all()
    grouped: dict[str, set[str | None]] = {}
    for link, story_id in rows:
        event = EVENT_OF.get(urlsplit(link).path)
        if event is not None:
            grouped.setdefault(event, set()).add(story_id)
    seen = {page for link, _ in rows if (page := urlsplit(link).path) in EVENT_OF}
    assert seen == set(EVENT_OF), f"fixture articles not stored: {set(EVENT_OF) - seen}"
    split = {event: ids for event, ids in grouped.items() if len(ids) != 1}
    assert not split, f"an event split over several stories (or left ungrouped): {split}"
    story_of = {event: next(iter(ids)) for event, ids in grouped.items()}
    assert None not in story_of.values(), story_of
    merged = len(set(story_of.values())) != len(story_of)
    assert not merged, f"events merged into one story: {story_of}"
    return {event: str(story) for event, story in story_of.items()}
