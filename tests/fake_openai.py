"""A fake OpenAI-compatible chat-completions API, as routes on the shared loopback ``web``.

``chat(answer)`` answers ``POST /v1/chat/completions`` the way Ollama, llama.cpp's server or
vLLM do, with ``answer`` as the assistant's message; faults come from conftest (``respond``,
``hang``). Each request's JSON body is kept in ``ChatLog`` so tests can see what was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from tests.conftest import respond

CHAT_PATH = "/v1/chat/completions"


class ChatLog:
    """The requests a fake endpoint received (bodies and headers), thread-safe."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def add(self, h: BaseHTTPRequestHandler) -> dict:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        with self._lock:
            self.bodies.append(body)
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
        return body

    def __len__(self) -> int:
        with self._lock:
            return len(self.bodies)


def completion(content: str, model: str = "fake-model") -> bytes:
    """A chat-completions response carrying ``content`` as the assistant's message."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def chat(
    answer: str | Callable[[dict], str], log: ChatLog | None = None
) -> Callable[[BaseHTTPRequestHandler], None]:
    """A route answering every chat request with ``answer`` (or ``answer(request_body)``)."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        body = (log if log is not None else ChatLog()).add(h)
        content = answer(body) if callable(answer) else answer
        respond(200, completion(content), "application/json")(h)

    return handler


def fault(route: Callable[[BaseHTTPRequestHandler], None], log: ChatLog):
    """A fault route (``respond(429)``, ``hang(...)``) that still logs the request it got."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        log.add(h)
        route(h)

    return handler
