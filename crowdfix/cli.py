"""The `crowdfix` command. Heavy imports happen inside each command, so `agent run` stays small."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from crowdfix import logs
from crowdfix.clitools import LogLevel, cloud_settings, fail
from crowdfix.provision_cli import provision_app

app = typer.Typer(
    help="crowdfix: help buttons and device faults become dispatched service tickets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
agent_app = typer.Typer(help="Run or check the edge agent on a device.", no_args_is_help=True)
cloud_app = typer.Typer(
    help="Run the cloud service (API, ingest worker, migrations).", no_args_is_help=True
)
app.add_typer(agent_app, name="agent")
app.add_typer(cloud_app, name="cloud")
app.add_typer(provision_app, name="provision")


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so every command shuts down the same clean way."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait(stop: threading.Event) -> None:
    """Block the main thread until stop is set (in short waits so signals get through)."""
    while not stop.wait(0.5):
        pass


# -- demo ---------------------------------------------------------------------------------


@app.command()
def demo(
    broker: Annotated[
        str, typer.Option(help="auto (Mosquitto if installed), mosquitto or embedded.")
    ] = "auto",
    devices: Annotated[int, typer.Option(min=1, max=50, help="Simulated devices.")] = 4,
    press_every: Annotated[
        float, typer.Option(min=1.0, help="Mean seconds between simulated presses.")
    ] = 20.0,
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    mqtt_port: Annotated[
        int | None, typer.Option(help="Port of the demo broker (default 11883, or any free one).")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(
        "var/demo"
    ),
    profiles: Annotated[Path, typer.Option(help="Folder of device profiles.")] = Path(
        "firmware_configs"
    ),
    fresh: Annotated[bool, typer.Option(help="Start from an empty database.")] = False,
    log_level: LogLevel = None,
) -> None:
    """Run the whole system on embedded defaults: broker, cloud on SQLite, simulated devices."""
    from crowdfix.brokers import BrokerError
    from crowdfix.demo import Demo, DemoConfig, DemoError
    from edge_agent.errors import EdgeAgentError

    if broker not in ("auto", "mosquitto", "embedded"):
        raise fail(f"--broker {broker!r}: choose auto, mosquitto or embedded")
    logs.configure(log_level)
    stop = stop_on_signals()
    running = Demo(
        DemoConfig(
            broker=broker,  # type: ignore[arg-type]
            devices=devices,
            press_every_s=press_every,
            api_port=api_port,
            mqtt_port=mqtt_port,
            state_dir=state_dir,
            profiles_dir=profiles,
            fresh=fresh,
        )
    )
    try:
        running.start()
        typer.echo(running.banner())
        wait(stop)
    except (DemoError, BrokerError, EdgeAgentError) as exc:
        raise fail(str(exc)) from exc
    finally:
        typer.echo("stopping the demo…", err=True)
        running.stop()


# -- agent --------------------------------------------------------------------------------


@agent_app.command("run")
def agent_run(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Device profile (YAML) [env CROWDFIX_AGENT_PROFILE]."),
    ] = None,
    device_id: Annotated[
        str | None, typer.Option(help="This device's id [env CROWDFIX_AGENT_DEVICE_ID].")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host:port or mqtts://… [env CROWDFIX_AGENT_BROKER_URL]."),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where the outbox lives [env CROWDFIX_AGENT_STATE_DIR].")
    ] = None,
    pins: Annotated[
        str | None, typer.Option(help="auto, mock or native GPIO [env CROWDFIX_AGENT_PINS].")
    ] = None,
    keys: Annotated[
        bool | None,
        typer.Option(
            help="Press mock buttons from the keyboard (default: on with mock pins and a terminal)."
        ),
    ] = None,
    log_level: LogLevel = None,
) -> None:
    """Run the edge agent for one device until Ctrl-C or SIGTERM."""
    from edge_agent.app import EdgeAgent
    from edge_agent.errors import EdgeAgentError
    from edge_agent.profile import load_profile
    from edge_agent.settings import AgentSettings

    logs.configure(log_level)
    try:
        settings = AgentSettings.from_env(
            {
                "profile": config,
                "device_id": device_id,
                "broker_url": broker,
                "state_dir": state_dir,
                "pins": pins,
            }
        )
        agent = EdgeAgent(settings, load_profile(settings.profile))
    except EdgeAgentError as exc:
        raise fail(str(exc)) from exc
    if keys or (keys is None and sys.stdin.isatty()):
        _start_keyboard(agent)
    stop = stop_on_signals()
    agent.run(stop)


def _start_keyboard(agent: Any) -> None:
    from gpiozero.pins.mock import MockFactory

    from edge_agent.hardware.keyboard import Keyboard

    if not isinstance(agent.pin_factory, MockFactory):
        typer.echo("real GPIO in use: keyboard presses are off", err=True)
        return
    Keyboard(agent.profile.buttons, agent.pin_factory, agent.profile.gestures).start()


@agent_app.command("check-config")
def agent_check_config(
    files: Annotated[list[Path], typer.Argument(help="Device profiles to validate.")],
) -> None:
    """Validate device profiles; print each error with its file and field."""
    from edge_agent.errors import ProfileError
    from edge_agent.profile import load_profile

    failed = 0
    for path in files:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            failed += 1
            typer.secho(str(exc), fg=typer.colors.RED, err=True)
            continue
        typer.echo(
            f"{path}: ok ({profile.profile}: {len(profile.buttons)} buttons, "
            f"{len(profile.outputs)} outputs, {len(profile.collectors)} collectors, "
            f"{len(profile.faults)} fault rules)"
        )
    if failed:
        raise typer.Exit(1)


@agent_app.command("schema")
def agent_schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of device profiles (for editors; see firmware_configs/)."""
    from edge_agent.profile import json_schema

    text = json_schema()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


