"""`crowdfix provision`: Mosquitto's hash format, the files it writes, and the registry."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cloud.db import make_engine, make_sessionmaker
from cloud.devices.models import Device
from cloud.provisioning.mosquitto import AccountKind, hash_password, verify_password
from cloud.provisioning.store import CredentialStore
from cloud.sites.models import Site
from crowdfix.cli import app
from tests.conftest import SecureBroker
from tests.helpers import wait_for


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_hash_verifies_its_own_password_and_no_other(password: str) -> None:
    hashed = hash_password(password)
    assert hashed.startswith("$7$101$")
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_hashes_of_mosquitto_passwd_verify(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (Debian package mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-b", "-c", str(passwd), "alice", "s3cret"], check=True)
    stored = passwd.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret!", stored)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    database = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    monkeypatch.setenv("CROWDFIX_DATABASE_URL", database)
    monkeypatch.chdir(tmp_path)
    return {"db": tmp_path / "cloud.sqlite3", "root": tmp_path}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["provision", *args])
    return result.exit_code, result.output


def add_site(site_id: str) -> None:
    engine = make_engine(f"sqlite:///{Path.cwd() / 'cloud.sqlite3'}")
    from cloud.clock import utc_now
    from cloud.db import migrate

    migrate(engine)
    with make_sessionmaker(engine).begin() as db:
        db.add(Site(id=site_id, name=site_id, created_at=utc_now()))


def test_provisioning_a_device_registers_it_and_writes_its_files(env) -> None:
    add_site("zurich-hb")
    code, out = run("device", "pos-01", "--site", "zurich-hb", "--profile", "pos-terminal")
    assert code == 0, out
    assert "docker compose kill -s HUP mosquitto" in out
    folder = Path("secrets/devices/pos-01")
    agent_env = (folder / "agent.env").read_text()
    assert "CROWDFIX_AGENT_DEVICE_ID=pos-01" in agent_env
    assert "CROWDFIX_AGENT_BROKER_URL=mqtts://localhost:8883" in agent_env
    password = (folder / "mqtt-password").read_text().strip()
    assert password not in agent_env
    assert stat.S_IMODE((folder / "mqtt-password").stat().st_mode) == 0o600
    user, hashed = Path("secrets/mosquitto/passwd").read_text().strip().split(":", 1)
    assert user == "pos-01" and verify_password(password, hashed)
    acl = Path("secrets/mosquitto/acl").read_text()
    assert (
        "user pos-01\ntopic write dt/crowdfix/v1/pos-01/+\ntopic read cmd/crowdfix/v1/pos-01/+"
        in acl
    )
    with make_sessionmaker(make_engine(f"sqlite:///{env['db']}"))() as db:
        device = db.get(Device, "pos-01")
        assert device is not None and device.site_id == "zurich-hb"
        assert device.profile == "pos-terminal"


def test_mistakes_get_errors_that_say_what_to_do(env) -> None:
    code, out = run("device", "pos-01", "--site", "nowhere")
    assert code == 2 and "site 'nowhere' does not exist" in out
    code, out = run("device", "POS 01", "--no-register")
    assert code == 2 and "device 'POS 01'" in out
    assert run("device", "pos-01", "--no-register")[0] == 0
    code, out = run("device", "pos-01", "--no-register")
    assert code == 2 and "crowdfix provision rotate pos-01" in out
    code, out = run("rotate", "pos-99")
    assert code == 2 and "pos-99 has no broker credentials" in out
    code, out = run("device", "x", "--no-register", "--ca-file", "missing.crt")
    assert code == 2 and "make-certs.sh" in out


def test_rotate_revoke_and_the_cloud_account(env) -> None:
    assert run("device", "pos-01", "--no-register")[0] == 0
    first = Path("secrets/devices/pos-01/mqtt-password").read_text()
    assert run("rotate", "pos-01")[0] == 0
    second = Path("secrets/devices/pos-01/mqtt-password").read_text()
    assert first != second
    code, out = run("cloud-account")
    assert code == 0, out
    dotenv = Path(".env").read_text()
    assert "CROWDFIX_MQTT_USERNAME=crowdfix-cloud" in dotenv
    assert stat.S_IMODE(Path(".env").stat().st_mode) == 0o600
    assert run("cloud-account")[1].count("--rotate") == 1
    assert run("cloud-account", "--rotate")[0] == 0
    assert Path(".env").read_text().count("CROWDFIX_MQTT_PASSWORD=") == 1
    assert run("rotate", "crowdfix-cloud")[0] == 2
    code, out = run("list")
    assert "crowdfix-cloud" in out and "cloud" in out and "pos-01" in out
    assert run("revoke", "pos-01")[0] == 0
    assert not Path("secrets/devices/pos-01").exists()
    assert "pos-01" not in Path("secrets/mosquitto/passwd").read_text()
    assert "pos-01" not in Path("secrets/mosquitto/acl").read_text()


def test_a_provisioned_agent_logs_in_with_the_files_it_was_given(
    secure_mosquitto: SecureBroker, tmp_path: Path
) -> None:
    """The CLI's files, as the agent's settings read them, open the real broker."""
    from edge_agent.settings import AgentSettings
    from mqttlink import MqttLink

    broker_dir = secure_mosquitto.store.directory
    code, out = run(
        "device", "pos-07", "--no-register", "--broker-dir", str(broker_dir),
        "--credentials-dir", str(tmp_path / "creds"), "--broker-url", secure_mosquitto.broker.url,
    )  # fmt: skip
    assert code == 0, out
    secure_mosquitto.broker.reload()
    values = dict(
        line.split("=", 1)
        for line in (tmp_path / "creds/pos-07/agent.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = AgentSettings(
        device_id=values["CROWDFIX_AGENT_DEVICE_ID"],
        profile=Path("p.yaml"),
        broker_url=values["CROWDFIX_AGENT_BROKER_URL"],
        mqtt_username=values["CROWDFIX_AGENT_MQTT_USERNAME"],
        mqtt_password_file=tmp_path / "creds/pos-07/mqtt-password",
    )
    link = MqttLink(settings.broker(), "pos-07")
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        wait_for(lambda: link.publish("dt/crowdfix/v1/pos-07/status", b"{}").sent, 5, "publish")
    finally:
        link.stop()


def test_concurrent_provisioning_loses_no_account(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = CredentialStore(tmp_path / "broker")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.add(f"dev-{i}", AccountKind.DEVICE), range(40)))
    assert len(CredentialStore(tmp_path / "broker").accounts()) == 40
    assert len(store.passwd_path.read_text().splitlines()) == 40


def test_a_technicians_app_account_reads_only_its_own_topics(env) -> None:
    from cloud.provisioning.mosquitto import verify_password

    code, out = run("technician", "ana.m")
    assert code == 0, out
    assert "tech/crowdfix/v1/ana.m/+" in out
    password_file = Path("secrets/technicians/ana.m/mqtt-password")
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    acl = Path("secrets/mosquitto/acl").read_text()
    assert "user ana.m\ntopic read tech/crowdfix/v1/ana.m/+\n" in acl  # and nothing more
    stored = dict(
        line.split(":", 1) for line in Path("secrets/mosquitto/passwd").read_text().splitlines()
    )
    assert verify_password(password_file.read_text().strip(), stored["ana.m"])
    code, out = run("technician", "ana.m")
    assert code == 2 and "--rotate" in out
    first = password_file.read_text()
    assert run("technician", "ana.m", "--rotate")[0] == 0
    assert password_file.read_text() != first
    code, out = run("rotate", "ana.m")  # the device command refuses, and says which to use
    assert code == 2 and "provision technician --rotate" in out
    code, out = run("technician", "Ana M")
    assert code == 2 and "not a technician id" in out
    assert "ana.m" in run("list")[1] and "technician" in run("list")[1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retired_technicians_lose_their_broker_accounts(cloud, tmp_path: Path) -> None:
    """Ana and Ben have broker accounts for their apps; Ana is retired in crowdfix. On the
    broker's host, `crowdfix provision retired` asks the API who is retired and removes their
    accounts (and files), after saying whose it would remove; Ben's stays. A second run finds
    nothing to do, and a wrong token is refused with the API's own answer."""
    import httpx

    from cloud.db import transaction
    from cloud.dispatch import csvimport
    from cloud.dispatch.schemas import TechnicianIn
    from tests.cloud.factories import T0

    broker, creds = tmp_path / "broker", tmp_path / "technicians"
    where = ["--broker-dir", str(broker), "--credentials-dir", str(creds)]
    runner = CliRunner()
    for tech in ("ana", "ben"):
        with transaction(cloud.sessions) as db:
            body = TechnicianIn(name=tech.title(), skills=["pos"], home_lat=47.38, home_lon=8.54)
            csvimport.upsert(db_session=db, technician_id=tech, body=body, now=T0)
        made = runner.invoke(app, ["provision", "technician", tech, *where])
        assert made.exit_code == 0, made.output
    retired = httpx.post(
        f"{cloud.api_url}/api/technicians/ana/retire",
        json={"reason": "moved away"},
        headers={"Authorization": f"Bearer {cloud.token}"},
    )
    assert retired.status_code == 200, retired.text
    token = tmp_path / "token"
    token.write_text(cloud.token + "\n")
    sync = ["provision", "retired", "--api", cloud.api_url, "--token-file", str(token), *where]

    dry = runner.invoke(app, [*sync, "--dry-run"])
    assert dry.exit_code == 0 and "would revoke 1: ana" in dry.output
    assert "ana" in CredentialStore(broker).accounts()

    done = runner.invoke(app, sync)
    assert done.exit_code == 0 and "revoked 1 retired technician(s): ana" in done.output
    assert "kill -s HUP mosquitto" in done.output  # how the broker takes it
    assert set(CredentialStore(broker).accounts()) == {"ben"}
    assert (
        "ana" not in (broker / "passwd").read_text() and "ana" not in (broker / "acl").read_text()
    )
    assert not (creds / "ana").exists() and (creds / "ben" / "mqtt-password").is_file()

    again = runner.invoke(app, sync)
    assert again.exit_code == 0 and "no broker account of a retired technician" in again.output
    token.write_text("not-a-token\n")
    refused = runner.invoke(app, sync)
    assert refused.exit_code != 0 and "answered 401" in refused.output
