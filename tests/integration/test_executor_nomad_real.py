"""The fake's checks against a real Nomad agent; skipped unless NOMAD_ADDR is set (docs/nomad.md).

Needs a Nomad agent (1.5 or later) with the docker driver and two images on its node, neither
tagged `latest` (the driver would pull it): the control-plane image (NOMAD_TEST_AGENT_IMAGE,
default conveyor:nomad-test, runs `conveyor agent`) and a worker image (NOMAD_TEST_WORKER_IMAGE)
whose working directory holds tests/integration/workflows/nomad/main.py as main.py, with
`conveyor` installed. NOMAD_TOKEN, NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY are read
for a cluster with ACLs or TLS. The allocations call the control plane back at
NOMAD_TEST_CALLBACK_HOST (default: the docker bridge's address).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.engine_fixtures import copy_workflow
from tests.integration.nomad_checks import (
    check_cancel,
    check_retries_and_logs,
    check_submit,
    check_timeout,
)
from tests.integration.nomad_fixtures import NomadTarget, nomad_engine

ADDRESS = os.environ.get("NOMAD_ADDR", "")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not ADDRESS, reason="NOMAD_ADDR is not set: no real Nomad agent to test"),
]


@pytest.fixture
def target(tmp_path: Path) -> NomadTarget:
    scratch = tmp_path / "scratch"  # unused by the checks that run here
    return NomadTarget(
        address=ADDRESS.rstrip("/"),
        agent_image=os.environ.get("NOMAD_TEST_AGENT_IMAGE", "conveyor:nomad-test"),
        worker_image=os.environ.get("NOMAD_TEST_WORKER_IMAGE", "conveyor-nomad-worker:test"),
        callback_host=os.environ.get("NOMAD_TEST_CALLBACK_HOST", "172.17.0.1"),
        bind_host="0.0.0.0",
        scratch=scratch,
        workflow=copy_workflow("nomad", tmp_path),
    )


async def test_submit_dispatches_a_parameterized_job(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_submit(engine, target)


async def test_retries_are_new_dispatches_and_logs_are_copied(
    target: NomadTarget, tmp_path: Path
) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_retries_and_logs(engine, target)


async def test_timeout_deregisters_the_dispatched_job(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_timeout(engine, target)


async def test_cancel_stops_the_dispatched_job(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_cancel(engine, target)
