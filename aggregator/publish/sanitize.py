"""The one allowlist sanitizer for every piece of HTML we publish, and the one URL check.

Source text reaches our outputs from feeds and from article extraction; whatever it says, the
HTML we publish goes through :func:`clean_html` (nh3, an allowlist: unknown tags and attributes
are dropped, script/style/iframe/object/embed/svg/math are dropped with their content) and every
URL we put in an ``href`` goes through :func:`safe_url` (absolute http(s) only, so no
``javascript:``, ``data:`` or ``vbscript:``, however it is spelled).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "cite", "code", "dd", "div", "dl", "dt", "em",
        "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p",
        "pre", "q", "s", "section", "small", "span", "strong", "sub", "sup", "table", "tbody",
        "td", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
# Dropped together with everything inside them: their content is code or foreign markup.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "svg", "math", "noscript", "template"}
)
ALLOWED_ATTRIBUTES = {
    "*": {"class", "title", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "q": {"cite"},
    "blockquote": {"cite"},
}
URL_SCHEMES = frozenset({"http", "https"})
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


@lru_cache(maxsize=2048)
def clean_html(html: str) -> str:
    """``html`` with only allowlisted tags, attributes and absolute http(s) URLs left.

    Cached: a long-running service republishes mostly unchanged stories, and cleaning is the
    dearest step of a publish.
    """
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",  # our outputs are read anywhere: only absolute URLs mean the same
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@lru_cache(maxsize=65536)
def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else None.

    Browsers ignore tabs, newlines and leading controls inside a scheme (``java\\tscript:``),
    so a URL containing any control character or space is refused outright. Cached: each
    story's links are checked several times a publish (body, views, sources, feed entry).
    """
    if not url or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in URL_SCHEMES or not host:
        return None
    return url
