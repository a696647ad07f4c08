"""The blob store seam: keys are built from ids only (`runs/<run>/input.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class BlobNotFound(KeyError):
    """No blob under that key."""


class BlobStoreUnavailable(RuntimeError):
    """The store cannot be reached or refused an operation (also checked when the engine opens)."""


class BlobStore(Protocol):
    async def check(self) -> None:
        """Raise `BlobStoreUnavailable` unless the store is usable (called once at start-up)."""
        ...

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    def staging_path(self, key: str) -> Path:
        """A local file to write the blob into before `commit_staged` (logs are written live)."""
        ...

    async def commit_staged(self, key: str) -> None:
        """Make the staged file the blob's content (no-op where staging is the store)."""
        ...

    async def read_range(self, key: str, offset: int, limit: int) -> bytes:
        """Bytes `[offset, offset+limit)`, from the staged file while it is still being written."""
        ...

    def presigned_url(self, key: str) -> str | None:
        """A time-limited URL to GET the blob from directly; None if the store has none."""
        ...


def run_input_key(run_id: str) -> str:
    return f"runs/{run_id}/input.json"


def run_output_key(run_id: str) -> str:
    return f"runs/{run_id}/output.json"


def attempt_log_key(run_id: str, attempt: int) -> str:
    return f"logs/{run_id}/{attempt}.log"


def flow_step_input_key(run_id: str, seq: int, flow_attempt: int) -> str:
    """The attempt that first reached the step writes it: a later attempt never overwrites it."""
    return f"runs/{run_id}/steps/{seq}/input.{flow_attempt}.json"


def flow_step_result_key(run_id: str, seq: int, flow_attempt: int) -> str:
    """Per attempt: a result written by an attempt whose record is refused overwrites no other."""
    return f"runs/{run_id}/steps/{seq}/result.{flow_attempt}.json"
