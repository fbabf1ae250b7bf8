"""Probes of the attached device: a shell command or an HTTP health URL, each with a timeout."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

from edge_agent.collectors import Sample
from edge_agent.profile import CommandProbeSpec, HttpProbeSpec


class CommandProbe:
    """Runs a command: `ok` → 1/0 by exit status, `number` → the first word of its output."""

    def __init__(self, spec: CommandProbeSpec) -> None:
        self.spec = spec

    def read(self) -> list[Sample]:
        """Run the command once (killed at the timeout, which counts as a failure)."""
        spec = self.spec
        try:
            done = subprocess.run(
                spec.command, capture_output=True, text=True, timeout=spec.timeout_s, check=False
            )
        except (subprocess.TimeoutExpired, OSError):
            if spec.parse == "number":
                raise
            return [(spec.name, 0.0, spec.unit)]
        if spec.parse == "ok":
            return [(spec.name, 1.0 if done.returncode == 0 else 0.0, spec.unit)]
        if done.returncode != 0:
            raise RuntimeError(f"{spec.command[0]} exited with status {done.returncode}")
        return [(spec.name, float(done.stdout.split()[0]), spec.unit)]

    def close(self) -> None:
        """Nothing to release."""


class HttpProbe:
    """GETs a health URL: `<name>` is 1 on a 2xx answer (else 0), `<name>_ms` the latency."""

    def __init__(self, spec: HttpProbeSpec) -> None:
        self.spec = spec

    def read(self) -> list[Sample]:
        """One request, bounded by the timeout."""
        spec = self.spec
        started = time.monotonic()
        try:
            with urllib.request.urlopen(spec.url, timeout=spec.timeout_s) as response:
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            ok = False
        elapsed_ms = (time.monotonic() - started) * 1000
        return [(spec.name, 1.0 if ok else 0.0, spec.unit), (f"{spec.name}_ms", elapsed_ms, "ms")]

    def close(self) -> None:
        """Nothing to release."""
