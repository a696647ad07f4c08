"""The fake Nomad's cluster: its state, and the allocations it places and runs as processes.

Part of the fake in tests/fakes/nomad.py (see its docstring for what it follows); the HTTP API is
there, this is what the API acts on. Every method runs on the fake's event loop; the public
switches hop onto it from the test's thread.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

from tests.fakes.nomad_evals import failed_placement, new_eval
from tests.fakes.nomad_tasks import (
    Alloc,
    FakeImage,
    TaskRun,
    finish,
    kill,
    signal_group,
    spawn,
    task_env,
)


class FakeCluster:
    """One node at a time (a lost node is replaced), one namespace, jobs kept by id."""

    def __init__(self, root: Path, images: dict[str, FakeImage], namespace: str) -> None:
        self.root = root
        self.images = images
        self.namespace = namespace
        self.loop: asyncio.AbstractEventLoop | None = None
        self._index = 1
        self._changed: asyncio.Condition | None = None
        self._jobs: dict[str, dict[str, Any]] = {}
        self._evals: dict[str, dict[str, Any]] = {}
        self._allocs: dict[str, Alloc] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._no_capacity = False
        self._nodes = 1

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

    def gc(self) -> None:
        """`nomad system gc`: collect dead jobs with their evaluations and allocations."""
        self._call(self._gc())

    def lose_node(self) -> None:
        """The node stops heartbeating: its allocations are lost, a fresh node takes its place."""
        self._call(self._lose_node())

    def oom_kill(self, job_id: str) -> None:
        """The kernel's OOM killer ends the job's main tasks (SIGKILL, `oom_killed`)."""
        self._call(self._oom_kill(job_id))

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

    # -- scheduling -----------------------------------------------------------------------------

    async def _schedule(self, eval_id: str) -> None:
        evaluation = self._evals[eval_id]
        job = self._jobs[evaluation["JobID"]]
        group = job["Spec"]["TaskGroups"][0]
        if self._no_capacity:
            index = await self._bump()
            blocked_id = str(uuid.uuid4())
            blocked = new_eval(
                blocked_id, job["Spec"]["ID"], evaluation["TriggeredBy"], index, self.namespace
            )
            blocked.update(
                Status="blocked",
                PreviousEval=eval_id,
                StatusDescription="created to place remaining allocations",
            )
            self._evals[blocked_id] = blocked
            evaluation.update(
                Status="complete",
                BlockedEval=blocked_id,
                ModifyIndex=index,
                FailedTGAllocs=failed_placement(group),
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
        alloc.node = f"fake-node-{self._nodes}"
        alloc.namespace = self.namespace
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
        if image is None or (_pulled_every_time(image_name) and not image.pullable):
            run.add_event(
                "Driver Failure",
                f"Failed to pull `{image_name}`: Error response from daemon: pull access denied "
                "for it, repository does not exist or may require 'docker login'",
                FailsTask=True,
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

    async def _shutdown(self) -> None:
        for alloc in self._allocs.values():
            if alloc.runner is not None:
                alloc.runner.cancel()
            for run in alloc.tasks.values():
                if run.process is not None and run.process.returncode is None:
                    signal_group(run.process, signal.SIGKILL)
                    await run.process.wait()

    async def _gc(self) -> None:
        terminal = ("complete", "failed", "lost")
        for job_id, job in list(self._jobs.items()):
            allocs = [a for a in self._allocs.values() if a.job_id == job_id]
            if job["Status"] != "dead" or any(a.client_status not in terminal for a in allocs):
                continue
            del self._jobs[job_id]
            self._evals = {k: e for k, e in self._evals.items() if e["JobID"] != job_id}
            self._allocs = {k: a for k, a in self._allocs.items() if a.job_id != job_id}
            self._tokens = {k: v for k, v in self._tokens.items() if v != job_id}
        await self._bump()

    async def _oom_kill(self, job_id: str) -> None:
        for alloc in self._allocs.values():
            for run in alloc.tasks.values():
                alive = run.process is not None and run.process.returncode is None
                if alloc.job_id == job_id and not run.sidecar and alive:
                    assert run.process is not None
                    run.oom_killed = True
                    signal_group(run.process, signal.SIGKILL)

    async def _lose_node(self) -> None:
        node = f"fake-node-{self._nodes}"
        self._nodes += 1
        index = await self._bump()
        for alloc in self._allocs.values():
            if alloc.node != node or alloc.client_status not in ("pending", "running"):
                continue
            if alloc.runner is not None:
                alloc.runner.cancel()
            for run in alloc.tasks.values():
                if run.process is not None and run.process.returncode is None:
                    signal_group(run.process, signal.SIGKILL)
                    await run.process.wait()
            alloc.client_status = "lost"
            alloc.desired = "stop"
            alloc.desired_description = "alloc is lost since its node is down"
            alloc.modify_index = index
            job = self._jobs.get(alloc.job_id)
            if job is not None and job.get("ParentID"):
                job.update(Status="dead", ModifyIndex=index)  # reschedule attempts: 0
        await self._bump()


def _pulled_every_time(image: str) -> bool:
    """The docker driver's pull policy: a `:latest` or untagged image is pulled on every start."""
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


def _rfc3339() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
