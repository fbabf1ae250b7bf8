"""What every `crowdfix` command shares: the log-level option and how errors are printed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level", help="DEBUG, INFO, WARNING or ERROR [env CROWDFIX_LOG_LEVEL; default INFO]."
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a clear error and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def cloud_settings() -> Any:
    """The cloud's settings from the environment, or a clear exit when they are invalid."""
    from pydantic import ValidationError

    from cloud.config import CloudSettings

    try:
        return CloudSettings()
    except ValidationError as exc:
        raise fail(f"cloud settings (CROWDFIX_*): {exc}") from exc
