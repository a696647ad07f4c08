"""A workflow whose import starts a thread: a fork would not carry it, so attempts are spawned."""

import os
import threading

from conveyor import Workflows

app = Workflows()
_stop = threading.Event()
threading.Thread(target=_stop.wait, daemon=True, name="started-at-import").start()


@app.task
def parent_pid() -> int:
    return os.getppid()
