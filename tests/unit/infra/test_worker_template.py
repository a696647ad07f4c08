"""infra/nomad/worker-template.nomad.hcl is the job the Nomad executor submits, in HCL.

The executor's JSON (scheduler/executors/nomad_jobs.py) is the one source; the HCL is read into
the API's JSON form here, its variables at their defaults, and must be that job field for field.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from core.settings import NomadSettings, Settings
from scheduler.executors.nomad_jobs import (
    AGENT_TASK,
    GROUP,
    META_KEYS,
    PAYLOAD_FILE,
    SOCKET_NAME,
    WORKER_TASK,
    JobShape,
    job_spec,
)
from tests.unit.infra.hcl_files import NOMAD, Body, block, blocks, load, nomad_job, tasks

# what the required variables are set to on both sides
REQUIRED = {
    "job_id": "conveyor-wfv-1-standard",
    "version_id": "wfv-1",
    "image": "registry/workflows:wfv-1",
    "agent_image": "registry/conveyor:1.4.0",
}
_VARIABLE = re.compile(r"^\$\{var\.([a-z_]+)\}$")
_CONCAT = re.compile(r"^\$\{concat\((\[.*\]), var\.start_command\)\}$", re.DOTALL)
_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@cache
def executor_job() -> Body:
    """The job the executor registers for the template's defaults, in the API's JSON form."""
    settings = Settings()
    shape = JobShape(
        job_id=REQUIRED["job_id"],
        version_id=REQUIRED["version_id"],
        image=REQUIRED["image"],
        start_command="conveyor-worker main:app",
        plan=settings.plan("standard"),
        env=(),
        kill_grace_seconds=settings.executor.kill_grace_seconds,
    )
    job: Body = job_spec(shape, NomadSettings(agent_image=REQUIRED["agent_image"]))["Job"]
    return job


def variables() -> dict[str, Any]:
    found = dict(REQUIRED)
    for entry in load(NOMAD / "worker-template.nomad.hcl")["variable"]:
        for name, body in entry.items():
            if "default" in body:
                found[name] = body["default"]
    return found


def resolve(value: Any, values: dict[str, Any]) -> Any:
    """The value with `var.x` references replaced, as `nomad job run` would."""
    if isinstance(value, dict):
        return {key: resolve(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, values) for item in value]
    if isinstance(value, str):
        if match := _VARIABLE.match(value):
            return values[match.group(1)]
        if match := _CONCAT.match(value):
            return [*json.loads(match.group(1)), *values["start_command"]]
    return value


def nanoseconds(duration: str) -> int:
    match = _DURATION.match(duration)
    assert match, f"{duration!r} is not a duration this test reads"
    return int(match.group(1)) * _NS[match.group(2)]


def task_as_api(name: str, task: Body, values: dict[str, Any]) -> Body:
    task = resolve(task, values)
    found: Body = {
        "Name": name,
        "Driver": task["driver"],
        "User": task["user"],
        "Config": block(task, "config"),
        "Env": block(task, "env"),
        "Resources": {
            "CPU": block(task, "resources")["cpu"],
            "MemoryMB": block(task, "resources")["memory"],
        },
        "KillTimeout": nanoseconds(task["kill_timeout"]),
    }
    if "lifecycle" in task:
        lifecycle = block(task, "lifecycle")
        found["Lifecycle"] = {"Hook": lifecycle["hook"], "Sidecar": lifecycle["sidecar"]}
    if "dispatch_payload" in task:
        found["DispatchPayload"] = {"File": block(task, "dispatch_payload")["file"]}
    return found


def template_as_api() -> Body:
    """The HCL job as `nomad job run -output` would give it (the fields the executor sets)."""
    _, job = nomad_job("worker-template")
    values = variables()
    job = resolve(job, values)
    ((group_name, group),) = block(job, "group").items()
    restart, reschedule = block(group, "restart"), block(group, "reschedule")
    parameterized = block(job, "parameterized")
    return {
        "ID": job["id"],
        "Type": job["type"],
        "Namespace": job["namespace"],
        "Datacenters": job["datacenters"],
        "ParameterizedJob": {
            "Payload": parameterized["payload"],
            "MetaRequired": parameterized["meta_required"],
        },
        "Meta": block(job, "meta"),
        "TaskGroups": [
            {
                "Name": group_name,
                "Count": group["count"],
                "RestartPolicy": {
                    "Attempts": restart["attempts"],
                    "Mode": restart["mode"],
                    "Interval": nanoseconds(restart["interval"]),
                    "Delay": nanoseconds(restart["delay"]),
                },
                "ReschedulePolicy": {
                    "Attempts": reschedule["attempts"],
                    "Unlimited": reschedule["unlimited"],
                    "Interval": nanoseconds(reschedule["interval"]),
                    "Delay": nanoseconds(reschedule["delay"]),
                    "DelayFunction": reschedule["delay_function"],
                    "MaxDelay": nanoseconds(reschedule["max_delay"]),
                },
                "Tasks": [
                    task_as_api(name, body, values)
                    for entry in blocks(group, "task")
                    for name, body in entry.items()
                ],
            }
        ],
    }


def test_the_template_is_the_job_the_executor_submits() -> None:
    submitted = {k: v for k, v in executor_job().items() if k != "Name"}  # the HCL's is its label
    assert template_as_api() == submitted


def test_the_comparison_sees_a_drifted_field() -> None:
    template = template_as_api()
    worker = next(t for t in template["TaskGroups"][0]["Tasks"] if t["Name"] == WORKER_TASK)
    worker["Config"] = {**worker["Config"], "readonly_rootfs": False}
    assert template != {k: v for k, v in executor_job().items() if k != "Name"}


def test_worker_template_is_a_parameterized_batch_job() -> None:
    _, job = nomad_job("worker-template")
    assert job["type"] == "batch"
    parameterized = block(job, "parameterized")
    assert parameterized["payload"] == "required"
    assert tuple(parameterized["meta_required"]) == META_KEYS, "the executor's dispatch meta"
    assert META_KEYS == ("attempt_id", "run_id", "attempt", "mode")


def test_worker_template_never_restarts_or_reschedules() -> None:
    ((name, group),) = block(nomad_job("worker-template")[1], "group").items()
    assert name == GROUP == "attempt"
    assert block(group, "restart")["attempts"] == 0
    assert block(group, "restart")["mode"] == "fail"
    assert block(group, "reschedule")["attempts"] == 0
    assert block(group, "reschedule")["unlimited"] is False


def test_worker_template_runs_the_agent_as_a_prestart_sidecar() -> None:
    ((_, group),) = block(nomad_job("worker-template")[1], "group").items()
    found = tasks(group)
    assert set(found) == {AGENT_TASK, WORKER_TASK} == {"agent", "worker"}
    agent, worker = found[AGENT_TASK], found[WORKER_TASK]
    assert block(agent, "lifecycle") == {"hook": "prestart", "sidecar": True}
    assert block(agent, "dispatch_payload") == {"file": PAYLOAD_FILE} == {"file": "relay.json"}
    assert "dispatch_payload" not in worker, "the attempt's token reaches the agent only"
    assert "lifecycle" not in worker
    socket = block(worker, "env")["RENDER_SDK_SOCKET_PATH"]
    assert socket == f"${{NOMAD_ALLOC_DIR}}/{SOCKET_NAME}" == "${NOMAD_ALLOC_DIR}/conveyor.sock"


def test_worker_template_runs_both_tasks_unprivileged() -> None:
    ((_, group),) = block(nomad_job("worker-template")[1], "group").items()
    values = variables()
    assert values["task_user"] == "10001:10001"
    for name, task in tasks(group).items():
        config = resolve(block(task, "config"), values)
        assert resolve(task["user"], values) == "10001:10001", name
        assert "command" not in config, f"{name}: a command runs after the image's ENTRYPOINT"
        assert config["cap_drop"] == ["ALL"]
        assert config["security_opt"] == ["no-new-privileges"]
        assert config["pids_limit"] == 1024
        assert config["readonly_rootfs"] is True
        assert config["mount"] == [
            {
                "type": "tmpfs",
                "target": "/tmp",
                "readonly": False,
                "tmpfs_options": [{"size": 268435456}],
            }
        ]
