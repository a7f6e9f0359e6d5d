"""Host groups: which sources must never be polled by two workers at once.

The per-host limit (``[settings] per_host``) is enforced inside one fetcher. For it to hold
across workers, every poll of a host runs in one task at a time: the dispatcher queues a
source's poll under its host group's procrastinate lock, and PostgreSQL lets only one task of
a lock run at any moment, whichever worker takes it. A host group is the set of hosts joined
by sources whose feeds span several hosts (usually one host), so a poll task's every request
goes to hosts that no other running poll task touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aggregator.config import Source


def host_name(url: str) -> str:
    """The host a request to ``url`` counts against: its lowercased host name, as the
    fetcher's per-host limit counts it (ports and schemes share the host)."""
    return (urlsplit(url).hostname or "").lower()


def host_groups(sources: Iterable[Source]) -> dict[str, str]:
    """Each source's host group: the alphabetically first host of the hosts its feeds share
    with other sources' feeds, directly or through a chain of sources (union-find)."""
    parent: dict[str, str] = {}

    def root(host: str) -> str:
        while parent.setdefault(host, host) != host:
            parent[host] = parent[parent[host]]
            host = parent[host]
        return host

    sources = list(sources)
    for src in sources:
        hosts = sorted({host_name(url) for url in src.feeds})
        for other in hosts[1:]:
            a, b = root(hosts[0]), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {src.id: root(min(host_name(url) for url in src.feeds)) for src in sources if src.feeds}


Claim = tuple[str, str]  # a claimed source: (id, poll token)


def poll_chunks(
    claimed: Iterable[Claim], groups: dict[str, str], batch: int
) -> list[tuple[str, list[Claim]]]:
    """The poll tasks for ``claimed`` sources: per host group, in claim order, at most
    ``batch`` sources a task. A source without a group (no feed) is left out."""
    by_group: dict[str, list[Claim]] = {}
    for claim in claimed:
        group = groups.get(claim[0])
        if group is not None:
            by_group.setdefault(group, []).append(claim)
    return [
        (group, members[start : start + batch])
        for group, members in by_group.items()
        for start in range(0, len(members), batch)
    ]
