"""The broker's accounts on disk: one JSON file of record, rendered to Mosquitto's files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from cloud.errors import Conflict, NotFound
from cloud.provisioning.mosquitto import (
    TECHNICIAN_ID,
    Account,
    AccountKind,
    acl_file,
    hash_password,
    password_file,
)
from contracts.topics import is_device_id

PASSWORD_BYTES = 32
RECORD = "accounts.json"
PASSWD = "passwd"
ACL = "acl"


def new_mqtt_password() -> str:
    """A random password (256 bits), safe in URLs, env files and Mosquitto's file."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


class CredentialStore:
    """Accounts of one Mosquitto: `accounts.json` is the record; `passwd` and `acl` are
    rendered from it atomically, so the broker never reads half a file on SIGHUP."""

    def __init__(self, directory: Path, *, ingest_group: str = "crowdfix-ingest") -> None:
        self.directory = directory
        self.ingest_group = ingest_group

    @property
    def passwd_path(self) -> Path:
        """Mosquitto's `password_file`."""
        return self.directory / PASSWD

    @property
    def acl_path(self) -> Path:
        """Mosquitto's `acl_file`."""
        return self.directory / ACL

    def accounts(self) -> dict[str, Account]:
        """Every account, by username."""
        path = self.directory / RECORD
        if not path.exists():
            return {}
        rows = json.loads(path.read_text())["accounts"]
        return {
            row["username"]: Account(
                row["username"], AccountKind(row["kind"]), row["password_hash"]
            )
            for row in rows
        }

    def add(self, username: str, kind: AccountKind) -> str:
        """Create an account and return its new password (shown once, stored only hashed)."""
        return self.add_many([username], kind)[username]

    def add_many(self, usernames: list[str], kind: AccountKind) -> dict[str, str]:
        """Create several accounts in one write (a fleet roll-out); their new passwords."""
        for username in usernames:
            if kind is AccountKind.TECHNICIAN and not TECHNICIAN_ID.match(username):
                raise ValueError(
                    f"{username!r} is not a technician id: 1-64 lowercase letters, digits, "
                    "dots, dashes and underscores (a technician's username is their id)"
                )
            if kind is not AccountKind.TECHNICIAN and not is_device_id(username):
                raise ValueError(
                    f"{username!r} cannot be an MQTT username: use 1-64 lowercase letters, "
                    "digits and dashes (a device's username is its device id)"
                )
        with self._locked() as accounts:
            taken = [u for u in usernames if u in accounts]
            if taken:
                raise Conflict(
                    f"{taken[0]} already has broker credentials: use `crowdfix provision rotate "
                    f"{taken[0]}` for a new password"
                )
            passwords = {u: new_mqtt_password() for u in usernames}
            for username, password in passwords.items():
                accounts[username] = Account(username, kind, hash_password(password))
            return passwords

    def issue(self, username: str, kind: AccountKind) -> str:
        """A fresh password for the account, creating it if needed (the demo, each run)."""
        if username in self.accounts():
            return self.rotate(username)
        return self.add(username, kind)

    def rotate(self, username: str) -> str:
        """Give an account a new password; the old one stops working when the broker reloads."""
        with self._locked() as accounts:
            account = self._existing(accounts, username)
            password = new_mqtt_password()
            accounts[username] = Account(username, account.kind, hash_password(password))
            return password

    def revoke(self, username: str) -> Account:
        """Remove an account from the password file and the ACL."""
        with self._locked() as accounts:
            return accounts.pop(self._existing(accounts, username).username)

    @staticmethod
    def _existing(accounts: dict[str, Account], username: str) -> Account:
        if username not in accounts:
            raise NotFound(f"{username} has no broker credentials (see `crowdfix provision list`)")
        return accounts[username]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Account]]:
        """Read, let the caller change, then write all three files, under an exclusive lock."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            accounts = self.accounts()
            yield accounts
            rows = [asdict(a) | {"kind": a.kind.value} for a in accounts.values()]
            write_file(
                self.directory / RECORD, json.dumps({"accounts": rows}, indent=2) + "\n", 0o600
            )
            write_file(self.passwd_path, password_file(accounts.values()), 0o640)
            write_file(
                self.acl_path, acl_file(accounts.values(), ingest_group=self.ingest_group), 0o644
            )


def write_file(path: Path, text: str, mode: int) -> None:
    """Write a file whole: a temporary file beside it, then an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_agent_credentials(
    directory: Path, *, device_id: str, password: str, broker_url: str, ca_file: Path | None
) -> Path:
    """`<dir>/<device>/agent.env` (identity, broker) and `mqtt-password` (mode 0600) for the
    device's /etc/crowdfix; returns the device's folder."""
    folder = directory / device_id
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# crowdfix agent {device_id}: copy to /etc/crowdfix/agent.env on the device.",
        "# The password is in mqtt-password beside this file: copy it to",
        "# /etc/crowdfix/mqtt-password (mode 0600, owner root); the systemd unit loads it.",
        f"CROWDFIX_AGENT_DEVICE_ID={device_id}",
        f"CROWDFIX_AGENT_MQTT_USERNAME={device_id}",
        f"CROWDFIX_AGENT_BROKER_URL={broker_url}",
        "CROWDFIX_AGENT_PROFILE=/etc/crowdfix/profile.yaml",
        *([f"CROWDFIX_AGENT_MQTT_CA_FILE=/etc/crowdfix/{ca_file.name}"] if ca_file else []),
    ]
    write_file(folder / "agent.env", "\n".join(lines) + "\n", 0o644)
    write_file(folder / "mqtt-password", password + "\n", 0o600)
    if ca_file is not None:
        write_file(folder / ca_file.name, ca_file.read_text(), 0o644)
    return folder
