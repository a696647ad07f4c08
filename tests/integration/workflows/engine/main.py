"""Tasks that exercise the engine: trees, retries, timeouts, cancellation, crashes."""

import asyncio
import math
import os
import subprocess
import time
from pathlib import Path

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
SCRATCH = Path(os.environ.get("ENGINE_SCRATCH", "/tmp"))


def _token(pid: int | str = "self") -> str:
    """`pid@starttime@pid:[namespace]` of a process of this PID namespace: the host finds it by
    all three (tests/integration/host_processes.py); the pid alone means nothing outside a
    sandbox, and two sandboxes' first processes may start in the same clock tick."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    inner = os.getpid() if pid == "self" else pid
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    return f"{inner}@{stat[stat.rindex(')') + 2 :].split()[19]}@{namespace}"


def _report(name: str, text: str) -> None:
    """Writes `text` to the scratch file `name` whole (a reader never sees it half written)."""
    partial = SCRATCH / f".{name}.partial"
    partial.write_text(text)
    partial.rename(SCRATCH / name)


@app.task
def leaf(n: int) -> int:
    return n + 1


@app.task
async def middle(ctx: TaskContext, n: int) -> int:
    return await ctx.run(leaf, n) * 10


@app.task
async def fan(ctx: TaskContext, n: int) -> list[int]:
    return list(await asyncio.gather(*(ctx.run(middle, n + i) for i in range(3))))


@app.task(retry=Retry(max_retries=3, wait_duration_ms=300, backoff_scaling=2.0))
def flaky(ctx: TaskContext, name: str, failures: int) -> str:
    marker = SCRATCH / f"flaky-{name}"
    seen = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(seen + 1))
    if seen < failures:
        raise RuntimeError(f"failure {seen + 1} of {failures}")
    return f"ok after {seen} failures"


@app.task(timeout_seconds=2)
def sleeps_with_child(name: str) -> str:
    helper = subprocess.Popen(["sleep", "300"])
    _report(f"pids-{name}", f"{_token()} {_token(helper.pid)}")
    time.sleep(300)
    return "never"


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def _hold(name: str) -> str:
    _report(f"pid-{name}", _token())
    if not _wait_for(SCRATCH / f"release-{name}", 60):
        return "timed out waiting"
    return f"released {name}"


@app.task
def hold(name: str) -> str:
    return _hold(name)


@app.task
async def branch(ctx: TaskContext, name: str) -> str:
    return await ctx.run(hold, name)


@app.task
async def two_branches(ctx: TaskContext, a: str, b: str) -> list[str]:
    results = await asyncio.gather(ctx.run(branch, a), ctx.run(branch, b), return_exceptions=True)
    return [r if isinstance(r, str) else f"error: {r}" for r in results]


@app.task(retry=Retry(max_retries=1, wait_duration_ms=0))
def dies_once(name: str) -> str:
    marker = SCRATCH / f"died-{name}"
    if marker.exists():
        return "second attempt"
    marker.write_text("x")
    _report(f"pid-{name}", _token())
    time.sleep(60)
    return "never"


@app.task
def unserialisable() -> object:
    return {1, 2, 3}


@app.task
def not_a_number() -> float:
    return math.nan


@app.task
def exits_quietly() -> None:
    os._exit(0)


@app.task
def expose_socket(name: str) -> str:
    """Leaves its instance socket's path for a test to speak the protocol on, then waits."""
    (SCRATCH / f"socket-{name}").write_text(os.environ["RENDER_SDK_SOCKET_PATH"])
    if not _wait_for(SCRATCH / f"release-{name}", 60):
        return "timed out waiting"
    return f"released {name}"


@app.task(concurrency=1)
def one_at_a_time(n: int) -> int:
    time.sleep(0.3)
    return n


@app.task
def environment() -> dict[str, str]:
    """Everything the task's process sees in its environment."""
    return dict(os.environ)


@app.task
def process_facts(name: str) -> dict[str, object]:
    """How the task's process was started, as the process itself sees it; it waits, once it
    has said which process it is (`process-NAME`), for `release-NAME`, so that the host can
    look at it while it runs."""
    import sys

    main = sys.modules["__main__"]
    _report(f"process-{name}", _token())
    if not _wait_for(SCRATCH / f"release-{name}", 60):
        raise TimeoutError(f"release-{name} did not come")
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "main_file": getattr(main, "__file__", None),
        "path0": sys.path[0],
        "stdin": os.readlink("/proc/self/fd/0"),
        "stdout": os.readlink("/proc/self/fd/1"),
    }


@app.task(plan="starter")
def allocate(megabytes: int) -> int:
    """Holds `megabytes` MB at once: past the plan's memory it fails."""
    block = bytearray(megabytes * 1024 * 1024)
    return len(block) // (1024 * 1024)


@app.task(retry=Retry(max_retries=0, wait_duration_ms=0))
def fails_quietly() -> None:
    """Raises an exception with no message."""
    raise MemoryError()


@app.task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(retry=Retry(max_retries=0, wait_duration_ms=0))
async def chain(ctx: TaskContext, n: int) -> int:
    """A chain n levels deep below it."""
    return 0 if n == 0 else await ctx.run(chain, n - 1) + 1


@app.task(retry=Retry(max_retries=0, wait_duration_ms=0))
async def spread(ctx: TaskContext, n: int) -> int:
    """n children at once."""
    return sum(await asyncio.gather(*(ctx.run(leaf, i) for i in range(n))))


@app.task(concurrency=1)
def hold_alone(name: str) -> str:
    """`hold`, one at a time (the queue shows the others waiting for their task's limit)."""
    return _hold(name)


@app.task(retry=Retry(max_retries=1, wait_duration_ms=60_000))
def retries_later(name: str) -> str:
    """Fails at once and waits a minute before its retry (the queue shows it backing off)."""
    raise RuntimeError(f"{name} fails its first attempt")


@app.task
def talks(lines: int, seconds: float) -> int:
    """Prints `lines` lines, `seconds` apart (the log clock stamps when each arrived)."""
    for n in range(lines):
        if n:
            time.sleep(seconds)
        print(f"line {n}", flush=True)
    return lines


@app.task
async def nest(ctx: TaskContext, name: str, depth: int) -> str:
    """A chain `depth` levels deep whose last run holds until released."""
    if depth == 0:
        return _hold(name)
    return await ctx.run(nest, name, depth - 1)
