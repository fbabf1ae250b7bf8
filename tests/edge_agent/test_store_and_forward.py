"""Store-and-forward, tested by breaking things: Mosquitto stopped and killed -9, the agent
process killed -9 and restarted while offline. Every event reaches the cloud exactly once,
with the message ids it was first given, replayed in order."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cloud.tickets.models import Ticket
from crowdfix.brokers import MosquittoBroker
from mqttlink import link as link_module
from tests.conftest import ROOT, CloudStack
from tests.edge_agent.rig import Recorder, rig_profile
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one-at-a-time")]
DEVICE = "sf-01"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(autouse=True)
def _quick_cloud_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "RECONNECT_MAX_S", 1.0)


class AgentProcess:
    """`crowdfix agent run --keys` in its own process: buttons pressed through its stdin."""

    def __init__(self, tmp: Path, broker_url: str) -> None:
        self.value_file = tmp / "level"
        self.value_file.write_text("10\n")
        self.profile = tmp / "profile.yaml"
        self.profile.write_text(yaml.safe_dump(_profile(self.value_file)))
        self.state_dir = tmp / "state"
        self.log = tmp / "agent.log"
        self.broker_url = broker_url
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDFIX_")}
        env["CROWDFIX_AGENT_RECONNECT_MAX_S"] = "1"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crowdfix.cli",
                    "agent",
                    "run",
                    "--config",
                    str(self.profile),
                    "--device-id",
                    DEVICE,
                    "--broker",
                    self.broker_url,
                    "--state-dir",
                    str(self.state_dir),
                    "--pins",
                    "mock",
                    "--keys",
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                text=True,
                cwd=ROOT,
                env=env,
            )

    def press(self, key: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(key + "\n")
        self.process.stdin.flush()

    def level(self, value: float) -> None:
        self.value_file.write_text(f"{value}\n")

    def pending(self) -> list[tuple[int, str]]:
        path = self.state_dir / f"{DEVICE}.sqlite3"
        if not path.exists():
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT seq, message_id FROM outbox ORDER BY seq").fetchall()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(20)


def _profile(value_file: Path) -> dict:
    profile = rig_profile(
        value_file,
        {"till": 17, "printer": 27, "network": 22},
        telemetry={"sample_every_s": 0.2, "publish_every_s": 1},
    )
    for button in profile["buttons"]:
        button["cooldown_s"] = 0
    profile["gestures"]["stuck_after_s"] = 60
    return profile


@pytest.fixture
def agent(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path, mosquitto.url)
    process.start()
    yield process
    process.stop()
    if process.log.exists():
        sys.stderr.write(process.log.read_text()[-3000:])


def _events(cloud: CloudStack) -> list:
    return cloud.ingested(DEVICE, "button", "fault")


@pytest.fixture
def recorder(mosquitto: MosquittoBroker) -> Iterator[Recorder]:
    recorder = Recorder(mosquitto.url, DEVICE).start()
    yield recorder
    recorder.stop()


def test_nothing_is_lost_or_doubled_across_outages_and_restarts(
    recorder: Recorder, agent: AgentProcess, mosquitto: MosquittoBroker, cloud: CloudStack
) -> None:
    wait_for(lambda: cloud.device(DEVICE), 30, "the agent's birth message")
    agent.press("1")
    wait_for(lambda: len(_events(cloud)) == 1, 20, "a press while everything is up")

    # Round 1: the broker stops; presses and a fault while it is away; the agent is killed
    # -9 and restarted while still offline; then the broker returns.
    mosquitto.stop()
    agent.press("2")
    agent.press("3")
    agent.level(75)
    wait_for(lambda: len(agent.pending()) == 3, 20, "three events kept in the outbox")
    agent.stop(signal.SIGKILL)
    kept = agent.pending()
    agent.start()
    agent.press("1l")  # long: urgent
    agent.level(30)  # the fault clears
    wait_for(lambda: len(agent.pending()) == 5, 30, "five events kept across the restart")
    offline = agent.pending()
    assert offline[:3] == kept, "the restarted agent kept the same ids and order"
    mosquitto.start()
    wait_for(lambda: not agent.pending(), 60, "the outbox to empty after the broker is back")
    wait_for(lambda: len(_events(cloud)) == 6, 30, "all six events at the cloud")
    # Replayed in order: what crossed the broker, first arrival of each id.
    offline_ids = {mid for _, mid in offline}
    wait_for(lambda: offline_ids <= set(recorder.first_arrivals()), 30, "the recorder's copy")
    replayed = [mid for mid in recorder.first_arrivals() if mid in offline_ids]
    assert replayed == [mid for _, mid in offline], "replayed in order"

    # Round 2: the broker is killed -9 (it loses what it had not saved); presses meanwhile.
    mosquitto.stop(kill=True)
    agent.press("2")
    agent.press("3l")
    wait_for(lambda: len(agent.pending()) == 2, 20, "two events kept")
    second = [mid for _, mid in agent.pending()]
    mosquitto.start()
    wait_for(lambda: not agent.pending(), 90, "the outbox to empty after the crash")
    wait_for(lambda: len(_events(cloud)) == 8, 30, "all eight events at the cloud")

    stored = _events(cloud)
    ids = [e.message_id for e in stored]
    assert len(ids) == len(set(ids)) == 8, "each event stored exactly once"
    assert set(second) <= set(ids)
    assert [e.type for e in stored].count("fault") == 2
    # Tickets: one per problem. Till (pressed, then urgent), printer (twice), network (pressed,
    # then urgent) and the level fault (raised, then cleared before dispatch: resolved).
    with cloud.sessions() as db:
        tickets = {t.category: t for t in db.scalars(select(Ticket))}
    assert {c: (t.occurrences, t.state) for c, t in tickets.items()} == {
        "till": (2, "new"),
        "receipt-printer": (2, "new"),
        "network": (2, "new"),
        "general": (1, "resolved"),
    }
    assert tickets["till"].urgent and tickets["network"].priority == "critical"
