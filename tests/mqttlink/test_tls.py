"""TLS to a real Mosquitto with certificates from deploy/mosquitto/make-certs.sh."""

from __future__ import annotations

import queue
import shutil
import subprocess
from pathlib import Path

import pytest

from crowdfix.brokers import MosquittoBroker, free_port
from edge_agent.settings import AgentSettings
from mqttlink import BrokerSettings, Inbound, MqttLink
from tests.conftest import ROOT
from tests.helpers import wait_for

SCRIPT = ROOT / "deploy" / "mosquitto" / "make-certs.sh"


@pytest.fixture
def tls_broker(mosquitto: MosquittoBroker, tmp_path: Path) -> tuple[MosquittoBroker, int, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (.ci/run installs it)")
    certs = tmp_path / "certs"
    subprocess.run(
        [str(SCRIPT), str(certs), "localhost", "127.0.0.1"], check=True, capture_output=True
    )
    port = free_port()
    mosquitto.extra_config = (
        f"listener {port} 127.0.0.1\ncafile {certs / 'ca.crt'}\n"
        f"certfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
        "tls_version tlsv1.2\n"
    )
    mosquitto.restart()
    return mosquitto, port, certs / "ca.crt"


def test_the_agent_settings_connect_over_tls_with_the_local_ca(tls_broker) -> None:
    _broker, port, ca = tls_broker
    settings = AgentSettings(
        device_id="tls-1",
        profile=Path("p.yaml"),
        broker_url=f"mqtts://127.0.0.1:{port}",
        mqtt_ca_file=ca,
    )
    inbox: queue.Queue[Inbound] = queue.Queue()
    link = MqttLink(settings.broker(), "tls-1", on_message=inbox.put)
    link.subscribe("t/#")
    link.start()
    try:
        assert link.wait_subscribed(10), link.last_error
        wait_for(lambda: link.publish("t/x", b"secret").sent, 5, "publish")
        assert inbox.get(timeout=5).payload == b"secret"
    finally:
        link.stop()


def test_an_untrusted_certificate_and_plain_mqtt_are_refused(tls_broker) -> None:
    _broker, port, _ca = tls_broker
    for url, words in (
        (f"mqtts://127.0.0.1:{port}", "CERTIFICATE_VERIFY_FAILED"),
        (f"mqtt://127.0.0.1:{port}", ""),
    ):
        link = MqttLink(BrokerSettings.from_url(url), "intruder")
        link.start()
        try:
            assert not link.wait_connected(3)
            assert words in link.last_error
        finally:
            link.stop()
