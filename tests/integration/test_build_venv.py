"""The embedded builder: one virtualenv per dependency set, reused; build failures are clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.base import BuildFailed, BuildRequest
from builder.log import BuildLog
from builder.venv import MARKER, VenvBuilder
from core.blobs import LocalBlobStore
from core.build_settings import BuildSettings
from tests.integration.build_fixtures import make_wheel

pytestmark = pytest.mark.anyio


async def build(
    builder: VenvBuilder, blobs: LocalBlobStore, source: Path, build_id: str, command: str = ""
) -> tuple[Path, str]:
    log = BuildLog(blobs, build_id, steps=2)
    try:
        built = await builder.build(BuildRequest(build_id, "wf", source, command), log)
    finally:
        await log.close()
    return Path(built.env["VIRTUAL_ENV"]), (await blobs.get(log.key)).decode()


@pytest.mark.slow
async def test_unchanged_dependencies_reuse_the_virtualenv(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tinydep", "1.0", "VALUE = 1\n")
    source = tmp_path / "src"
    source.mkdir()
    (source / "requirements.txt").write_text(f"{wheel}\n")
    (source / "main.py").write_text("print('v1')\n")
    blobs = LocalBlobStore(tmp_path / "blobs")
    builder = VenvBuilder(tmp_path / "venvs", BuildSettings())

    venv, log1 = await build(builder, blobs, source, "bld-1", "python -c 'import tinydep'")
    marker = (venv / MARKER).read_text()
    assert "pip install" in log1 and "creating virtualenv" in log1
    assert (venv / "bin" / "conveyor-worker").is_file()

    (source / "main.py").write_text("print('v2')\n")
    again, log2 = await build(builder, blobs, source, "bld-2", "python -c 'import tinydep'")
    assert again == venv and (venv / MARKER).read_text() == marker
    assert "reusing virtualenv" in log2 and "pip install" not in log2
    assert json.loads(marker)["files"] == ["requirements.txt"]

    (source / "requirements.txt").write_text(f"{wheel}\n# pinned\n")
    changed, log3 = await build(builder, blobs, source, "bld-3")
    assert changed != venv and "creating virtualenv" in log3


async def test_a_failing_build_command_fails_the_build_with_its_output(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    blobs = LocalBlobStore(tmp_path / "blobs")
    builder = VenvBuilder(tmp_path / "venvs", BuildSettings())
    log = BuildLog(blobs, "bld-x", steps=2)
    with pytest.raises(BuildFailed, match=r"the build command failed \(exit code 3\)"):
        await builder.build(
            BuildRequest("bld-x", "wf", source, "echo 'compiling assets'; exit 3"), log
        )
    assert "compiling assets" in await log.tail(1000)
    await log.close()
    # The environment itself was fine and stays for the next build.
    assert len(list((tmp_path / "venvs").glob("*/" + MARKER))) == 1
