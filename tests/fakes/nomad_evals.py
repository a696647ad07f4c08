"""The fake Nomad's dispatch inputs and evaluations, in Nomad's JSON.

Part of the fake in tests/fakes/nomad.py (see its docstring for what it follows).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tests.fakes.nomad_tasks import now_ns
from tests.fakes.nomad_wire import PAYLOAD_LIMIT, NomadHTTPError


def _go(keys: list[str]) -> str:
    """A list of strings as Go's %v prints it."""
    return "[" + " ".join(keys) + "]"


def dispatch_payload(raw: Any, mode: str) -> bytes:
    """The decoded `Payload` of a dispatch, checked as Nomad's Job.Dispatch checks it: an error
    of the RPC is a 500 over HTTP (command/agent/http.go wrap), a body that does not decode 400."""
    if raw in (None, ""):
        if mode == "required":
            raise NomadHTTPError(500, "Payload is not provided but required by parameterized job")
        return b""
    if mode == "forbidden":
        raise NomadHTTPError(500, "Payload provided but forbidden by parameterized job")
    if not isinstance(raw, str):
        raise NomadHTTPError(400, "Payload must be a base64 string")
    try:
        payload = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise NomadHTTPError(400, f"Payload is not base64: {exc}") from None
    if len(payload) > PAYLOAD_LIMIT:
        raise NomadHTTPError(500, f"Payload exceeds maximum size; {len(payload)} > {PAYLOAD_LIMIT}")
    return payload


def dispatch_meta(meta: Any, parameterized: dict[str, Any]) -> dict[str, str]:
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise NomadHTTPError(400, "Meta must map strings to strings")
    required = set(parameterized.get("MetaRequired") or [])
    allowed = required | set(parameterized.get("MetaOptional") or [])
    missing = sorted(required - set(meta))
    if missing:
        raise NomadHTTPError(500, f"Dispatch did not provide required meta keys: {_go(missing)}")
    extra = sorted(set(meta) - allowed)
    if extra:
        raise NomadHTTPError(
            500, f"Dispatch request included unpermitted metadata keys: {_go(extra)}"
        )
    return dict(meta)


def dispatch_answer(child: dict[str, Any], *, replay: bool = False) -> dict[str, Any]:
    """JobDispatchResponse; a replay (same idempotency token) names the job and no evaluation,
    as Job.Dispatch in nomad/job_endpoint.go answers it."""
    if replay:
        return {
            "Index": child["ModifyIndex"],
            "JobCreateIndex": child["CreateIndex"],
            "EvalCreateIndex": 0,
            "EvalID": "",
            "DispatchedJobID": child["Spec"]["ID"],
        }
    return {
        "Index": child["CreateIndex"],
        "JobCreateIndex": child["CreateIndex"],
        "EvalCreateIndex": child["CreateIndex"],
        "EvalID": child["EvalID"],
        "DispatchedJobID": child["Spec"]["ID"],
    }


def new_eval(eval_id: str, job_id: str, trigger: str, index: int, namespace: str) -> dict[str, Any]:
    return {
        "ID": eval_id,
        "Namespace": namespace,
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


def failed_placement(group: dict[str, Any]) -> dict[str, Any]:
    """FailedTGAllocs of an evaluation that found no node with the memory the group asks."""
    memory = sum(t["Resources"]["MemoryMB"] for t in group["Tasks"])
    return {
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
            "ResourcesExhausted": {t["Name"]: {"MemoryMB": memory} for t in group["Tasks"]},
        }
    }


def agent_self(version: str, region: str = "global") -> dict[str, Any]:
    """`GET /v1/agent/self` as a 1.x agent answers it (the parts a client reads)."""
    return {
        "config": {
            "Region": region,
            "Datacenter": "dc1",
            "Version": {
                "Revision": "fake",
                "Version": version,
                "VersionPrerelease": "",
                "VersionMetadata": "",
            },
        },
        "member": {
            "Name": f"fake.{region}",
            "Addr": "127.0.0.1",
            "Port": 4648,
            "Status": "alive",
            "Tags": {"build": version, "region": region, "dc": "dc1", "role": "nomad"},
        },
        "stats": {},
    }
