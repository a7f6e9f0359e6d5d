"""The domain's vocabulary: an outlet's lean, the side of the spectrum a lean is on, and
whether an article is news or opinion.

Every stage and every output speaks it: configuration validates a source's lean against
:class:`Lean`, the grouping joins a left or right article to a story none of whose outlets is of
its side, the rewrite builds a Progressive and a Conservative View and Common Ground from the
two sides, publishing counts "2 left, 1 center, 0 right" outlets. Which side a lean is on is
decided here only (:func:`side_of`). Both are ``StrEnum``: a member *is* its string ("left" ==
``Side.LEFT``), so what is stored, hashed and published stays the same words.

:class:`Empty` is the rewrite's word for a section it has no sentence for: stored as a code,
worded for the reader by publishing only.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import overload
from urllib.parse import urlsplit


class Lean(StrEnum):
    """An outlet's lean, as ``sources.toml`` rates it (AllSides' five ratings)."""

    LEFT = "left"
    LEAN_LEFT = "lean-left"
    CENTER = "center"
    LEAN_RIGHT = "lean-right"
    RIGHT = "right"


class Side(StrEnum):
    """Where on the spectrum a lean falls: left, the centre, or right."""

    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


class Empty(StrEnum):
    """Why a section of a rewrite (a side's view, Common Ground) has no sentence of its own."""

    TOLD_ABOVE = "told_above"  # what only it would show is told above (summary, body)
    NONE_FOUND = "none_found"  # the sources state nothing that belongs in it


LEANS: tuple[str, ...] = tuple(lean.value for lean in Lean)  # in spectrum order, left first
SIDES = (Side.LEFT, Side.RIGHT)  # the two sides a story is balanced between: the centre is none

_SIDE_OF: dict[str, Side] = {
    Lean.LEFT: Side.LEFT,
    Lean.LEAN_LEFT: Side.LEFT,
    Lean.CENTER: Side.CENTER,
    Lean.LEAN_RIGHT: Side.RIGHT,
    Lean.RIGHT: Side.RIGHT,
}


@overload
def side_of(lean: str) -> Side | None: ...
@overload
def side_of(lean: str, default: Side) -> Side: ...
def side_of(lean: str, default: Side | None = None) -> Side | None:
    """The side ``lean`` is on ("lean-left": ``Side.LEFT``); ``default`` for a string that is
    no lean (a source removed from the configuration is known by its id alone)."""
    return _SIDE_OF.get(lean, default)


# Where a news outlet files its opinion pieces (a path segment of the link), and how their
# titles say so: a news source's feed carries its columns too.
_OPINION_SECTIONS = frozenset(
    "opinion opinions commentary op-ed op-eds oped editorial editorials columnists column "
    "columns commentisfree ideas".split()
)
_OPINION_TITLE_RE = re.compile(r"(?i)^(?:opinion|op-ed|editorial|commentary|column)\s*[:|\-\u2014]")


def article_kind(source_kind: str, link: str | None, title: str) -> str:
    """An article's kind, "news" or "opinion": its source's, unless its news outlet files it as
    opinion (its link under /opinion/, /commentary/, /op-ed/ ..., or its title marked
    "Opinion:"). Decided here once for every stage: the grouping matches an opinion piece to
    the event it argues about, the rewrite heads a story with news and builds the views."""
    if source_kind == "opinion":
        return "opinion"
    path = urlsplit(link or "").path.lower()
    if any(part in _OPINION_SECTIONS for part in path.split("/")[:-1]):
        return "opinion"
    return "opinion" if _OPINION_TITLE_RE.match(title) else source_kind
