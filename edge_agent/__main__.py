"""`python -m edge_agent`: the lean entry point for the Pi (what the systemd unit runs).

The same agent as `crowdfix agent run`, without loading the CLI framework: on a Raspberry Pi
every megabyte of resident memory counts. Options fall back to CROWDFIX_AGENT_* variables.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from edge_agent.errors import EdgeAgentError


def parse(argv: list[str]) -> argparse.Namespace:
    """Options of the agent (the same names as `crowdfix agent run`)."""
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, help="device profile (YAML)")
    parser.add_argument("--device-id", help="this device's id")
    parser.add_argument("--broker", help="mqtt://host:port or mqtts://host:port")
    parser.add_argument("--state-dir", type=Path, help="where the outbox lives")
    parser.add_argument("--pins", choices=["auto", "mock", "native"], help="GPIO pin factory")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--log-format", choices=["text", "json"], help="log line format")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the agent until SIGTERM or Ctrl-C; exit 2 with a clear message on bad settings."""
    from crowdfix import logs
    from edge_agent.app import EdgeAgent
    from edge_agent.profile import load_profile
    from edge_agent.settings import AgentSettings

    args = parse(sys.argv[1:] if argv is None else argv)
    logs.configure(args.log_level, args.log_format)
    try:
        settings = AgentSettings.from_env(
            {
                "profile": args.config,
                "device_id": args.device_id,
                "broker_url": args.broker,
                "state_dir": args.state_dir,
                "pins": args.pins,
            }
        )
        agent = EdgeAgent(settings, load_profile(settings.profile))
    except EdgeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
