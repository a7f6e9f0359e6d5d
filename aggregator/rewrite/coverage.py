"""Who covered a story and who reported it first: the outlets by lean (copies credited to the
original), each article's title, who owns the outlets. Publishing says so in the lede ("X first
reported this story on December 7. It was also covered by Y and Z.").
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.models import Coverage, StoryArticle
from aggregator.rewrite.sentences import clean_title
from aggregator.vocab import LEANS


def coverage_of(articles: Sequence[StoryArticle]) -> Coverage:
    """Who covered the story, and who reported it first (earliest published; ties: fetched,
    then the order given, never the row id)."""
    ordered = sorted(articles, key=lambda a: (a.published, a.fetched or a.published))
    outlets: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for a in ordered:
        if a.source_id not in seen:
            seen.add(a.source_id)
            outlets.append((a.source_name, a.lean, a.link))
    named = {name for name, _, _ in outlets}
    via = {v[0]: v[:3] for a in ordered for v in a.via if v[0] not in named}
    leans = tuple(lean for lean in LEANS if any(o[1] == lean for o in [*outlets, *via.values()]))
    return Coverage(
        first_source=ordered[0].source_name,
        first_published=ordered[0].published,
        outlets=tuple(outlets),
        leans=leans,
        via=tuple(via.values()),
        articles=tuple(
            (a.source_name, a.lean, a.link, clean_title(a.title, a.source_name), a.kind)
            for a in ordered
        ),
        copies=tuple(
            (name, lean, link, clean_title(title, name))
            for a in ordered
            for name, lean, link, title in a.via
        ),
        owners=tuple(
            dict.fromkeys(
                [(a.source_name, a.owner) for a in ordered if a.owner]
                + [pair for a in ordered for pair in a.via_owners]
            )
        ),
    )
