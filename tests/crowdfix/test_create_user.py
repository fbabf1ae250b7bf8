"""`crowdfix cloud create-user`: the first admin of a fresh installation, and its token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud.auth import service as auth
from cloud.clock import utc_now
from cloud.db import make_engine, make_sessionmaker
from crowdfix.cli import app


def test_the_first_admin_gets_a_password_and_a_working_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    monkeypatch.setenv("CROWDFIX_DATABASE_URL", url)
    result = CliRunner().invoke(
        app, ["cloud", "create-user", "alice", "--role", "admin", "--token", "ci"]
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"password: (\S+)", result.output).group(1)  # type: ignore[union-attr]
    token = re.search(r"\(shown once\): (\S+)", result.output).group(1)  # type: ignore[union-attr]
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as db:
        principal = auth.authenticate(db_session=db, token=token, now=utc_now())
        assert principal is not None and principal.role == "admin"
        user = auth.login(
            db_session=db, username="alice", password=password, address="t", now=utc_now()
        )
        assert user.username == "alice"
    again = CliRunner().invoke(app, ["cloud", "create-user", "alice"])
    assert again.exit_code == 2 and "exists already" in again.output
    wrong = CliRunner().invoke(app, ["cloud", "create-user", "bob", "--role", "root"])
    assert wrong.exit_code == 2 and "choose admin, operator or technician" in wrong.output
