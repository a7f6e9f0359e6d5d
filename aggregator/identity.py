"""Article identity: one canonical URL per article, and near-duplicate text fingerprints.

The same article reaches us through several feeds and several URLs (``http``/``https``,
``www.``/``m.``/``amp.`` hosts, ``/amp`` pages, tracking parameters, fragments), and the same
wire copy is republished by several sites. Both must count as one article, or a story looks
more widely covered than it is. Not a stage: pure functions, no state, no I/O.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from datasketch import MinHash

# Host labels that only pick a rendering of the same page.
_HOST_PREFIXES = frozenset({"www", "m", "amp", "mobile"})
# Query parameters that say who sent the reader, never which article it is.
TRACKING_PARAMS = frozenset(
    """
    fbclid gclid dclid gbraid wbraid msclkid yclid twclid igshid mc_cid mc_eid _ga _gl _hsenc
    _hsmi mkt_tok ref_src ref_url cmpid ocid smid smtyp sr_share taid ito at_medium at_campaign
    at_custom1 at_custom2 at_custom3 at_custom4 cndid __twitter_impression fb_action_ids
    fb_action_types fb_source fb_ref spm guccounter guce_referrer guce_referrer_sig
    amp outputtype
    """.split()
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "oly_", "vero_")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PCT_RE = re.compile(r"%[0-9a-fA-F]{2}")
# Characters a path keeps literally; everything else is percent-encoded once, in upper case.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(_TRACKING_PREFIXES)


def _host(netloc: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    hostport = hostport.lower()
    if hostport.startswith("["):  # an IPv6 literal: leave it as it is
        return hostport
    host, _, port = hostport.partition(":")
    host = host.rstrip(".")
    labels = host.split(".")
    while len(labels) > 2 and labels[0] in _HOST_PREFIXES:
        labels = labels[1:]
    host = ".".join(labels)
    if port and port not in _DEFAULT_PORTS.values():  # http becomes https: both are defaults
        host = f"{host}:{port}"
    return f"{userinfo}@{host}" if userinfo else host


def _path(path: str) -> str:
    # Decode then re-encode: "%7E", "~" and "%7e" are one path; a literal "%" stays encoded.
    path = quote(unquote(path), safe=_PATH_SAFE)
    segments = path.split("/")
    while True:  # until nothing changes, so that the result is a fixed point
        before = segments
        segments = [s for s in segments if s and s.lower() != "amp"]
        if segments:
            low = segments[-1].lower()
            if low.endswith(".amp.html"):
                segments[-1] = segments[-1][: -len(".amp.html")] + ".html"
            elif low.endswith(".amp"):
                segments[-1] = segments[-1][: -len(".amp")]
        if segments == before:
            return "/" + "/".join(segments) if segments else ""


def canonical_url(url: str) -> str:
    """The one spelling of an article's address: ``canonical_url(u)`` twice gives the same.

    Scheme and host lose their case, ``http`` becomes ``https``, ``www.``/``m.``/``amp.``
    prefixes, default ports, ``/amp`` paths, trailing slashes, fragments and tracking
    parameters go, and the remaining query parameters are sorted. Anything that is not an
    ``http(s)`` URL is returned stripped of surrounding space, unchanged otherwise.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return text
    try:
        netloc = _host(parts.netloc)
    except ValueError:
        return text
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit(("https", netloc, _path(parts.path), urlencode(query), ""))


# --- near-duplicate text ----------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SHINGLE_WORDS = 4
NUM_PERM = 64
DUPLICATE_JACCARD = 0.6  # estimated Jaccard of word 4-gram shingles: a copy, lightly edited
MIN_SHINGLES = 12  # shorter texts say too little to call one a copy of another
SHINGLE_TEXT_WORDS = 100  # a copy is a copy from its first paragraphs on


def shingles(text: str, limit: int | None = None) -> set[bytes]:
    """Word 4-grams of a text's first ``limit`` words, lower-cased: what a republished copy keeps.

    Words are split at spaces only (punctuation stays on them): copies keep punctuation too,
    and this is several times faster than a tokenizer.
    """
    tokens = text.lower().split()[:limit]
    return {
        " ".join(tokens[i : i + SHINGLE_WORDS]).encode()
        for i in range(max(0, len(tokens) - SHINGLE_WORDS + 1))
    }


class NearDuplicates:
    """MinHash LSH over articles' shingles: finds the earlier article a text was copied from.

    An AP or Reuters story republished by several sites is one article with several outlets,
    not several articles: counting copies as coverage would fake balance.
    """

    def __init__(self, threshold: float = DUPLICATE_JACCARD, num_perm: int = NUM_PERM) -> None:
        # Imported here, not at the top: datasketch pulls in SciPy (0.7 s), which every command
        # would otherwise pay for, --help included; only grouping needs it.
        from datasketch import MinHash, MinHashLSH

        self._minhash = MinHash
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._num_perm = num_perm
        self._threshold = threshold
        self._hashes: dict[int, MinHash] = {}
        self._order: dict[int, tuple[datetime, int]] = {}
        # crc32 hashes at C speed and is the same in every process (replays decide the same);
        # the permutations are drawn once, not per article.
        self._proto = MinHash(num_perm, seed=1)

    def add(self, entry_id: int, text: str, published: datetime | None = None) -> int | None:
        """Index an article; return the entry id of the earliest article it copies, if any.

        Only the text counts: republishers often retitle a wire story but keep its words.
        "Earliest" is by ``published`` when given (then entry id), so the original is the one
        that came out first, whichever was fetched first; an article published before all the
        texts it resembles is itself an original (None).
        """
        grams = shingles(text, SHINGLE_TEXT_WORDS)
        if len(grams) < MIN_SHINGLES:
            return None
        mh = self._minhash(
            self._num_perm,
            hashfunc=zlib.crc32,
            permutations=self._proto.permutations,
            scheme=self._proto.scheme,
        )
        mh.update_batch(grams)
        found = [
            other
            for other in self._lsh.query(mh)
            if mh.jaccard(self._hashes[other]) >= self._threshold
        ]
        mine = (published or _EPOCH, entry_id)
        if entry_id not in self._hashes:
            self._lsh.insert(entry_id, mh)
            self._hashes[entry_id] = mh
            self._order[entry_id] = mine
        first = min(found, key=self._order.__getitem__, default=None)
        # Published before everything it resembles: it is the original, not a copy.
        return first if first is not None and self._order[first] < mine else None

    def remove(self, entry_id: int) -> None:
        self._order.pop(entry_id, None)
        if self._hashes.pop(entry_id, None) is not None:
            self._lsh.remove(entry_id)
