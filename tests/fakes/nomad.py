"""A FAKE Nomad agent for tests: the slice of Nomad's HTTP API the Nomad executor uses.

No Nomad binary can run here, so this stands in for one agent (server + client) on loopback. It
speaks the real JSON API and is strict about it:
- capitalised field names as Nomad writes them (stricter than Nomad, whose decoder would also take
  `id` for `ID`), durations as integer nanoseconds, `Job` wrapped in `{"Job": …}` on register;
- blocking queries: `?index=N&wait=<Go duration>` hold until the state index passes N, and every
  read answers `X-Nomad-Index`;
- dispatch of parameterized jobs only, `Payload` base64 and at most 16 KiB decoded (400, with
  Nomad's message), required/allowed meta keys checked, `?idempotency_token=` in the query string
  (a token in the body is ignored, as Nomad ignores it);
- 404 with Nomad's plain-text messages for unknown jobs, allocations and evaluations;
- `GET /v1/client/fs/logs/{alloc}` with `plain=true` only (no framed streaming, no follow).
It RUNS what it places: each allocation's tasks are local processes (tests/fakes/nomad_tasks.py;
the docker image names a host folder, `FakeImage`), prestart sidecars first, the main task after
them; when the main task ends the sidecars are killed, as Nomad does. `DELETE /v1/job/{id}` stops
the tasks (SIGTERM, the task's KillTimeout, SIGKILL). `no_capacity = True` leaves new evaluations
blocked (`FailedTGAllocs`, a `BlockedEval`), placing nothing until it is set back to False.
Restart and reschedule policies are checked to be present; a failed task is never restarted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import signal
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

from tests.fakes.nomad_tasks import (
    Alloc,
    FakeImage,
    TaskRun,
    finish,
    kill,
    now_ns,
    signal_group,
    spawn,
    task_env,
)
from tests.fakes.nomad_wire import (
    PAYLOAD_LIMIT,
    NomadHTTPError,
    go_bool,
    nomad_json,
    parse_wait,
    validate_job,
)

__all__ = ["FakeImage", "FakeNomad", "serve_fake_nomad"]


class FakeNomad:
    """The fake's state and its HTTP app; serve it with `serve_fake_nomad`."""

    def __init__(self, root: Path, images: dict[str, FakeImage]) -> None:
        self.root = root
        self.images = images
        self.url = ""
        self.requests: list[tuple[str, str]] = []  # (method, path?query) in arrival order
        self.loop: asyncio.AbstractEventLoop | None = None
        self._index = 1
        self._changed: asyncio.Condition | None = None
        self._jobs: dict[str, dict[str, Any]] = {}
        self._evals: dict[str, dict[str, Any]] = {}
        self._allocs: dict[str, Alloc] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._no_capacity = False

    # -- switches and inspection (thread-safe: they run on the fake's loop) ----------------------

    @property
    def no_capacity(self) -> bool:
        return self._no_capacity

    @no_capacity.setter
    def no_capacity(self, value: bool) -> None:
        self._call(self._set_capacity(value))

    def dispatched_jobs(self, parent: str | None = None) -> list[str]:
        return [
            job_id
            for job_id, job in self._jobs.items()
            if job.get("ParentID") and (parent is None or job["ParentID"] == parent)
        ]

    def registered_jobs(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self._jobs.items() if not v.get("ParentID")}

    def job_versions(self, job_id: str) -> int:
        return int(self._jobs[job_id]["Version"])

    def pids(self, dispatched_job_id: str) -> list[int]:
        return [
            run.process.pid
            for alloc in self._allocs.values()
            if alloc.job_id == dispatched_job_id
            for run in alloc.tasks.values()
            if run.process is not None
        ]

    def _call(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    # -- the state index ------------------------------------------------------------------------

    async def _bump(self) -> int:
        assert self._changed is not None
        async with self._changed:
            self._index += 1
            self._changed.notify_all()
        return self._index

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
        existing = self._jobs.get(job["ID"])
        if existing is not None and existing["Spec"] == job:
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
        rest = request.path_params["rest"]
        method = request.method
        if method == "POST" and rest.endswith("/dispatch"):
            return await self._dispatch(request, rest.removesuffix("/dispatch"))
        if method == "GET" and rest.endswith("/allocations"):
            return await self._job_allocations(request, rest.removesuffix("/allocations"))
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
        parent = self._job(job_id)
        spec = parent["Spec"]
        parameterized = spec.get("ParameterizedJob")
        if not parameterized:
            raise NomadHTTPError(400, "Specified job is not a parameterized job")
        body = await self._body(request)
        if not isinstance(body, dict):
            raise NomadHTTPError(400, "dispatch body must be an object")
        payload = self._payload(body.get("Payload"), parameterized.get("Payload", "optional"))
        meta = self._meta(body.get("Meta") or {}, parameterized)
        token = request.query_params.get("idempotency_token", "")
        if token and (job_id, token) in self._tokens:
            child_id = self._tokens[(job_id, token)]
            child = self._jobs.get(child_id)
            # as Nomad: the token's job is reused unless it was stopped (deregistered)
            if child is not None and not child["Stop"]:
                return nomad_json(self._dispatch_answer(child), self._index)
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
        self._evals[eval_id] = self._new_eval(eval_id, child_id, "job-register", index)
        await self._schedule(eval_id)
        return nomad_json(self._dispatch_answer(child), self._index)

    @staticmethod
    def _payload(raw: Any, mode: str) -> bytes:
        if raw in (None, ""):
            if mode == "required":
                raise NomadHTTPError(400, "Payload is not provided but required by job")
            return b""
        if mode == "forbidden":
            raise NomadHTTPError(400, "Payload provided but forbidden by job")
        if not isinstance(raw, str):
            raise NomadHTTPError(400, "Payload must be a base64 string")
        try:
            payload = base64.b64decode(raw, validate=True)
        except binascii.Error as exc:
            raise NomadHTTPError(400, f"Payload is not base64: {exc}") from None
        if len(payload) > PAYLOAD_LIMIT:
            raise NomadHTTPError(
                400, f"Payload exceeds maximum size; {len(payload)} > {PAYLOAD_LIMIT}"
            )
        return payload

    @staticmethod
    def _meta(meta: Any, parameterized: dict[str, Any]) -> dict[str, str]:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise NomadHTTPError(400, "Meta must map strings to strings")
        required = set(parameterized.get("MetaRequired") or [])
        allowed = required | set(parameterized.get("MetaOptional") or [])
        missing = sorted(required - set(meta))
        if missing:
            raise NomadHTTPError(400, f"Dispatch did not provide required meta keys: {missing}")
        extra = sorted(set(meta) - allowed)
        if extra:
            raise NomadHTTPError(400, f"Dispatch provided unpermitted meta keys: {extra}")
        return dict(meta)

    @staticmethod
    def _dispatch_answer(child: dict[str, Any]) -> dict[str, Any]:
        return {
            "Index": child["CreateIndex"],
            "JobCreateIndex": child["CreateIndex"],
            "EvalCreateIndex": child["CreateIndex"],
            "EvalID": child["EvalID"],
            "DispatchedJobID": child["Spec"]["ID"],
        }

    def _new_eval(self, eval_id: str, job_id: str, trigger: str, index: int) -> dict[str, Any]:
        return {
            "ID": eval_id,
            "Namespace": "default",
            "Priority": 50,
            "Type": "batch",
            "TriggeredBy": trigger,
            "JobID": job_id,
            "Status": "pending",
            "StatusDescription": "",
            "BlockedEval": "",
            "PreviousEval": "",
            "FailedTGAllocs": None,
            "QueuedAllocations": None,
            "CreateIndex": index,
            "ModifyIndex": index,
            "CreateTime": now_ns(),
            "ModifyTime": now_ns(),
        }

    # -- scheduling -----------------------------------------------------------------------------

    async def _schedule(self, eval_id: str) -> None:
        evaluation = self._evals[eval_id]
        job = self._jobs[evaluation["JobID"]]
        group = job["Spec"]["TaskGroups"][0]
        if self._no_capacity:
            index = await self._bump()
            blocked_id = str(uuid.uuid4())
            blocked = self._new_eval(
                blocked_id, job["Spec"]["ID"], evaluation["TriggeredBy"], index
            )
            blocked.update(
                Status="blocked",
                PreviousEval=eval_id,
                StatusDescription="created to place remaining allocations",
            )
            self._evals[blocked_id] = blocked
            memory = sum(t["Resources"]["MemoryMB"] for t in group["Tasks"])
            evaluation.update(
                Status="complete",
                BlockedEval=blocked_id,
                ModifyIndex=index,
                FailedTGAllocs={
                    group["Name"]: {
                        "NodesEvaluated": 1,
                        "NodesFiltered": 0,
                        "NodesAvailable": {"dc1": 1},
                        "ClassFiltered": None,
                        "ConstraintFiltered": None,
                        "NodesExhausted": 1,
                        "ClassExhausted": None,
                        "DimensionExhausted": {"memory": 1},
                        "QuotaExhausted": None,
                        "Scores": None,
                        "AllocationTime": 10_000,
                        "CoalescedFailures": 0,
                        "ResourcesExhausted": {
                            t["Name"]: {"MemoryMB": memory} for t in group["Tasks"]
                        },
                    }
                },
                QueuedAllocations={group["Name"]: 1},
            )
            return
        await self._place(eval_id, job, group)

    async def _set_capacity(self, available_off: bool) -> None:
        self._no_capacity = available_off
        if available_off:
            return
        for evaluation in list(self._evals.values()):
            job = self._jobs.get(evaluation["JobID"])
            if evaluation["Status"] == "blocked" and job is not None and not job["Stop"]:
                await self._place(evaluation["ID"], job, job["Spec"]["TaskGroups"][0])

    async def _place(self, eval_id: str, job: dict[str, Any], group: dict[str, Any]) -> None:
        index = await self._bump()
        alloc_id = str(uuid.uuid4())
        directory = self.root / alloc_id[:8]
        tasks = {t["Name"]: TaskRun(t) for t in group["Tasks"]}
        alloc = Alloc(alloc_id, job["Spec"]["ID"], eval_id, group, directory, index, index, tasks)
        self._allocs[alloc_id] = alloc
        self._evals[eval_id].update(Status="complete", ModifyIndex=index)
        job.update(Status="running", ModifyIndex=index)
        alloc.runner = asyncio.create_task(self._run(alloc, job))

    async def _run(self, alloc: Alloc, job: dict[str, Any]) -> None:
        alloc_dir = alloc.directory / "alloc"
        (alloc_dir / "logs").mkdir(parents=True)
        ids = {
            "NOMAD_ALLOC_ID": alloc.id,
            "NOMAD_JOB_ID": alloc.job_id,
            "NOMAD_JOB_PARENT_ID": job.get("ParentID", ""),
            "NOMAD_GROUP_NAME": alloc.group["Name"],
            "NOMAD_ALLOC_INDEX": "0",
            **{f"NOMAD_META_{k}": v for k, v in (job["Spec"].get("Meta") or {}).items()},
        }
        order = sorted(alloc.tasks.values(), key=lambda run: not run.sidecar)
        mains: list[TaskRun] = []
        for run in order:
            if not await self._start(alloc, job, run, alloc_dir, ids):
                break
            if not run.sidecar:
                mains.append(run)
        for run in mains:
            assert run.process is not None
            finish(run, await run.process.wait())
        await self._stop_all(alloc)

    async def _start(
        self,
        alloc: Alloc,
        job: dict[str, Any],
        run: TaskRun,
        alloc_dir: Path,
        ids: dict[str, str],
    ) -> bool:
        task_dir = alloc.directory / run.name / "local"
        task_dir.mkdir(parents=True)
        (alloc.directory / run.name / "secrets").mkdir()
        dispatch = run.spec.get("DispatchPayload")
        if dispatch:
            (task_dir / dispatch["File"]).write_bytes(job.get("Payload", b""))
        image_name = run.spec["Config"]["image"]
        image = self.images.get(image_name)
        run.add_event("Task Setup", "Building Task Directory")
        if image is None:
            run.add_event(
                "Driver Failure", f"Failed to pull `{image_name}`: not found", FailsTask=True
            )
            run.state.update(State="dead", Failed=True)
            await self._bump()
            return False
        env = task_env(run.spec, image, alloc_dir, task_dir, ids)
        run.process = await spawn(run, image, env, alloc_dir / "logs")
        run.add_event("Started", "Task started by client")
        run.state.update(State="running", StartedAt=_rfc3339())
        alloc.client_status = "running"
        alloc.modify_index = await self._bump()
        return True

    async def _stop_all(self, alloc: Alloc) -> None:
        """Kill what still runs (sidecars after the main task, everything on a stop)."""
        for run in sorted(alloc.tasks.values(), key=lambda run: run.sidecar):
            if run.process is not None and run.process.returncode is None:
                await kill(run, run.spec.get("KillTimeout", 5_000_000_000) / 1e9)
            if run.process is not None and run.state["State"] != "dead":
                finish(run, run.process.returncode or 0)
            run.state["State"] = "dead"
        failed = any(run.state["Failed"] for run in alloc.tasks.values())
        alloc.client_status = "failed" if failed else "complete"
        job = self._jobs.get(alloc.job_id)
        if job is not None:
            job["Status"] = "dead"
        alloc.modify_index = await self._bump()

    async def _job_allocations(self, request: Request, job_id: str) -> Response:
        self._job(job_id)
        await self._block(request)
        stubs = [a.stub() for a in self._allocs.values() if a.job_id == job_id]
        return nomad_json(stubs, self._index)

    async def _deregister(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        purge = go_bool(request.query_params.get("purge", "false"), "purge")
        index = await self._bump()
        job.update(Stop=True, ModifyIndex=index)
        eval_id = str(uuid.uuid4())
        self._evals[eval_id] = self._new_eval(eval_id, job_id, "job-deregister", index)
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

    async def _shutdown(self) -> None:
        for alloc in self._allocs.values():
            if alloc.runner is not None:
                alloc.runner.cancel()
            for run in alloc.tasks.values():
                if run.process is not None and run.process.returncode is None:
                    signal_group(run.process, signal.SIGKILL)
                    await run.process.wait()

    async def _get_alloc(self, request: Request) -> Response:
        alloc = self._allocs.get(request.path_params["alloc_id"])
        if alloc is None:
            raise NomadHTTPError(404, "alloc not found")
        return nomad_json({**alloc.stub(), "Job": self._jobs[alloc.job_id]["Spec"]}, self._index)

    async def _get_eval(self, request: Request) -> Response:
        await self._block(request)
        evaluation = self._evals.get(request.path_params["eval_id"])
        if evaluation is None:
            raise NomadHTTPError(404, "eval not found")
        return nomad_json(evaluation, self._index)

    async def _logs(self, request: Request) -> Response:
        alloc = self._allocs.get(request.path_params["alloc_id"])
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
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode()
            self.fake.requests.append(
                (scope["method"], scope["path"] + (f"?{query}" if query else ""))
            )
        await self.app(scope, receive, send)


def _rfc3339() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


@contextmanager
def serve_fake_nomad(root: Path, images: dict[str, FakeImage]) -> Iterator[FakeNomad]:
    """The fake on a free loopback port in its own thread; its processes are killed on exit."""
    fake = FakeNomad(root, images)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            fake.app(),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
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
