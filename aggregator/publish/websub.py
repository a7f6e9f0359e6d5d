"""WebSub (W3C): tell the hub our feeds changed, so subscribers hear it without polling us."""

from __future__ import annotations

from collections.abc import Sequence

import httpx


def ping_hub(hub: str, topics: Sequence[str], timeout: float = 10.0) -> list[str]:
    """POST ``hub.mode=publish`` for each topic URL; return one error line per failure."""
    errors = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for topic in topics:
            try:
                res = client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
            except httpx.HTTPError as exc:
                errors.append(f"WebSub hub {hub}: {topic}: {type(exc).__name__}: {exc}")
                continue
            if not 200 <= res.status_code < 300:
                errors.append(f"WebSub hub {hub}: {topic}: HTTP {res.status_code}")
    return errors
