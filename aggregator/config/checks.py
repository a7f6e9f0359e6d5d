"""Checks of single values a sources file gives: URLs, ids, environment variable names and the
CSS selectors of content rules (compiled once per process, here, for extraction too)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml.cssselect import CSSSelector

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_http_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@lru_cache(maxsize=256)
def css_selector(css: str) -> CSSSelector:
    """``css`` compiled for HTML pages (lxml's cssselect): a content rule's selector, compiled
    once per process whichever page it runs on."""
    return CSSSelector(css, translator="html")


def selector_problem(css: object) -> str | None:
    """Why ``css`` cannot be a content rule's selector, or None when it can."""
    if not isinstance(css, str):
        return f"must be a string, not {css!r}"
    if not css.strip():
        return "is empty"
    try:
        css_selector(css)
    except SelectorError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not a valid CSS selector ({first})"
    return None
