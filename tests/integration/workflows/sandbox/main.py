"""Tasks that try, as an attacker would, to reach past their sandbox; each reports what worked."""

import glob
import os
import socket
import time

from conveyor import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


def _attempt(action) -> str:  # type: ignore[no-untyped-def]
    try:
        result = action()
    except Exception as exc:
        return f"refused: {type(exc).__name__}"
    return f"allowed: {str(result)[:80]}"


def _connect(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(path)
        sock.sendall(b"GET /input HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(200).decode(errors="replace")


def _read_or_empty(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read() or b"(empty)"
    except OSError:
        return own_marker()


def own_marker() -> bytes:
    return os.environ["RENDER_SDK_SOCKET_PATH"].encode()


def _write(path: str) -> str:
    with open(path, "w") as handle:
        handle.write("x")
    return path


@app.task
def probe(targets: dict[str, str]) -> dict[str, str]:
    """Each probe's outcome: `refused: …` or `allowed: …`."""
    server = int(targets["server_pid"])
    data = targets["data_dir"]
    others = [
        path
        for path in glob.glob("/proc/[0-9]*/environ")
        if path.split("/")[2] not in (str(os.getpid()), "self")
    ]
    own = os.environ["RENDER_SDK_SOCKET_PATH"].encode()
    # the attempt's own processes (a spawned instance's init) share its socket
    readable = [p for p in others if own not in _read_or_empty(p)]
    return {
        "server_environ": _attempt(lambda: open(f"/proc/{server}/environ", "rb").read()),
        "signal_server": _attempt(lambda: os.kill(server, 0)),
        "data_dir": _attempt(lambda: os.listdir(data)),
        "database": _attempt(lambda: open(os.path.join(data, "conveyor.db"), "rb").read(16)),
        "secrets_key": _attempt(lambda: open(os.path.join(data, "secrets.key"), "rb").read()),
        "other_environs": f"allowed: {readable}" if readable else "refused: none readable",
        "victim_socket": _attempt(lambda: _connect(targets["victim_socket"])),
        "write_cwd": _attempt(lambda: _write(os.path.join(os.getcwd(), "planted"))),
        "write_usr": _attempt(lambda: _write("/usr/planted")),
        "write_root": _attempt(lambda: _write("/planted")),
        "write_tmp": _attempt(lambda: _write("/tmp/scratch-file")),
        "own_socket": _attempt(lambda: os.stat(os.environ["RENDER_SDK_SOCKET_PATH"]).st_mode),
        "processes": _attempt(lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit())),
        "uid": str(os.getuid()),
    }


@app.task
def hold(seconds: float) -> str:
    """A victim: waits so that another task can try its socket."""
    time.sleep(seconds)
    return "held"


@app.task(plan="starter")
def burn_starter(seconds: float) -> float:
    return _burn(seconds)


@app.task(plan="pro")
def burn_pro(seconds: float) -> float:
    return _burn(seconds)


def _burn(seconds: float) -> float:
    """Busy for `seconds` of wall time; the share of a core it got."""
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.monotonic() - wall)


@app.task(plan="starter")
def allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block) // (1024 * 1024)


@app.task(plan="starter")
def fork_bomb(limit: int) -> int:
    """Forks sleeping children until the kernel says no (or `limit`); how many it got."""
    children = []
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
    except OSError:
        pass
    return len(children)
