"""The slice of Nomad's HTTP API the executor uses, behind one Protocol; httpx underneath.

Like Nomad's own Go client (`api/api.go`), every request names the namespace and region
(`?namespace=`, `?region=`) and sends the ACL token as `X-Nomad-Token`: with ACLs on, a request
without `namespace=` is checked against `default` and refused (403) in any other namespace.
TLS is verified unless told otherwise; the CA and client certificate come from the settings or,
as for the `nomad` CLI, from NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Protocol

import httpx

from core.settings import NomadSettings

_SLACK_S = 10.0  # Nomad adds up to wait/16 of jitter to a blocking query


class NomadError(Exception):
    """Nomad refused a request or could not be reached (`status` None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """No answer, or a server-side error: the same request may succeed later."""
        return self.status is None or self.status >= 500


class NomadNotFound(NomadError):
    """The job, allocation or evaluation does not exist (any more)."""


class NomadApi(Protocol):
    async def agent_self(self) -> dict[str, Any]: ...

    async def register_job(self, spec: dict[str, Any]) -> None: ...

    async def dispatch(
        self, job_id: str, body: dict[str, Any], idempotency_token: str
    ) -> dict[str, Any]: ...

    async def job_allocations(
        self, job_id: str, *, index: int, wait_s: float
    ) -> tuple[list[dict[str, Any]], int]:
        """The job's allocation stubs once the index passes `index` (or `wait_s` passes)."""
        ...

    async def job_evaluations(self, job_id: str) -> list[dict[str, Any]]: ...

    async def evaluation(self, eval_id: str) -> dict[str, Any]: ...

    async def deregister(self, job_id: str) -> None: ...

    async def task_log(self, alloc_id: str, task: str, stream: str) -> bytes: ...

    async def close(self) -> None: ...


def tls_verify(settings: NomadSettings) -> ssl.SSLContext | bool:
    """What httpx verifies the agent's certificate with: the CA file, the system's, or nothing."""
    if settings.tls_skip_verify:
        return False
    ca_cert = settings.ca_cert or os.environ.get("NOMAD_CACERT") or None
    context = ssl.create_default_context(cafile=ca_cert)
    client_cert = settings.client_cert or os.environ.get("NOMAD_CLIENT_CERT") or None
    client_key = settings.client_key or os.environ.get("NOMAD_CLIENT_KEY") or None
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    elif client_key:
        raise ValueError("a Nomad client key without its certificate (NOMAD_CLIENT_CERT)")
    return context


_CALL_CONNECTIONS = 8  # for everything but blocking queries, which never hold these up


class NomadHttpApi:
    """Two connection pools: one for blocking queries (each holds a connection for up to its
    `wait`; more of them than `max_connections` queue for one), one for every other request, so
    a dispatch or a stop never waits behind the watches."""

    def __init__(self, settings: NomadSettings) -> None:
        token = settings.token or os.environ.get("NOMAD_TOKEN") or None
        region = settings.region or os.environ.get("NOMAD_REGION") or None
        self._params: dict[str, str] = {"namespace": settings.namespace}
        if region:
            self._params["region"] = region
        self._timeout = settings.request_timeout_seconds
        verify = tls_verify(settings)

        def client(connections: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=settings.address.rstrip("/"),
                headers={"X-Nomad-Token": token} if token else {},
                verify=verify,
                timeout=self._timeout,
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            )

        self._calls = client(_CALL_CONNECTIONS)
        self._watches = client(settings.max_connections)

    async def _request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | float | None = None,
        watch: bool = False,
    ) -> httpx.Response:
        client = self._watches if watch else self._calls
        try:
            response = await client.request(
                method,
                path,
                params={**self._params, **(params or {})},
                json=json,
                timeout=timeout or self._timeout,
            )
        except httpx.HTTPError as exc:
            raise NomadError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise NomadNotFound(f"{what}: not found", 404)
        if response.status_code >= 400:
            raise NomadError(
                f"{what}: HTTP {response.status_code}: {response.text.strip()[:300]}",
                response.status_code,
            )
        return response

    async def agent_self(self) -> dict[str, Any]:
        response = await self._request("agent self", "GET", "/v1/agent/self")
        result: dict[str, Any] = response.json()
        return result

    async def register_job(self, spec: dict[str, Any]) -> None:
        job_id = spec["Job"]["ID"]
        await self._request(f"register job {job_id}", "PUT", "/v1/jobs", json=spec)

    async def dispatch(
        self, job_id: str, body: dict[str, Any], idempotency_token: str
    ) -> dict[str, Any]:
        # in the query string: Nomad ignores an idempotency token in the body
        response = await self._request(
            f"dispatch {job_id}",
            "POST",
            f"/v1/job/{job_id}/dispatch",
            params={"idempotency_token": idempotency_token},
            json=body,
        )
        result: dict[str, Any] = response.json()
        return result

    async def job_allocations(
        self, job_id: str, *, index: int, wait_s: float
    ) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {}
        if index > 0:
            params = {"index": index, "wait": f"{int(wait_s * 1000)}ms"}
        response = await self._request(
            f"allocations of {job_id}",
            "GET",
            f"/v1/job/{job_id}/allocations",
            params=params,
            # a watch beyond max_connections waits for a connection as long as it takes
            timeout=httpx.Timeout(wait_s + _SLACK_S, pool=None),
            watch=index > 0,
        )
        # an empty list may come as `null`
        return response.json() or [], int(response.headers.get("X-Nomad-Index", "0"))

    async def job_evaluations(self, job_id: str) -> list[dict[str, Any]]:
        response = await self._request(
            f"evaluations of {job_id}", "GET", f"/v1/job/{job_id}/evaluations"
        )
        result: list[dict[str, Any]] = response.json() or []
        return result

    async def evaluation(self, eval_id: str) -> dict[str, Any]:
        response = await self._request(f"evaluation {eval_id}", "GET", f"/v1/evaluation/{eval_id}")
        result: dict[str, Any] = response.json()
        return result

    async def deregister(self, job_id: str) -> None:
        # purge=false keeps the stopped job (and its allocations' logs) until Nomad's GC
        await self._request(
            f"stop job {job_id}", "DELETE", f"/v1/job/{job_id}", params={"purge": "false"}
        )

    async def task_log(self, alloc_id: str, task: str, stream: str) -> bytes:
        response = await self._request(
            f"{stream} of {alloc_id}/{task}",
            "GET",
            f"/v1/client/fs/logs/{alloc_id}",
            params={"task": task, "type": stream, "plain": "true", "origin": "start"},
            timeout=60,
        )
        return response.content

    async def close(self) -> None:
        await self._calls.aclose()
        await self._watches.aclose()
