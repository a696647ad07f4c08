"""Tasks for the chaos test: each body notes when it starts, so bodies run twice can be counted."""

import asyncio
import os
import time
from pathlib import Path

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=3, wait_duration_ms=100, backoff_scaling=1.0))
SCRATCH = Path(os.environ["ENGINE_SCRATCH"])


def _process() -> str:
    """This process as the host can find it: `pid@starttime@pid:[namespace]` (its pid alone
    is its own PID namespace's; see tests/integration/host_processes.py)."""
    stat = Path("/proc/self/stat").read_text()
    ticks = stat[stat.rindex(")") + 2 :].split()[19]
    return f"{os.getpid()}@{ticks}@{os.readlink('/proc/self/ns/pid')}"


def _started(name: str) -> None:
    """One line per body that starts: its run, its attempt and its process."""
    process = _process()
    line = f"{os.environ['CONVEYOR_TASK_RUN_ID']} {os.environ['CONVEYOR_ATTEMPT']} {process}\n"
    with (SCRATCH / "bodies.log").open("a") as log:
        log.write(line)
    (SCRATCH / "pids").mkdir(exist_ok=True)
    (SCRATCH / "pids" / process).write_text(name)


@app.task
def leaf(n: int, seconds: float) -> int:
    _started("leaf")
    time.sleep(seconds)
    return n * 2


@app.task
async def fan(ctx: TaskContext, n: int) -> int:
    _started("fan")
    results = await asyncio.gather(*(ctx.run(leaf, i, 0.05) for i in range(n)))
    return sum(results)


@app.task(retry=Retry(max_retries=3, wait_duration_ms=100, backoff_scaling=1.0))
def flaky(n: int) -> int:
    _started("flaky")
    if os.environ["CONVEYOR_ATTEMPT"] == "0":
        raise RuntimeError("the first attempt always fails")
    return n
