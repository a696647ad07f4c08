"""A FAKE Nomad agent for tests: the slice of Nomad's HTTP API the Nomad executor uses.

No Nomad binary can run here, so this stands in for one agent (server + client) on loopback. It
speaks the real JSON API and is strict about it. Each behaviour and the Nomad source it follows
(hashicorp/nomad; `api/` is the Go client, `command/agent/` the HTTP handlers, `nomad/` the
server's RPC endpoints, `drivers/docker/` the docker driver):
- capitalised field names as Nomad writes them (stricter than Nomad, whose decoder would also take
  `id` for `ID`), durations as integer nanoseconds, `Job` wrapped in `{"Job": …}` on register
  (`api/jobs.go` Register); an unchanged job registered again is left as is, a stopped one
  starts a new version (`nomad/structs` Job.SpecChanged compares `Stop` too); docker task configs
  with the driver's known fields only, of their types (`drivers/docker/config.go`);
- blocking queries: `?index=N&wait=<Go duration>` hold until the state index passes N, and every
  read answers `X-Nomad-Index` (`command/agent/http.go` parseWait, setIndex);
- dispatch of parameterized jobs only, `Payload` base64 and at most 16 KiB decoded (400, with
  Nomad's message), required/allowed meta keys checked, `?idempotency_token=` in the query string
  (a token in the body is ignored, as Nomad ignores it); a replay with the same token answers the
  job it dispatched first, stopped or not until it is collected, with `EvalID: ""` and
  `EvalCreateIndex: 0`; the RPC's refusals (payload, meta, a stopped or missing parent) are 500s
  with its messages, as the HTTP layer passes them on (`nomad/job_endpoint.go` Dispatch,
  `command/agent/http.go` wrap);
- `GET /v1/job/{id}/allocations` and `/evaluations` answer `200 []` for a job that does not exist
  (or no longer does): the handlers list by job id without looking the job up
  (`command/agent/job_endpoint.go` jobAllocations, jobEvaluations); 404 with Nomad's plain-text
  messages for unknown evaluations, allocations and the job itself;
- `gc()` is `nomad system gc`: dead jobs go, with their evaluations and allocations
  (`nomad/core_sched.go` jobGC); a collected job's allocations then answer `200 []`, its
  evaluation 404;
- `lose_node()` is a client that stopped heartbeating: its allocations turn `ClientStatus: lost`,
  `DesiredStatus: stop`, and keep the task states the node last reported (`running`), since no
  client is left to update them (`nomad/node_endpoint.go` UpdateStatus, the reconciler's
  lost allocations); their processes are killed without a word; a fresh node takes new placements;
- docker exits as the driver reports them: exit code 128 + n for signal n, `Signal: 0`,
  `oom_killed` in the Terminated event's details (`drivers/docker/handle.go`,
  `nomad/structs` TaskEvent.SetOOMKilled), `oom_kill()` standing in for the kernel's OOM
  killer; `command` runs after the image's ENTRYPOINT, which
  `entrypoint` replaces (`drivers/docker/driver.go` createContainerConfig);
- a `:latest` or untagged image is pulled on every start (the driver's pull policy) and fails
  with a Driver Failure unless its FakeImage is `pullable` (in a registry); an unknown image fails
  the same way;
- ACLs (`acl_token`): every request needs `X-Nomad-Token`; with a non-default `namespace`, a
  namespaced request (jobs, evaluations, allocations) without `?namespace=` is checked against
  `default` and refused `403 Permission denied` (`command/agent/http.go` parseNamespace,
  `acl` AllowNsOp); `/v1/agent/self` needs agent:read (`agent_read`), and logs are checked
  against the allocation's own namespace (`client/fs_endpoint.go`);
- `GET /v1/agent/self` with `config.Version.Version` and the member's `build` tag
  (`command/agent/agent_endpoint.go` AgentSelfRequest);
- `GET /v1/client/fs/logs/{alloc}` with `plain=true` only (no framed streaming, no follow).
It RUNS what it places: each allocation's tasks are local processes (tests/fakes/nomad_tasks.py;
the docker image names a host folder, `FakeImage`), prestart sidecars first, the main task after
them; when the main task ends the sidecars are killed, as Nomad does. `DELETE /v1/job/{id}` stops
the tasks (SIGTERM, the task's KillTimeout, SIGKILL). `no_capacity = True` leaves new evaluations
blocked (`FailedTGAllocs`, a `BlockedEval`), placing nothing until it is set back to False.
`stall_dispatch(seconds)` holds the next dispatch's answer after acting on it (an answer lost on
the way). Restart and reschedule policies are checked to be present; a failed task is never
restarted. The task's `User` and the container's hardening are accepted but not enforced.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.nomad_cluster import FakeCluster
from tests.fakes.nomad_evals import (
    agent_self,
    dispatch_answer,
    dispatch_meta,
    dispatch_payload,
    new_eval,
)
from tests.fakes.nomad_tasks import (
    FakeImage,
    now_ns,
)
from tests.fakes.nomad_wire import NomadHTTPError, go_bool, nomad_json, parse_wait, validate_job

__all__ = ["FakeImage", "FakeNomad", "serve_fake_nomad"]


class FakeNomad(FakeCluster):
    """The fake's HTTP app over its cluster; serve it with `serve_fake_nomad`."""

    def __init__(
        self,
        root: Path,
        images: dict[str, FakeImage],
        *,
        namespace: str = "default",
        acl_token: str | None = None,
        agent_read: bool = True,
        version: str = "1.8.4",
    ) -> None:
        super().__init__(root, images, namespace)
        self.acl_token = acl_token
        self.agent_read = agent_read
        self.version = version
        self.url = ""
        self.requests: list[tuple[str, str]] = []  # (method, path?query) in arrival order
        self.answers: list[tuple[str, str, int]] = []  # (method, path?query, status)
        self.stalls: list[float] = []  # seconds to hold the next dispatches' answers

    def stall_dispatch(self, seconds: float) -> None:
        """The next dispatch is acted on, then its answer held `seconds` (lost to a client that
        gives up sooner)."""
        self.stalls.append(seconds)

    # -- the state index ------------------------------------------------------------------------

    async def _block(self, request: Request) -> None:
        raw = request.query_params.get("index")
        if raw is None:
            return
        try:
            index = int(raw)
        except ValueError:
            raise NomadHTTPError(400, f"Invalid index: {raw!r}") from None
        wait = parse_wait(request.query_params.get("wait"))
        assert self._changed is not None
        async with self._changed:
            try:
                async with asyncio.timeout(wait):
                    await self._changed.wait_for(lambda: self._index > index)
            except TimeoutError:
                pass

    # -- HTTP -----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/v1/agent/self", self._agent_self, methods=["GET"]),
            Route("/v1/jobs", self._register, methods=["PUT", "POST"]),
            Route("/v1/job/{rest:path}", self._job_route, methods=["GET", "POST", "DELETE"]),
            Route("/v1/allocation/{alloc_id}", self._get_alloc, methods=["GET"]),
            Route("/v1/evaluation/{eval_id}", self._get_eval, methods=["GET"]),
            Route("/v1/client/fs/logs/{alloc_id}", self._logs, methods=["GET"]),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(NomadHTTPError, self._error)
        app.add_middleware(_Recorder, fake=self)
        return app

    async def _error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NomadHTTPError)
        return PlainTextResponse(exc.message, status_code=exc.status)

    def _authorize(self, request: Request, *, namespaced: bool, namespace: str = "") -> None:
        """The token, then the request's namespace (`?namespace=`, else `default`)."""
        acl = self.acl_token is not None
        if acl and request.headers.get("X-Nomad-Token") != self.acl_token:
            raise NomadHTTPError(403, "Permission denied")
        if not namespaced:
            return
        asked = request.query_params.get("namespace") or namespace or "default"
        if asked != self.namespace:
            # the token's policy covers the fake's namespace only; without ACLs nothing is there
            raise (
                NomadHTTPError(403, "Permission denied")
                if acl
                else NomadHTTPError(404, f"namespace {asked} holds nothing here")
            )

    async def _agent_self(self, request: Request) -> Response:
        self._authorize(request, namespaced=False)
        if self.acl_token is not None and not self.agent_read:
            raise NomadHTTPError(403, "Permission denied")
        return nomad_json(agent_self(self.version), self._index)

    async def _body(self, request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise NomadHTTPError(400, f"Failed to decode request body: {exc}") from None

    async def _register(self, request: Request) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict) or set(body) - {"Job", "EnforceIndex", "JobModifyIndex"}:
            raise NomadHTTPError(400, 'Job must be given as {"Job": {...}}')
        job = body.get("Job")
        validate_job(job)
        assert isinstance(job, dict)
        self._authorize(request, namespaced=True, namespace=job.get("Namespace") or "")
        existing = self._jobs.get(job["ID"])
        # as Job.SpecChanged: registering a stopped job again starts a new version of it
        if existing is not None and existing["Spec"] == job and not existing["Stop"]:
            return nomad_json(self._register_answer(existing), self._index)
        index = await self._bump()
        version = 0 if existing is None else existing["Version"] + 1
        stored = {
            "Spec": job,
            "Version": version,
            "Status": "running",
            "Stop": False,
            "CreateIndex": existing["CreateIndex"] if existing else index,
            "ModifyIndex": index,
            "JobModifyIndex": index,
        }
        self._jobs[job["ID"]] = stored
        return nomad_json(self._register_answer(stored), index)

    @staticmethod
    def _register_answer(job: dict[str, Any]) -> dict[str, Any]:
        return {
            "EvalID": "",
            "EvalCreateIndex": 0,
            "JobModifyIndex": job["JobModifyIndex"],
            "Warnings": "",
            "Index": job["JobModifyIndex"],
            "KnownLeader": True,
        }

    async def _job_route(self, request: Request) -> Response:
        # Nomad routes /v1/job/<id>/<action> by suffix, so dispatched ids may hold a '/'
        self._authorize(request, namespaced=True)
        rest = request.path_params["rest"]
        method = request.method
        if method == "POST" and rest.endswith("/dispatch"):
            return await self._dispatch(request, rest.removesuffix("/dispatch"))
        if method == "GET" and rest.endswith("/allocations"):
            return await self._job_allocations(request, rest.removesuffix("/allocations"))
        if method == "GET" and rest.endswith("/evaluations"):
            job_id = rest.removesuffix("/evaluations")
            found = [e for e in self._evals.values() if e["JobID"] == job_id]
            return nomad_json(found, self._index)
        if method == "DELETE":
            return await self._deregister(request, rest)
        if method == "GET":
            return nomad_json(self._job_view(self._job(rest)), self._index)
        raise NomadHTTPError(405, "Invalid method")

    @staticmethod
    def _job_view(job: dict[str, Any]) -> dict[str, Any]:
        """The job as `GET /v1/job/{id}` shows it: its spec plus Nomad's bookkeeping."""
        keys = ("Stop", "Status", "Version", "CreateIndex", "ModifyIndex", "JobModifyIndex")
        view = {**job["Spec"], **{key: job[key] for key in keys}}
        if "Payload" in job:
            view["Payload"] = base64.b64encode(job["Payload"]).decode()
        return view

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NomadHTTPError(404, "job not found")
        return job

    async def _dispatch(self, request: Request, job_id: str) -> Response:
        parent = self._jobs.get(job_id)
        if parent is None:
            raise NomadHTTPError(500, "parameterized job not found")
        spec = parent["Spec"]
        parameterized = spec.get("ParameterizedJob")
        if not parameterized:
            raise NomadHTTPError(500, f'Specified job "{job_id}" is not a parameterized job')
        if parent["Stop"]:
            raise NomadHTTPError(500, f'Specified job "{job_id}" is stopped')
        body = await self._body(request)
        if not isinstance(body, dict):
            raise NomadHTTPError(400, "dispatch body must be an object")
        payload = dispatch_payload(body.get("Payload"), parameterized.get("Payload", "optional"))
        meta = dispatch_meta(body.get("Meta") or {}, parameterized)
        token = request.query_params.get("idempotency_token", "")
        if token and (job_id, token) in self._tokens:
            child_id = self._tokens[(job_id, token)]
            child = self._jobs.get(child_id)
            # as Nomad: the token's job, stopped or not, until it is garbage-collected
            if child is not None:
                return nomad_json(dispatch_answer(child, replay=True), self._index)
        child_id = f"{job_id}/dispatch-{int(now_ns() // 1e9)}-{uuid.uuid4().hex[:8]}"
        index = await self._bump()
        child_spec = {
            **spec,
            "ID": child_id,
            "Name": child_id,
            "ParentID": job_id,
            "Dispatched": True,
            "Meta": {**(spec.get("Meta") or {}), **meta},
            "ParameterizedJob": None,
        }
        eval_id = str(uuid.uuid4())
        child = {
            "Spec": child_spec,
            "ParentID": job_id,
            "Version": 0,
            "Status": "pending",
            "Stop": False,
            "Payload": payload,
            "Meta": meta,
            "EvalID": eval_id,
            "CreateIndex": index,
            "ModifyIndex": index,
            "JobModifyIndex": index,
        }
        self._jobs[child_id] = child
        if token:
            self._tokens[(job_id, token)] = child_id
        self._evals[eval_id] = new_eval(eval_id, child_id, "job-register", index, self.namespace)
        await self._schedule(eval_id)
        if self.stalls:
            await asyncio.sleep(self.stalls.pop(0))
        return nomad_json(dispatch_answer(child), self._index)

    async def _job_allocations(self, request: Request, job_id: str) -> Response:
        await self._block(request)
        stubs = [a.stub() for a in self._allocs.values() if a.job_id == job_id]
        return nomad_json(stubs, self._index)

    async def _deregister(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        purge = go_bool(request.query_params.get("purge", "false"), "purge")
        index = await self._bump()
        job.update(Stop=True, ModifyIndex=index)
        eval_id = str(uuid.uuid4())
        self._evals[eval_id] = new_eval(eval_id, job_id, "job-deregister", index, self.namespace)
        self._evals[eval_id]["Status"] = "complete"
        for evaluation in self._evals.values():
            if evaluation["JobID"] == job_id and evaluation["Status"] == "blocked":
                evaluation.update(Status="canceled", ModifyIndex=index)
        for alloc in self._allocs.values():
            if alloc.job_id == job_id and alloc.desired == "run":
                alloc.desired = "stop"
                if alloc.runner is not None and not alloc.runner.done():
                    alloc.runner.cancel()
                    alloc.runner = asyncio.create_task(self._stop_all(alloc))
        if not any(a.job_id == job_id for a in self._allocs.values()):
            job["Status"] = "dead"
        if purge:
            del self._jobs[job_id]
        await self._bump()
        return nomad_json(
            {"EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index},
            index,
        )

    async def _get_alloc(self, request: Request) -> Response:
        self._authorize(request, namespaced=True)
        alloc = self._allocs.get(request.path_params["alloc_id"])
        if alloc is None:
            raise NomadHTTPError(404, "alloc not found")
        return nomad_json({**alloc.stub(), "Job": self._jobs[alloc.job_id]["Spec"]}, self._index)

    async def _get_eval(self, request: Request) -> Response:
        self._authorize(request, namespaced=True)
        await self._block(request)
        evaluation = self._evals.get(request.path_params["eval_id"])
        if evaluation is None:
            raise NomadHTTPError(404, "eval not found")
        return nomad_json(evaluation, self._index)

    async def _logs(self, request: Request) -> Response:
        alloc = self._allocs.get(request.path_params["alloc_id"])
        self._authorize(request, namespaced=False)
        if alloc is None:
            raise NomadHTTPError(404, "unknown allocation")
        query = request.query_params
        task, kind = query.get("task"), query.get("type")
        if task not in alloc.tasks:
            raise NomadHTTPError(400, "must provide task name")
        if kind not in ("stdout", "stderr"):
            raise NomadHTTPError(400, "must provide log type (stdout, stderr)")
        if query.get("plain") != "true" or query.get("follow", "false") != "false":
            raise NomadHTTPError(400, "this fake serves plain=true logs without follow only")
        if query.get("origin", "start") != "start":
            raise NomadHTTPError(400, "this fake serves origin=start only")
        path = alloc.directory / "alloc" / "logs" / f"{task}.{kind}.0"
        data = path.read_bytes() if path.exists() else b""
        offset = int(query.get("offset", "0"))
        return Response(data[offset:], media_type="text/plain")


class _Recorder:
    """Keeps (method, path?query) of each request, for tests to check what went over the wire."""

    def __init__(self, app: Any, fake: FakeNomad) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        where = (scope["method"], scope["path"] + (f"?{query}" if query else ""))
        self.fake.requests.append(where)

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.fake.answers.append((*where, int(message["status"])))
            await send(message)

        await self.app(scope, receive, recording_send)


@contextmanager
def serve_fake_nomad(
    root: Path,
    images: dict[str, FakeImage],
    *,
    tls: dict[str, Any] | None = None,
    **options: Any,
) -> Iterator[FakeNomad]:
    """The fake on a free loopback port in its own thread; its processes are killed on exit.
    `options` are FakeNomad's (namespace, acl_token, agent_read, version); `tls` is uvicorn's
    `ssl_*` settings (certfile, keyfile, ca_certs, cert_reqs) to serve HTTPS."""
    fake = FakeNomad(root, images, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    scheme = "https" if tls else "http"
    fake.url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            fake.app(),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            **{f"ssl_{key}": value for key, value in (tls or {}).items()},
        )
    )
    ready = threading.Event()

    async def main() -> None:
        fake.loop = asyncio.get_running_loop()
        fake._changed = asyncio.Condition()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        ready.set()
        await serving
        await fake._shutdown()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="fake-nomad", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the fake Nomad did not start")
    try:
        yield fake
    finally:
        assert fake.loop is not None
        fake.loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(60)
