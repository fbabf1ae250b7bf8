"""Serving the API with uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class ApiServer:
    """uvicorn in a thread (for the demo and the tests); stop() shuts it down cleanly."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        )
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ApiServer:
        """Start serving and wait until the socket is bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {self.url} (is the port in use?)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Finish open requests and stop."""
        self._server.should_exit = True
        self._thread.join(10)
