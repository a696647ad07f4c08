"""The slice of Nomad's HTTP API the executor uses, behind one Protocol; python-nomad underneath.

python-nomad is synchronous, so its calls run on a pool of their own: a blocking query holds a
thread for up to its `wait`, and must not starve the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import nomad
import nomad.api.exceptions as nomad_errors

from core.settings import NomadSettings

T = TypeVar("T")
_SLACK_S = 10.0  # Nomad adds up to wait/16 of jitter to a blocking query


class NomadError(Exception):
    """Nomad refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NomadNotFound(NomadError):
    """The job, allocation or evaluation does not exist (any more)."""


class NomadApi(Protocol):
    async def register_job(self, spec: dict[str, Any]) -> None: ...

    async def dispatch(
        self, job_id: str, body: dict[str, Any], idempotency_token: str
    ) -> dict[str, Any]: ...

    async def job_allocations(
        self, job_id: str, *, index: int, wait_s: float
    ) -> tuple[list[dict[str, Any]], int]:
        """The job's allocation stubs once the index passes `index` (or `wait_s` passes)."""
        ...

    async def evaluation(self, eval_id: str) -> dict[str, Any]: ...

    async def deregister(self, job_id: str) -> None: ...

    async def task_log(self, alloc_id: str, task: str, stream: str) -> bytes: ...


class PythonNomadApi:
    def __init__(self, settings: NomadSettings) -> None:
        self._client = nomad.Nomad(
            address=settings.address.rstrip("/"),
            token=settings.token,
            namespace=settings.namespace,
            region=settings.region,
            timeout=10,
        )
        self._pool = ThreadPoolExecutor(settings.request_threads, thread_name_prefix="nomad")

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except nomad_errors.URLNotFoundNomadException as exc:
            raise NomadNotFound(f"{what}: not found", 404) from exc
        except nomad_errors.BaseNomadException as exc:
            raise NomadError(f"{what}: {_describe(exc)}", _status(exc)) from exc

    async def register_job(self, spec: dict[str, Any]) -> None:
        job_id = spec["Job"]["ID"]
        await self._call(f"register job {job_id}", lambda: self._client.jobs.register_job(spec))

    async def dispatch(
        self, job_id: str, body: dict[str, Any], idempotency_token: str
    ) -> dict[str, Any]:
        # python-nomad's dispatch_job puts the token in the body, where Nomad ignores it
        request = functools.partial(
            self._client.job.request,
            job_id,
            "dispatch",
            method="post",
            params={"idempotency_token": idempotency_token},
            json=body,
        )
        response: Any = await self._call(f"dispatch {job_id}", request)
        result: dict[str, Any] = response.json()
        return result

    async def job_allocations(
        self, job_id: str, *, index: int, wait_s: float
    ) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {}
        if index > 0:
            params = {"index": index, "wait": f"{int(wait_s * 1000)}ms"}
        request = functools.partial(
            self._client.job.request,
            job_id,
            "allocations",
            method="get",
            params=params,
            timeout=wait_s + _SLACK_S,
        )
        response: Any = await self._call(f"allocations of {job_id}", request)
        return response.json(), int(response.headers.get("X-Nomad-Index", "0"))

    async def evaluation(self, eval_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"evaluation {eval_id}", lambda: self._client.evaluation.get_evaluation(eval_id)
        )
        return result

    async def deregister(self, job_id: str) -> None:
        # purge=false keeps the stopped job (and its allocations' logs) until Nomad's GC
        request = functools.partial(
            self._client.job.request, job_id, method="delete", params={"purge": "false"}
        )
        await self._call(f"stop job {job_id}", request)

    async def task_log(self, alloc_id: str, task: str, stream: str) -> bytes:
        request = functools.partial(
            self._client.client.stream_logs.request,
            alloc_id,
            method="get",
            params={"task": task, "type": stream, "plain": "true", "origin": "start"},
            timeout=60,
        )
        response: Any = await self._call(f"{stream} of {alloc_id}/{task}", request)
        content: bytes = response.content
        return content


def _status(exc: Any) -> int | None:
    # `nomad_resp` is a requests Response, or the transport error when there was none
    status = getattr(exc.nomad_resp, "status_code", None)
    return status if isinstance(status, int) else None


def _describe(exc: Any) -> str:
    status = _status(exc)
    if status is not None:
        return f"HTTP {status}: {str(exc.nomad_resp.text).strip()[:300]}"
    return str(exc.nomad_resp)
