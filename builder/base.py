"""The builder seam: turn a checked-out source folder into an environment its tasks run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from builder.log import BuildLog
    from scheduler.executors.base import Executor


class BuildFailed(Exception):
    """The build cannot produce an environment; the message says why (it ends in the log)."""


@dataclass(frozen=True)
class BuildRequest:
    build_id: str
    workflow_slug: str
    source: Path  # the checkout's root (where the dependency files are)
    build_command: str  # run in the built environment; "" for none
    env_vars: dict[str, str] = field(default_factory=dict)  # the workflow's, for the build too
    commit_sha: str | None = None
    workspace_id: str = ""  # whose build: venvs are shared within a workspace only
    runtime: str = "python"  # the workflow's; a package.json without Python files is Node's
    # the workflow has no start command of its own: a Node project's `start` script is used
    start_command_is_default: bool = False


@dataclass(frozen=True)
class BuiltEnvironment:
    """Where and how the version's instances run."""

    env: dict[str, str]  # merged into every attempt's environment (PATH first, VIRTUAL_ENV, …)
    image: str | None = None  # a container image, for image builders
    executor: Executor | None = None  # runs the register step when not a local process
    cached: bool = False  # the dependency layer was reused
    start_command: str | None = None  # the version's, when the build decides it (a Node project)


class Builder(Protocol):
    name: str

    async def build(self, request: BuildRequest, log: BuildLog) -> BuiltEnvironment:
        """Build, writing progress and tool output to `log`; raises BuildFailed."""
        ...
