"""Article identity: canonical URLs (property-based) and near-duplicate fingerprints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.identity import TRACKING_PARAMS, NearDuplicates, canonical_url

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10).filter(
    lambda s: s not in {"www", "m", "amp", "mobile"}  # a site's own name, not a rendering prefix
)
domain = st.builds(lambda a, b: f"{a}.{b}", label, st.sampled_from(["com", "org", "co.uk", "net"]))
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)
path = st.lists(segment, max_size=5).map(lambda s: "/" + "/".join(s))
param_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda n: not n.startswith(("utm", "pk", "hsa", "oly", "vero")) and n not in TRACKING_PARAMS
)
param = st.tuples(param_name, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", max_size=8))
params = st.lists(param, max_size=4, unique_by=lambda p: p[0])
tracking = st.lists(
    st.tuples(
        st.sampled_from(
            ["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "mc_cid", "mc_eid"]
        ),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    ),
    max_size=4,
)


def build(
    scheme: str, host: str, path: str, query: list[tuple[str, str]], fragment: str = ""
) -> str:
    url = f"{scheme}://{host}{path}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    if fragment:
        url += "#" + fragment
    return url


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_a_fixed_point_after_one_pass(text: str) -> None:
    once = canonical_url(text)
    assert canonical_url(once) == once


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.sampled_from(["", "www.", "m.", "amp.", "WWW.", "www.m."]),
    domain,
    path,
    st.sampled_from(["", "/", "/amp", "/amp/", ".amp"]),
    params,
    tracking,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=10),
    st.booleans(),
)
def test_variants_of_one_article_share_one_canonical_url(
    scheme: str,
    prefix: str,
    host: str,
    path: str,
    amp_suffix: str,
    query: list[tuple[str, str]],
    noise: list[tuple[str, str]],
    fragment: str,
    upper_host: bool,
) -> None:
    plain = build("https", host, path, query)
    variant_host = (prefix + host).upper() if upper_host else prefix + host
    if path.strip("/"):
        variant_path = path.rstrip("/") + amp_suffix
    else:
        variant_path = path + amp_suffix.lstrip(".")
    shuffled = list(reversed(query)) + noise
    variant = build(scheme, variant_host, variant_path, shuffled, fragment)
    canon = canonical_url(plain)
    assert canonical_url(variant) == canon
    assert canonical_url(canon) == canon
    parts = urlsplit(canon)
    assert parts.scheme == "https" and not parts.fragment
    assert not parts.netloc.startswith(("www.", "m.", "amp."))
    assert "utm_" not in parts.query.lower() and "fbclid" not in parts.query
    assert not parts.path.endswith("/")


@settings(max_examples=200, deadline=None)
@given(domain, path, params, params)
def test_different_articles_keep_different_urls(
    host: str, path: str, query: list[tuple[str, str]], other: list[tuple[str, str]]
) -> None:
    a = canonical_url(build("https", host, path, query))
    b = canonical_url(build("https", host, path + "/x1", query))
    assert a != b
    if sorted(query) != sorted(other):
        assert a != canonical_url(build("https", host, path, other))


def test_examples() -> None:
    assert (
        canonical_url("HTTP://WWW.Example.COM:80/News/Story-1/?utm_source=rss&id=7#comments")
        == "https://example.com/News/Story-1?id=7"
    )
    assert canonical_url("https://amp.example.com/amp/news/story-1") == (
        "https://example.com/news/story-1"
    )
    assert canonical_url("https://m.example.com/news/story-1.amp.html?fbclid=x") == (
        "https://example.com/news/story-1.html"
    )
    assert canonical_url("https://example.com:8443/a") == "https://example.com:8443/a"
    # Two-label hosts keep their first label: "m.com" is a site, not a mobile prefix.
    assert canonical_url("https://m.com/a") == "https://m.com/a"
    assert canonical_url("mailto:news@example.com") == "mailto:news@example.com"
    assert canonical_url("  https://example.com/a%7e/  ") == "https://example.com/a~"


def test_near_duplicates_find_the_original_of_a_lightly_edited_copy() -> None:
    original = (
        "Port Ellery will close the Harbor Bridge to all traffic on December 1 for a repair "
        "expected to cost $412 million. Mayor Dana Whitcomb announced the closure on Thursday "
        "after engineers found corrosion in the bridge's main cables. The bridge carries about "
        "86,000 vehicles a day between the harbor district and the northern suburbs."
    )
    other = (
        "The Northern Reserve held its key interest rate at 4.25 percent on Wednesday, saying "
        "inflation had cooled for a third month while hiring slowed across most regions and "
        "that it would wait for more evidence before cutting."
    )
    index = NearDuplicates()
    noon = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert index.add(1, original, noon) is None
    assert index.add(2, other, noon) is None
    edited = original.replace("Thursday", "Thursday afternoon") + " Copyright Wire Service."
    assert index.add(3, edited, noon + timedelta(hours=1)) == 1
    assert index.add(4, "Too short to judge.") is None
    # Fetched later but published earlier: that one is the original.
    assert index.add(5, original + " Updated.", noon - timedelta(hours=1)) is None
    index.remove(1)
    assert index.add(6, original, noon + timedelta(hours=2)) == 5
