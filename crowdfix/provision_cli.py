"""`crowdfix provision`: broker accounts for devices, technicians' apps and the cloud, and the
device registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crowdfix.clitools import cloud_settings, fail

provision_app = typer.Typer(
    help="Create, rotate and revoke broker credentials (Mosquitto password file and ACL).",
    no_args_is_help=True,
)

BrokerDir = Annotated[
    Path,
    typer.Option(
        "--broker-dir",
        envvar="CROWDFIX_BROKER_SECRETS",
        help="Folder of the broker's passwd and acl files (mounted into Mosquitto).",
    ),
]
CredentialsDir = Annotated[
    Path,
    typer.Option(
        "--credentials-dir", help="Where each device's agent.env and mqtt-password are written."
    ),
]
DeviceBrokerUrl = Annotated[
    str,
    typer.Option(
        "--broker-url",
        envvar="CROWDFIX_DEVICE_BROKER_URL",
        help="The broker as devices reach it, written to their agent.env.",
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option("--ca-file", help="CA certificate of a private broker CA, copied for the device."),
]
DEFAULT_BROKER_DIR = Path("secrets/mosquitto")
DEFAULT_CREDENTIALS_DIR = Path("secrets/devices")
DEFAULT_TECHNICIAN_DIR = Path("secrets/technicians")
DEFAULT_DEVICE_BROKER_URL = "mqtts://localhost:8883"


def _store(broker_dir: Path) -> Any:
    from cloud.provisioning.store import CredentialStore

    return CredentialStore(broker_dir)


def _endpoint(broker_url: str, ca_file: Path | None) -> Any:
    from cloud.provisioning.service import AgentEndpoint

    if ca_file is not None and not ca_file.is_file():
        raise fail(f"--ca-file {ca_file}: no such file (deploy/mosquitto/make-certs.sh makes one)")
    return AgentEndpoint(broker_url, ca_file)


def _done(message: str) -> None:
    from cloud.provisioning.service import RELOAD_HINT

    typer.echo(message)
    typer.echo(f"note: {RELOAD_HINT}")


@provision_app.command("device")
def provision_device(
    device_id: Annotated[str, typer.Argument(help="Device id; also its MQTT username.")],
    site: Annotated[str | None, typer.Option(help="Site id (registered already).")] = None,
    profile: Annotated[str | None, typer.Option(help="Profile name, e.g. pos-terminal.")] = None,
    name: Annotated[str, typer.Option(help="A human-readable name.")] = "",
    criticality: Annotated[
        str | None, typer.Option(help="low, normal, high or critical (default: the site's).")
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Also register the device in the database (CROWDFIX_DATABASE_URL).")
    ] = True,
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
    credentials_dir: CredentialsDir = DEFAULT_CREDENTIALS_DIR,
    broker_url: DeviceBrokerUrl = DEFAULT_DEVICE_BROKER_URL,
    ca_file: CaFile = None,
) -> None:
    """Register a device and create its broker account, ACL entry and agent credentials."""
    from pydantic import ValidationError

    from cloud.clock import utc_now
    from cloud.db import make_engine, make_sessionmaker, migrate
    from cloud.devices.schemas import DeviceIn
    from cloud.errors import CloudError
    from cloud.provisioning.service import provision_device as provision

    try:
        device_in = DeviceIn(
            id=device_id, site_id=site, profile=profile, name=name, criticality=criticality
        )
    except ValidationError as exc:
        raise fail(f"device {device_id!r}: {exc}") from exc
    endpoint = _endpoint(broker_url, ca_file)
    sessions = None
    if register:
        engine = make_engine(cloud_settings().database_url)
        migrate(engine)
        sessions = make_sessionmaker(engine)
    try:
        folder = provision(
            sessions=sessions,
            store=_store(broker_dir),
            device_in=device_in,
            credentials_dir=credentials_dir,
            endpoint=endpoint,
            now=utc_now(),
        )
    except (CloudError, ValueError) as exc:
        raise fail(str(exc)) from exc
    _done(
        f"provisioned {device_id}: credentials in {folder}/ (agent.env, mqtt-password); "
        "copy them to /etc/crowdfix on the device (docs/raspberry-pi.md)"
    )


@provision_app.command("rotate")
def provision_rotate(
    device_id: Annotated[str, typer.Argument(help="Device id.")],
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
    credentials_dir: CredentialsDir = DEFAULT_CREDENTIALS_DIR,
    broker_url: DeviceBrokerUrl = DEFAULT_DEVICE_BROKER_URL,
    ca_file: CaFile = None,
) -> None:
    """Give a device a new password; the old one is refused once the broker reloads."""
    from cloud.errors import CloudError
    from cloud.provisioning.mosquitto import AccountKind
    from cloud.provisioning.service import rotate_device

    store = _store(broker_dir)
    account = store.accounts().get(device_id)
    if account is not None and account.kind is AccountKind.CLOUD:
        raise fail(f"{device_id} is the cloud's account: use `crowdfix provision cloud-account`")
    if account is not None and account.kind is AccountKind.TECHNICIAN:
        raise fail(f"{device_id} is a technician's: use `crowdfix provision technician --rotate`")
    try:
        folder = rotate_device(
            store=store,
            device_id=device_id,
            credentials_dir=credentials_dir,
            endpoint=_endpoint(broker_url, ca_file),
        )
    except CloudError as exc:
        raise fail(str(exc)) from exc
    _done(f"new password for {device_id} in {folder}/mqtt-password: install it on the device")


@provision_app.command("revoke")
def provision_revoke(
    username: Annotated[str, typer.Argument(help="Device id (or account) to lock out.")],
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
    credentials_dir: CredentialsDir = DEFAULT_CREDENTIALS_DIR,
) -> None:
    """Remove an account from the password file and the ACL (the registry keeps its history)."""
    import shutil

    from cloud.errors import CloudError

    try:
        _store(broker_dir).revoke(username)
    except CloudError as exc:
        raise fail(str(exc)) from exc
    shutil.rmtree(credentials_dir / username, ignore_errors=True)
    _done(f"revoked {username}")


@provision_app.command("cloud-account")
def provision_cloud_account(
    username: Annotated[str, typer.Option(help="The cloud's MQTT username.")] = "crowdfix-cloud",
    env_file: Annotated[
        Path, typer.Option(help="Env file the cloud containers read (compose's .env).")
    ] = Path(".env"),
    rotate: Annotated[bool, typer.Option(help="Replace the password of an existing account.")] = (
        False
    ),
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
) -> None:
    """The cloud's service account: reads every device's data, writes only command channels."""
    from cloud.errors import CloudError
    from cloud.provisioning.mosquitto import AccountKind
    from cloud.provisioning.service import set_env_values

    store = _store(broker_dir)
    try:
        password = store.rotate(username) if rotate else store.add(username, AccountKind.CLOUD)
    except (CloudError, ValueError) as exc:
        raise fail(f"{exc} (or pass --rotate)" if not rotate else str(exc)) from exc
    set_env_values(
        env_file, {"CROWDFIX_MQTT_USERNAME": username, "CROWDFIX_MQTT_PASSWORD": password}
    )
    _done(f"cloud account {username}: CROWDFIX_MQTT_USERNAME/PASSWORD written to {env_file}")


@provision_app.command("technician")
def provision_technician(
    technician_id: Annotated[str, typer.Argument(help="Technician id; also the MQTT username.")],
    rotate: Annotated[bool, typer.Option(help="Replace the password of an existing account.")] = (
        False
    ),
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
    credentials_dir: Annotated[
        Path, typer.Option("--credentials-dir", help="Where the app's mqtt-password is written.")
    ] = DEFAULT_TECHNICIAN_DIR,
) -> None:
    """A technician's app account: it may only read its own offers and job notices."""
    from cloud.dispatch.schemas import TECHNICIAN_TOPICS
    from cloud.errors import CloudError
    from cloud.provisioning.mosquitto import AccountKind
    from cloud.provisioning.store import write_file

    store = _store(broker_dir)
    account = store.accounts().get(technician_id)
    if rotate and account is not None and account.kind is not AccountKind.TECHNICIAN:
        raise fail(f"{technician_id} is a {account.kind.value} account, not a technician's")
    try:
        password = (
            store.rotate(technician_id)
            if rotate
            else store.add(technician_id, AccountKind.TECHNICIAN)
        )
    except (CloudError, ValueError) as exc:
        raise fail(f"{exc} (or pass --rotate)" if not rotate else str(exc)) from exc
    folder = credentials_dir / technician_id
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file(folder / "mqtt-password", password + "\n", 0o600)
    _done(
        f"technician {technician_id}: password in {folder}/mqtt-password; their app logs in as "
        f"{technician_id} and subscribes to {TECHNICIAN_TOPICS}/{technician_id}/+"
    )


