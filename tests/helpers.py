"""Test helpers: bounded polling instead of sleeps, and a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll until predicate returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Post:
    """One POST a receiver took."""

    headers: Message  # case-insensitive: post.headers["X-Crowdfix-Delivery"]
    body: bytes


class WebhookReceiver:
    """A real HTTP server standing in for a technician's app: the POSTs it took, in order;
    while `down` it answers 503 instead and counts them. A context manager (it stops)."""

    def __init__(self, path: str = "/offers") -> None:
        self.down = False
        self.taken: list[Post] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down:
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.taken.append(Post(self.headers, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}{path}"

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
