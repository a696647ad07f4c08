"""A run's sandbox, entered in its own process before any of the run's code.

Standard library only, and loaded by path (as `conveyor._zygote` is): it runs in any version's
interpreter, whose environment need not have `conveyor` installed. Linux only.

Two levels, both made of namespaces:

- the **view** (`enter_view`), entered once by a zygote before it imports a version's code, or
  by the launcher of a spawned instance: a mount namespace whose root holds the system's programs
  and libraries, a few files of `/etc`, the version's code and dependencies — all read-only — a
  minimal `/dev`, a private `/tmp`, and nothing else of the host: no data folder, no other
  workflow's checkout, no home folder. Started as root, it then becomes an unprivileged uid
  (`uid`/`gid`); started as anyone else, it is entered through a user namespace. Either way
  `no_new_privs` is set and no capability is left.
- the **instance** (`enter_instance`), entered per attempt by a zygote's child: its own user,
  mount, PID, IPC and UTS namespaces (so no other process is visible or signallable), a fresh
  `/tmp`, `/dev/shm` and `/proc`, and its own socket folder only. The zygote's child is born in
  those namespaces (`fork_into_instance`), the first process of its PID namespace; where this
  machine's `clone` is not known, the child forks once more to be that process, and the process
  the platform knows waits for it and ends as it ends.

A spec is JSON (`View.from_json`): never a secret, since it may be seen in a process's argv.
"""

from __future__ import annotations

from .instance import Instance, enter_instance, fork_into_instance, wait_and_end_as
from .kernel import SandboxError, join_cgroups
from .launch import launch, main
from .view import Bind, View, enter_view, plan_binds

# how a process loads this package by its path (its interpreter may not have `conveyor`), then
# runs the launcher: ``PYTHON -I -c LAUNCH /path/to/_sandbox ARGS``
LOAD = (
    "import importlib.util, os, sys\n"
    "folder = sys.argv[1]\n"
    "spec = importlib.util.spec_from_file_location(\n"
    "    'conveyor_sandbox', os.path.join(folder, '__init__.py'),\n"
    "    submodule_search_locations=[folder])\n"
    "sandbox = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = sandbox\n"
    "spec.loader.exec_module(sandbox)\n"
)
LAUNCH = LOAD + "sandbox.main(sys.argv[2:])\n"

__all__ = [
    "LAUNCH",
    "LOAD",
    "Bind",
    "Instance",
    "SandboxError",
    "View",
    "enter_instance",
    "enter_view",
    "fork_into_instance",
    "join_cgroups",
    "launch",
    "main",
    "plan_binds",
    "wait_and_end_as",
]
