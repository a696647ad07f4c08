"""Tasks run inside containers by the Docker executor's tests (baked into the test image)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from conveyor import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
SCRATCH = Path("/tmp/scratch")


@app.task
def look_around(name: str) -> dict[str, object]:
    """Leave a file behind and report what this container sees."""
    SCRATCH.mkdir(exist_ok=True)
    seen = sorted(p.name for p in SCRATCH.iterdir())
    (SCRATCH / name).write_text(name)
    return {"hostname": socket.gethostname(), "seen_before": seen}


@app.task(plan="starter")
def hog(megabytes: int) -> int:
    """Touch every page of `megabytes` MB: past the plan's memory the kernel kills it."""
    blocks = [b"\x01" * (1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


@app.task(timeout_seconds=2)
def overstays() -> str:
    print("overstaying", flush=True)
    time.sleep(300)
    return "never"


@app.task
def hold() -> str:
    print(f"holding in {socket.gethostname()}", flush=True)
    time.sleep(300)
    return "never"


@app.task
def chatter(lines: int) -> int:
    for i in range(lines):
        print(f"out line {i}", flush=True)
        print(f"err line {i}", file=sys.stderr, flush=True)
    return lines


@app.task(retry=Retry(max_retries=1, wait_duration_ms=0))
def fails_first(marker: str) -> str:
    """Fails on attempt 0; a retry runs in a fresh container, where the marker is absent."""
    here = socket.gethostname()
    print(f"attempt {os.environ.get('CONVEYOR_ATTEMPT')} in {here}", flush=True)
    path = SCRATCH / marker
    if os.environ.get("CONVEYOR_ATTEMPT") == "0":
        SCRATCH.mkdir(exist_ok=True)
        path.write_text("first")
        raise RuntimeError("first attempt fails")
    return f"{here} marker={path.exists()}"


@app.task
def environment() -> dict[str, str]:
    """Everything the task's process sees in its environment."""
    return dict(os.environ)


def _status_field(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return ""


@app.task
def identity() -> dict[str, object]:
    """Who this container's process is and what the kernel lets it do."""
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "home": os.environ.get("HOME"),
        "tmpdir": os.environ.get("TMPDIR"),
        "effective_capabilities": _status_field("CapEff"),
        "bounding_capabilities": _status_field("CapBnd"),
        "no_new_privs": _status_field("NoNewPrivs"),
    }


@app.task
def try_writes(paths: list[str]) -> dict[str, str]:
    """For each path, "written" or the error that refused the write."""
    outcomes = {}
    for path in paths:
        try:
            Path(path).write_text("probe")
            outcomes[path] = "written"
        except OSError as exc:
            outcomes[path] = type(exc).__name__ + f" errno={exc.errno}"
    return outcomes


@app.task
def fork_until_refused(most: int) -> int:
    """Start sleeping children until the kernel refuses one (or `most` run); how many started."""
    children = []
    try:
        while len(children) < most:
            try:
                children.append(subprocess.Popen(["sleep", "60"]))
            except OSError:
                break
        return len(children)
    finally:
        for child in children:
            child.kill()
            child.wait()
