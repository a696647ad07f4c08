"""A zygote's child born in new namespaces (one `clone`) is as good a Python process as a fork:
the first of its PID namespace, its ids its own once mapped, the interpreter's fork hooks run."""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest

from conveyor._sandbox.instance import Instance, enter_instance, fork_into_instance
from conveyor._sandbox.kernel import (
    CLONE_NEWPID,
    CLONE_NEWUSER,
    SandboxError,
    can_fork_into,
    fork_into,
    map_own_ids,
)

CLONE_THREAD = 0x00010000

pytestmark = pytest.mark.skipif(not can_fork_into(), reason="clone's number is not known here")


def _in_child(namespaces: int, look: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """What `look` saw in a child made by `fork_into`, and the child's wait status."""
    read, write = os.pipe()
    pid = fork_into(namespaces)
    if pid == 0:
        code = 0
        try:
            os.write(write, json.dumps(look()).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        seen = pipe.read()
    _, status = os.waitpid(pid, 0)
    return (json.loads(seen) if seen else {}), status


def test_the_child_is_the_first_process_of_its_own_pid_namespace_with_its_ids_mapped() -> None:
    uid, gid = os.getuid(), os.getgid()

    def look() -> dict[str, Any]:
        unmapped = os.getuid()
        map_own_ids(uid, gid)
        return {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "unmapped": unmapped,
            "ids": [
                os.getuid(),
                os.getgid(),
            ],
        }

    seen, status = _in_child(CLONE_NEWUSER | CLONE_NEWPID, look)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert (seen["pid"], seen["ppid"]) == (1, 0)
    assert seen["unmapped"] == 65534, "born in a user namespace of its own, nothing mapped yet"
    assert seen["ids"] == [uid, gid]


def test_the_interpreter_s_fork_hooks_run_in_the_child() -> None:
    # `random` reseeds in a forked child through its fork hook: without the hook, every
    # attempt would draw the zygote's next numbers
    state = random.getstate()

    def look() -> dict[str, Any]:
        ran = []
        thread = threading.Thread(target=lambda: ran.append(True))
        thread.start()
        thread.join()
        return {"drawn": random.random(), "thread_ran": ran == [True]}

    seen, status = _in_child(CLONE_NEWUSER | CLONE_NEWPID, look)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert seen["thread_ran"], "threads start in the child"
    random.setstate(state)
    assert seen["drawn"] != random.random(), "the child's generator was reseeded"


def test_the_child_signals_itself_and_starts_processes_as_a_forked_one_does() -> None:
    # the C library's record of the thread's id is the zygote's in the child; a signal raised to
    # itself must still reach it, and a process it starts must still run
    def look() -> dict[str, Any]:
        done = subprocess.run(["sh", "-c", "echo ran"], capture_output=True, text=True, check=True)
        handled: list[int] = []
        signal.signal(signal.SIGUSR1, lambda signum, _frame: handled.append(signum))
        signal.raise_signal(signal.SIGUSR1)
        return {"ran": done.stdout.strip(), "handled": handled}

    seen, status = _in_child(CLONE_NEWUSER | CLONE_NEWPID, look)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert seen == {"ran": "ran", "handled": [signal.SIGUSR1]}


def test_a_refused_clone_makes_no_child_and_says_so() -> None:
    with pytest.raises(SandboxError, match=r"^clone: .*\(errno 22\)$"):
        fork_into(CLONE_NEWPID | CLONE_THREAD)  # a thread needs CLONE_SIGHAND: refused


def test_where_clone_s_number_is_unknown_the_zygote_forks_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert fork_into_instance(network=True) is None


def test_a_forked_child_enters_its_namespaces_itself_and_its_waiter_ends_as_it_ends() -> None:
    """The path where clone's number is unknown: the child unshares, forks once more, and the
    process the platform knows waits for the first process of the new PID namespace."""
    read, write = os.pipe()
    waiter = os.fork()
    if waiter == 0:
        code = 1
        try:
            os.close(read)
            enter_instance(Instance(socket_dir=None))
            os.write(write, json.dumps({"pid": os.getpid()}).encode())
            code = 7
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        seen = json.loads(pipe.read() or b"{}")
    _, status = os.waitpid(waiter, 0)
    assert seen == {"pid": 1}
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
