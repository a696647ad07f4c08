"""A spawned instance's launcher: a PID namespace of its own whose first process is an init."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

from .instance import wait_and_end_as
from .kernel import (
    CLONE_NEWPID,
    CLONE_NEWUSER,
    PR_SET_PDEATHSIG,
    SandboxError,
    join_cgroups,
    map_own_ids,
    prctl,
    unshare,
)
from .view import View, enter_view


def launch(view: View, cwd: str, argv: list[str]) -> NoReturn:
    """A spawned instance: enter the view with a PID namespace of its own, run `argv` in it.

    The first process of the namespace stays as its init (it passes signals on and reaps);
    the command runs as its child.
    """
    uid, gid = os.getuid(), os.getgid()
    as_root = os.geteuid() == 0
    unshare(CLONE_NEWPID if as_root else CLONE_NEWPID | CLONE_NEWUSER)
    if not as_root:
        map_own_ids(uid, gid)
    init = os.fork()
    if init:
        wait_and_end_as(init)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    enter_view(view, cwd, new_user_namespace=False, fresh_proc=True)
    _run_as_init(argv)


def _run_as_init(argv: list[str]) -> NoReturn:
    child = os.fork()
    if child == 0:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"cannot run {argv[0]}: {exc}\n")
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main(argv: list[str]) -> None:
    """The launcher's entry: ``VIEW_JSON CWD FDS -- COMMAND...``; FDS: ``-`` or ``3,4`` (open
    `cgroup.procs` files to join before anything else)."""
    view_json, cwd, fds, separator, *command = argv
    if separator != "--" or not command:
        sys.stderr.write("usage: VIEW_JSON CWD FDS -- COMMAND...\n")
        sys.exit(2)
    try:
        join_cgroups(() if fds == "-" else tuple(int(fd) for fd in fds.split(",")))
        launch(View.from_json(view_json), cwd, command)
    except (SandboxError, OSError) as exc:
        sys.stderr.write(f"sandbox: {exc}\n")
        sys.exit(126)
