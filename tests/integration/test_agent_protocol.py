"""The instance protocol spoken on a live attempt's socket, as a worker would, checked strictly."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db.models import Attempt
from core.domain import RunStatus
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, open_engine

pytestmark = pytest.mark.anyio


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


async def _socket_of(scratch: Path, name: str) -> str:
    path = scratch / f"socket-{name}"
    async with asyncio.timeout(30):
        while not path.exists() or not path.read_text():
            await asyncio.sleep(0.05)
    return path.read_text()


async def test_subtasks_on_a_live_socket(database_url: str, tmp_path: Path, scratch: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        parent = await runtime.service.create_run(WS, "wf/expose_socket", ["p"])
        socket_path = await _socket_of(scratch, "p")
        transport = httpx.AsyncHTTPTransport(uds=socket_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as worker:
            key = str(uuid.uuid4())
            body = {"task_name": "leaf", "input": _b64([41]), "idempotency_key": key}
            first = await worker.post("/run-subtask", json=body)
            again = await worker.post("/run-subtask", json=body)
            other = await worker.post("/run-subtask", json={**body, "idempotency_key": "k2"})
            assert first.status_code == 200
            child = first.json()["task_run_id"]
            assert again.json()["task_run_id"] == child, "a resent request creates no second child"
            assert other.json()["task_run_id"] != child

            # held until the child ends, then the result in the same answer
            result = await worker.post("/get-subtask-result", json={"task_run_id": child})
            assert result.status_code == 200
            answer = result.json()
            assert answer["still_running"] is False
            assert json.loads(base64.b64decode(answer["complete"]["output"])) == [42]

            unknown_task = await worker.post("/run-subtask", json={**body, "task_name": "nope"})
            assert unknown_task.status_code == 404
            assert "nope" in unknown_task.json()["message"]
            stranger = await worker.post("/get-subtask-result", json={"task_run_id": parent.id})
            assert stranger.status_code == 404
            malformed = await worker.post("/run-subtask", content=b"{not json")
            assert malformed.status_code == 400
            bad_input = await worker.post("/run-subtask", json={**body, "input": "%%%"})
            assert bad_input.status_code == 400
            scalar = await worker.post(
                "/run-subtask", json={**body, "input": _b64(3), "idempotency_key": "k3"}
            )
            assert scalar.status_code == 400

            # a cancelled parent's new children are refused (409): test_engine_failures checks
            # it where no race with the stopping instance (and its socket) can hide it
            await runtime.service.cancel_run(WS, parent.id)
        done = await runtime.service.wait_run(WS, parent.id, 30)
        assert done.status is RunStatus.CANCELED
        # the instance's socket and its folder go once it has ended
        folder = Path(socket_path).parent
        async with asyncio.timeout(30):
            while folder.exists():
                await asyncio.sleep(0.05)
        assert folder.parent.is_dir(), "the user's folder of sockets stays"


async def test_any_control_plane_process_answers_a_relayed_attempt(
    tmp_path: Path, scratch: Path
) -> None:
    """A relay reaching a process that did not start the attempt is answered from the database."""
    from scheduler.agent import Agent
    from scheduler.uds_http import Request

    async with open_engine(tmp_path) as runtime:
        run = await runtime.service.create_run(WS, "wf/expose_socket", ["r"])
        await _socket_of(scratch, "r")
        attempt_id = await _attempt_id(runtime, run.id)
        # as in a separate API process
        elsewhere = Agent(runtime.settings, runtime.transitions, runtime.service)
        answer = await elsewhere.handle(attempt_id, Request("GET", "/input", {}, b""))
        assert answer is not None and answer.status == 200
        body = json.loads(answer.body)
        assert body["task_name"] == "expose_socket" and body["task_run_id"] == run.id
        assert await elsewhere.handle("att-unknown", Request("GET", "/input", {}, b"")) is None
        (scratch / "release-r").write_text("go")
        done = await runtime.service.wait_run(WS, run.id, 30)
        assert done.status is RunStatus.SUCCEEDED
        late = await elsewhere.handle(attempt_id, Request("GET", "/input", {}, b""))
        assert late is not None and late.status == 409, "a finished run hands out no input"


async def _attempt_id(runtime: Runtime, run_id: str) -> str:
    async with runtime.store.sessions() as session:
        found = await session.scalar(select(Attempt.id).where(Attempt.run_id == run_id))
    assert found is not None
    return found


@pytest.mark.parametrize("says_hold", [False, True])
async def test_held_requests_per_instance(tmp_path: Path, scratch: Path, says_hold: bool) -> None:
    """Render's SDK spends a thread on each request, so only a few are held and the rest answered
    at once; a client that says `hold` (Conveyor's SDK, on its event loop) has every one held."""
    async with open_engine(tmp_path) as runtime:
        held = runtime.settings.limits.held_requests_per_instance
        parent = await runtime.service.create_run(WS, "wf/expose_socket", ["holder"])
        transport = httpx.AsyncHTTPTransport(uds=await _socket_of(scratch, "holder"))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://worker", timeout=30
        ) as worker:
            names = [f"child{i}" for i in range(held + 2)]
            children = []
            for name in names:
                body = {
                    "task_name": "expose_socket",
                    "input": _b64([name]),
                    "idempotency_key": name,
                }
                children.append(
                    (await worker.post("/run-subtask", json=body)).json()["task_run_id"]
                )
            extra = {"hold": True} if says_hold else {}
            asking = [
                asyncio.ensure_future(
                    worker.post("/get-subtask-result", json={"task_run_id": child, **extra})
                )
                for child in children
            ]
            if not says_hold:
                answered_at_once: set[asyncio.Future[httpx.Response]] = set()
                while len(answered_at_once) < len(names) - held:
                    done, _ = await asyncio.wait(
                        set(asking) - answered_at_once, return_when=asyncio.FIRST_COMPLETED
                    )
                    answered_at_once |= done
                assert len(answered_at_once) == len(names) - held
                assert all(f.result().json() == {"still_running": True} for f in answered_at_once)
            for name in names:
                (scratch / f"release-{name}").write_text("go")
            answers = [(await f).json() for f in asking]
        (scratch / "release-holder").write_text("go")
        await runtime.service.wait_run(WS, parent.id, 30)
    completed = [a for a in answers if a["still_running"] is False]
    assert len(completed) == (len(names) if says_hold else held)
    outputs = sorted(json.loads(base64.b64decode(a["complete"]["output"])) for a in completed)
    assert all(output[0].startswith("released child") for output in outputs)