# -- cloud --------------------------------------------------------------------------------


@cloud_app.command("serve")
def cloud_serve(
    host: Annotated[str | None, typer.Option(help="Bind address [env CROWDFIX_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env CROWDFIX_API_PORT].")] = None,
    log_level: LogLevel = None,
) -> None:
    """Serve the REST API and its OpenAPI docs (migrates the database first)."""
    import uvicorn

    from cloud.main import create_app

    logs.configure(log_level)
    settings = cloud_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
    )


@cloud_app.command("ingest")
def cloud_ingest(log_level: LogLevel = None) -> None:
    """Run an ingest worker: device messages in, tickets out, until Ctrl-C or SIGTERM.

    Prometheus metrics on CROWDFIX_METRICS_PORT (9108; 0 turns them off)."""
    from cloud.db import make_engine, make_sessionmaker, migrate
    from cloud.worker import IngestWorker, settle_heap

    logs.configure(log_level)
    settings = cloud_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    worker = IngestWorker(settings, make_sessionmaker(engine))
    settle_heap()
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.api_host)
    stop = stop_on_signals()
    worker.start()
    try:
        wait(stop)
    finally:
        worker.stop()


@cloud_app.command("migrate")
def cloud_migrate(log_level: LogLevel = None) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from cloud.db import make_engine, migrate

    logs.configure(log_level)
    migrate(make_engine(cloud_settings().database_url))


@cloud_app.command("create-user")
def cloud_create_user(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, operator or technician.")] = "operator",
    technician_id: Annotated[
        str | None, typer.Option(help="The technician a technician account acts for.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Also issue an API token with this name (printed once).")
    ] = None,
) -> None:
    """Create an account (the first admin, say) with a random password, printed once."""
    from cloud.auth import service as auth
    from cloud.auth.passwords import new_password
    from cloud.auth.roles import Role
    from cloud.clock import utc_now
    from cloud.db import make_engine, make_sessionmaker, migrate, transaction
    from cloud.errors import CloudError

    if role not in {r.value for r in Role}:
        raise fail(f"--role {role!r}: choose admin, operator or technician")
    engine = make_engine(cloud_settings().database_url)
    migrate(engine)
    password = new_password(20)
    try:
        with transaction(make_sessionmaker(engine)) as db:
            now = utc_now()
            user = auth.create_user(
                db_session=db,
                username=username,
                role=Role(role),
                password=password,
                now=now,
                technician_id=technician_id,
            )
            issued = (
                auth.issue_token(db_session=db, user=user, name=token, now=now) if token else None
            )
    except CloudError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"created {role} {username} with password: {password}")
    if issued:
        typer.echo(f"API token {token!r} (shown once): {issued[0]}")


# -- by hand ------------------------------------------------------------------------------


@app.command("send-button")
def send_button(
    device: Annotated[str, typer.Option(help="Device id, e.g. pos-terminal-01.")],
    button: Annotated[str, typer.Option(help="Button name from the device's profile.")],
    category: Annotated[str, typer.Option(help="Problem category, e.g. printer.")],
    broker: Annotated[str, typer.Option(help="mqtt://host:port of the broker.")] = (
        "mqtt://127.0.0.1:11883"
    ),
    username: Annotated[
        str | None, typer.Option(help="MQTT username (a device's is its id; default: none).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the MQTT password (mqtt-password).")
    ] = None,
    gesture: Annotated[str, typer.Option(help="single, double or long.")] = "single",
    action: Annotated[str, typer.Option(help="request, cancel or urgent.")] = "request",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 10.0,
) -> None:
    """Publish one button event by hand (what `mosquitto_pub` would do), QoS 1."""
    import time
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from contracts import ButtonEvent
    from edge_agent.transport.mqtt import publish_once
    from mqttlink import BrokerSettings

    try:
        event = ButtonEvent(
            device_id=device,
            timestamp=datetime.now(UTC),
            seq=int(time.time() * 1000),
            button=button,
            category=category,
            gesture=gesture,
            action=action,
        )
        password = password_file.read_text().strip() if password_file else None
        settings = BrokerSettings.from_url(broker, username=username, password=password)
    except (ValidationError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    if not publish_once(settings, event, timeout):
        raise fail(f"could not deliver to {settings.describe()} within {timeout:g}s", code=1)
    typer.echo(f"sent button event {event.message_id} for {device}")


def main() -> None:
    """Entry point of the `crowdfix` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
