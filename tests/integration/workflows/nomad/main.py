"""Tasks for the Nomad executor's checks; none relies on files shared between attempts."""

import os
import subprocess
import time
from pathlib import Path

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
SCRATCH = Path(os.environ.get("ENGINE_SCRATCH", "/tmp"))


@app.task
def leaf(n: int) -> int:
    return n + 1


@app.task
async def middle(ctx: TaskContext, n: int) -> int:
    return await ctx.run(leaf, n) * 10


@app.task(retry=Retry(max_retries=3, wait_duration_ms=200, backoff_scaling=1.0))
def flaky(failures: int) -> str:
    # each attempt is a fresh allocation: the attempt number comes from the dispatch meta
    attempt = int(os.environ["CONVEYOR_ATTEMPT"])
    if attempt < failures:
        raise RuntimeError(f"failure {attempt + 1} of {failures}")
    return f"ok after {attempt} failures"


@app.task(timeout_seconds=4)
def sleeps_with_child(name: str) -> str:
    helper = subprocess.Popen(["sleep", "300"])
    print(f"pids {os.getpid()} {helper.pid}", flush=True)
    time.sleep(300)
    return "never"


@app.task
def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@app.task
def hold(name: str) -> str:
    (SCRATCH / f"pid-{name}").write_text(str(os.getpid()))
    release = SCRATCH / f"release-{name}"
    deadline = time.monotonic() + 60
    while not release.exists():
        if time.monotonic() > deadline:
            return "timed out waiting"
        time.sleep(0.05)
    return f"released {name}"


@app.task
async def branch(ctx: TaskContext, name: str) -> str:
    return await ctx.run(hold, name)


@app.task
def environment() -> dict[str, str]:
    """Everything the task's process sees in its environment."""
    return dict(os.environ)
