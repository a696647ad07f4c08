"""A workflow whose import starts a thread: a fork would not carry it, so attempts are spawned."""

import os
import threading
import time
from pathlib import Path

from conveyor import Workflows

app = Workflows()
_stop = threading.Event()
threading.Thread(target=_stop.wait, daemon=True, name="started-at-import").start()
SCRATCH = Path(os.environ["ENGINE_SCRATCH"])


@app.task
def which_process(name: str) -> int:
    """Says which process it is (`pid@starttime@pid:[namespace]`, see
    tests/integration/host_processes.py), waits for the host to look at it (`release-NAME`),
    and returns its parent's pid as it sees it."""
    stat = Path("/proc/self/stat").read_text()
    ticks = stat[stat.rindex(")") + 2 :].split()[19]
    partial = SCRATCH / f".process-{name}.partial"
    partial.write_text(f"{os.getpid()}@{ticks}@{os.readlink('/proc/self/ns/pid')}")
    partial.rename(SCRATCH / f"process-{name}")
    deadline = time.monotonic() + 60
    while not (SCRATCH / f"release-{name}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"release-{name} did not come")
        time.sleep(0.05)
    return os.getppid()
