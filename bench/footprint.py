"""Edge agent footprint: idle resident memory and CPU with four buttons and four collectors
sampled and published at 1 Hz, against a real Mosquitto.

Baselines measured in the same run: a bare interpreter, and an interpreter holding what the
agent stands on (paho-mqtt, gpiozero with a Button and an LED on mock pins, pydantic with one
model, PyYAML, an open SQLite database). Budget: 40 MB RSS and 2 % of one core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import Progress, cpu_seconds, median, rss_mb, table
from crowdfix.brokers import MosquittoBroker, find_mosquitto

BUDGET_RSS_MB = 40.0
BUDGET_CPU_PCT = 2.0
# What the agent stands on, as in ../shared/FACTS.md's footprint baseline: the libraries,
# one pydantic model, a Button and an LED on mock pins, and an open SQLite database.
LIBRARIES = """
import sqlite3, paho.mqtt.client, yaml, pydantic, gpiozero
from gpiozero.pins.mock import MockFactory
class M(pydantic.BaseModel):
    name: str
M(name="x")
f = MockFactory()
b, led = gpiozero.Button(17, pin_factory=f), gpiozero.LED(23, pin_factory=f)
db = sqlite3.connect(":memory:")
"""
ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "edge" / "crowdfix-agent.service"


def bench_profile(workdir: Path) -> dict:
    """Four buttons, an LED, four collectors, all at 1 Hz."""
    temp = workdir / "cpu_temp"
    temp.write_text("47000\n")
    loadavg = workdir / "loadavg"
    loadavg.write_text("0.10 0.10 0.10 1/100 1\n")
    return {
        "profile": "footprint",
        "buttons": [
            {"name": f"b{i}", "pin": pin, "category": "help"}
            for i, pin in enumerate((17, 27, 22, 5), 1)
        ],
        "outputs": [{"name": "led", "kind": "led", "pin": 23}],
        "collectors": [
            {"kind": "cpu_temperature", "name": "cpu_c", "sensor_file": str(temp)},
            {"kind": "load_average", "name": "load", "load_average_file": str(loadavg)},
            {"kind": "disk_usage", "name": "disk", "filesystem": str(workdir)},
            {"kind": "digital_input", "name": "door", "pin": 24},
        ],
        "telemetry": {"sample_every_s": 1, "publish_every_s": 1},
        "faults": [{"code": "hot", "when": {"kind": "threshold", "signal": "cpu_c", "above": 80}}],
        "heartbeat_interval_s": 60,
    }


def ensure_bytecode() -> None:
    """Compile what the agent imports at the unit's optimisation level, as a deployment does
    (docs/raspberry-pi.md): otherwise every start recompiles and the figures measure that."""
    import compileall
    import sysconfig

    Progress("compiling bytecode (once)", 1).update(0)
    for path in {
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        *(str(ROOT / p) for p in ("contracts", "mqttlink", "edge_agent", "crowdfix")),
    }:
        compileall.compile_dir(path, quiet=2, optimize=[0, 2], workers=0)


def unit_tuning() -> dict[str, str]:
    """The interpreter settings the systemd unit's Environment= lines give the agent."""
    tuning: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment=") and "CROWDFIX_" not in line:
            for pair in line.removeprefix("Environment=").split():
                key, _, value = pair.partition("=")
                tuning[key] = value
    return tuning


def _agent(profile: Path, url: str, state: Path, env: dict[str, str], n: str) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "--config",
            str(profile),
            "--device-id",
            f"footprint-{n}",
            "--broker",
            url,
            "--state-dir",
            str(state),
            "--pins",
            "mock",
            "--log-level",
            "WARNING",
        ],
        env=env,
    )


def _idle_process(code: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", f"{code}\nimport time\ntime.sleep(600)"], env=env
    )


def measure(pid: int, seconds: float, label: str) -> tuple[list[float], float]:
    """RSS samples each second and CPU share (% of one core) over the window."""
    progress = Progress(label, seconds)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    samples = []
    while (elapsed := time.monotonic() - t0) < seconds:
        samples.append(rss_mb(pid))
        progress.update(elapsed)
        time.sleep(1.0)
    progress.update(seconds)
    cpu_pct = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    return samples, cpu_pct


def run(seconds: float, warmup: float) -> int:
    """Measure and print; exit status 1 when over budget."""
    if find_mosquitto() is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    ensure_bytecode()
    plain = {k: v for k, v in os.environ.items() if not k.startswith("CROWDFIX_")}
    plain.pop("PYTHONDONTWRITEBYTECODE", None)
    tuning = unit_tuning()
    env = {**plain, **tuning}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = MosquittoBroker(workdir / "mosquitto").start()
        profile = workdir / "profile.yaml"
        profile.write_text(yaml.safe_dump(bench_profile(workdir)))
        processes = {
            "bare interpreter": _idle_process("pass", env),
            "libraries, model, pins, sqlite": _idle_process(LIBRARIES, env),
            # What the systemd unit runs (deploy/edge/crowdfix-agent.service), as it runs it.
            "crowdfix agent": _agent(profile, broker.url, workdir / "state", env, "01"),
            "agent, interpreter untuned": _agent(profile, broker.url, workdir / "s2", plain, "02"),
        }
        try:
            Progress("warming up", warmup).update(0)
            time.sleep(warmup)
            results = {name: measure(p.pid, seconds, name) for name, p in processes.items()}
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(10)
            broker.stop()
    baseline_rss = median(results["libraries, model, pins, sqlite"][0])
    rows = []
    for name, (rss, cpu) in results.items():
        rows.append([name, median(rss), max(rss), cpu, median(rss) / baseline_rss])
    print(
        table(
            f"Edge agent footprint ({seconds:g} s window after {warmup:g} s warm-up; 4 buttons, "
            f"4 collectors, 1 Hz telemetry; tuning from the systemd unit: "
            f"{' '.join(f'{k}={v}' for k, v in tuning.items())})",
            ["process", "RSS median MB", "RSS max MB", "CPU % of one core", "RSS / baseline"],
            rows,
        )
    )
    agent_rss, agent_cpu = max(results["crowdfix agent"][0]), results["crowdfix agent"][1]
    verdict = agent_rss <= BUDGET_RSS_MB and agent_cpu <= BUDGET_CPU_PCT
    print(
        f"budget: ≤ {BUDGET_RSS_MB:g} MB RSS, ≤ {BUDGET_CPU_PCT:g} % CPU → "
        f"{'within budget' if verdict else 'OVER BUDGET'} "
        f"(agent {agent_rss:.1f} MB, {agent_cpu:.2f} %)"
    )
    return 0 if verdict else 1


def main(argv: list[str] | None = None) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench footprint", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="measurement window")
    parser.add_argument("--warmup", type=float, default=10, help="seconds before measuring")
    args = parser.parse_args(argv)
    return run(args.seconds, args.warmup)
