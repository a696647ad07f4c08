"""`conveyor agent`: the Nomad sidecar that serves the worker's socket and relays it onward."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import click
import httpx

from app.cli.errors import CliError
from scheduler.relay import Relay, RelayConfig

SOCKET_NAME = "conveyor.sock"  # under NOMAD_ALLOC_DIR; the worker's RENDER_SDK_SOCKET_PATH
PAYLOAD_NAME = "relay.json"  # under NOMAD_TASK_DIR; the job's dispatch_payload file
DEFAULT_MAX_BODY = 96 * 1024 * 1024  # the control plane enforces its own, smaller limits


def _from_env(name: str, what: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise CliError(f"{name} is not set: pass {what} (Nomad sets {name} in an allocation)")
    return Path(value)


def _read_config(payload: Path) -> RelayConfig:
    try:
        return RelayConfig.from_payload(payload.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read the dispatch payload {payload}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"{payload}: {exc}") from None


async def _serve(config: RelayConfig, socket: Path, max_body: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient() as client:
        server = await Relay(config, client).serve(socket, max_body=max_body)
        logging.getLogger("conveyor.relay").info(
            "attempt %s: serving %s, relaying to %s",
            config.attempt_id,
            socket,
            config.control_plane_url,
        )
        try:
            await stop.wait()
        finally:
            server.close()
            await asyncio.to_thread(socket.unlink, missing_ok=True)


@click.command("agent")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The socket to serve (default: $NOMAD_ALLOC_DIR/{SOCKET_NAME}).",
)
@click.option(
    "--payload",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The dispatch payload (default: $NOMAD_TASK_DIR/{PAYLOAD_NAME}).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_BODY,
    show_default=True,
    help="Largest request body accepted from the worker.",
)
def agent_command(socket_path: Path | None, payload: Path | None, max_body_bytes: int) -> None:
    """Serve a Nomad allocation's instance socket and relay it to the control plane."""
    socket = socket_path or _from_env("NOMAD_ALLOC_DIR", "--socket") / SOCKET_NAME
    config = _read_config(payload or _from_env("NOMAD_TASK_DIR", "--payload") / PAYLOAD_NAME)
    if len(str(socket).encode()) > 107:
        raise CliError(f"socket path {socket} is longer than the 107 bytes a unix socket allows")
    if not socket.parent.is_dir():
        raise CliError(f"{socket.parent} is not a folder")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve(config, socket, max_body_bytes))