@provision_app.command("retired")
def provision_retired(
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="CROWDFIX_API_URL",
            help="The crowdfix API, e.g. https://crowdfix.example",
        ),
    ],
    token_file: Annotated[
        Path,
        typer.Option(
            "--token-file",
            help="A file holding an operator's or admin's API token (`crowdfix cloud "
            "create-user broker-sync --token sync` prints one).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say whose accounts would go; change nothing.")
    ] = False,
    broker_dir: BrokerDir = DEFAULT_BROKER_DIR,
    credentials_dir: Annotated[
        Path, typer.Option("--credentials-dir", help="Where technicians' mqtt-password files are.")
    ] = DEFAULT_TECHNICIAN_DIR,
) -> None:
    """Remove the broker accounts of technicians retired in crowdfix. Retiring someone (on the
    crowd page or POST /api/technicians/{id}/retire) closes their API logins at once, but
    their broker account lives here, on the broker's host, out of the API's reach: run this
    here after a retirement, or from cron, then reload the broker."""
    import json
    import shutil
    import urllib.error
    import urllib.request

    from cloud.provisioning.mosquitto import AccountKind

    if not token_file.is_file():
        raise fail(f"--token-file {token_file}: no such file")
    request = urllib.request.Request(
        f"{api.rstrip('/')}/api/technicians",
        headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            technicians = json.load(answer)
    except urllib.error.HTTPError as exc:
        raise fail(
            f"{api} answered {exc.code}: {exc.read().decode(errors='replace')[:300]}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise fail(f"cannot read the technicians from {api}: {exc}") from exc
    retired = {t["id"] for t in technicians if t.get("retired_at")}
    store = _store(broker_dir)
    gone = sorted(
        name
        for name, account in store.accounts().items()
        if name in retired and account.kind is AccountKind.TECHNICIAN
    )
    if not gone:
        typer.echo(f"no broker account of a retired technician ({len(retired)} retired)")
        return
    if dry_run:
        typer.echo(f"would revoke {len(gone)}: {', '.join(gone)}")
        return
    for name in gone:
        store.revoke(name)
        shutil.rmtree(credentials_dir / name, ignore_errors=True)
    _done(f"revoked {len(gone)} retired technician(s): {', '.join(gone)}")


@provision_app.command("list")
def provision_list(broker_dir: BrokerDir = DEFAULT_BROKER_DIR) -> None:
    """Every broker account and what it is for."""
    accounts = _store(broker_dir).accounts()
    if not accounts:
        typer.echo(f"no accounts in {broker_dir} (crowdfix provision device ID --site ...)")
    for account in sorted(accounts.values(), key=lambda a: a.username):
        typer.echo(f"{account.username:<40} {account.kind.value}")
