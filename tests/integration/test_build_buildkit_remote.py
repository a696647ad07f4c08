"""A remote BuildKit with a registry cache (`mode=max`): what `docker buildx` is asked to do.

No BuildKit daemon that exports caches can run here (the host's dockerd embeds BuildKit 0.8,
whose docker driver refuses cache exports), so `docker` is a FAKE CLI: a script that records
its argv and answers as the real one does (`buildx inspect` of an unknown builder fails,
`buildx build --progress plain` prints BuildKit's plain progress). The real builds, with the
inline cache, are in test_build_buildkit.py and test_builder_processes.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from builder.base import BuildRequest
from builder.buildkit import BuildKitBuilder
from builder.log import BuildLog
from core.blobs import LocalBlobStore
from core.build_settings import BuildSettings
from core.settings import DockerSettings, ExecutorSettings, Settings

pytestmark = pytest.mark.anyio

FAKE_DOCKER = """#!{python}
import json, sys
args = sys.argv[1:]
with open({calls!r}, "a") as out:
    out.write(json.dumps(args) + "\\n")
if "inspect" in args:
    print("ERROR: no builder " + args[-1] + " found", file=sys.stderr)
    sys.exit(1)
if "create" in args:
    print(args[args.index("--name") + 1])
if "build" in args:
    for line in (
        "#1 [internal] load build definition from Dockerfile",
        "#7 [6/8] RUN if grep -qvE x /opt/conveyor-deps/requirements.txt; then pip; fi",
        "#7 CACHED",
        "#9 exporting cache to registry",
    ):
        print(line, file=sys.stderr)
"""


@pytest.fixture
def docker(tmp_path: Path) -> tuple[Path, Path]:
    calls = tmp_path / "calls.jsonl"
    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable, calls=str(calls)))
    script.chmod(0o755)
    return script, calls


async def test_a_remote_buildkit_builds_with_a_max_registry_cache(
    tmp_path: Path, docker: tuple[Path, Path]
) -> None:
    script, calls = docker
    settings = Settings(
        data_dir=tmp_path / "data",
        # on Nomad the cluster pulls the image: nothing is pulled here
        executor=ExecutorSettings(kind="nomad"),
        docker=DockerSettings(binary=str(script)),
        # the layout infra/nomad/conveyor-builder.nomad.hcl sets up on ECR
        builds=BuildSettings(
            builder="buildkit",
            registry="registry.example.com/team/workflows",
            repository_per_workflow=False,
            cache="registry",
            cache_repository="registry.example.com/team/build-cache",
            buildkit_address="tcp://127.0.0.1:1234",
            docker_host="unix:///run/other.sock",
        ),
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text("app = None\n")
    blobs = LocalBlobStore(tmp_path / "blobs")
    log = BuildLog(blobs, "bld-remote", steps=4)
    builder = BuildKitBuilder(settings)
    for _ in range(2):
        built = await builder.build(
            BuildRequest("bld-remote", "wf", source, "", commit_sha="b" * 40), log
        )
    await log.close()

    assert built.cached and built.image == f"registry.example.com/team/workflows:wf-{'b' * 12}"
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    inspect, create, first, second = argvs
    name = create[create.index("--name") + 1]
    assert inspect[-3:] == ["buildx", "inspect", name]
    assert create[:2] == ["--host", "unix:///run/other.sock"]
    assert {"--driver", "remote", "tcp://127.0.0.1:1234"} <= set(create)
    assert first == second, "the builder instance is made once"
    build = first
    assert build[build.index("--builder") + 1] == name
    ref = "registry.example.com/team/build-cache:wf"
    assert build[build.index("--cache-to") + 1] == f"type=registry,ref={ref},mode=max"
    assert build[build.index("--cache-from") + 1] == f"type=registry,ref={ref}"
    assert "--push" in build and "--load" not in build
    tags = [build[i + 1] for i, arg in enumerate(build) if arg == "--tag"]
    assert tags == [built.image], "immutable tags: no moving `latest`"
    assert "dependency layer from the cache" in (await blobs.get(log.key)).decode()


async def test_a_remote_buildkit_needs_a_registry(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        builds=BuildSettings(builder="buildkit", buildkit_address="tcp://127.0.0.1:1234"),
    )
    with pytest.raises(ValueError, match="set CONVEYOR_BUILDS__REGISTRY too"):
        BuildKitBuilder(settings)


def test_cache_references(tmp_path: Path) -> None:
    inline = BuildKitBuilder(Settings(data_dir=tmp_path, builds=BuildSettings(registry="r/t")))
    assert inline.image_tags("wf", "abc") == ["r/t/wf:abc", "r/t/wf:latest"]
    assert inline.cache_options("wf") == ("type=registry,ref=r/t/wf:latest", "type=inline")
    registry = BuildKitBuilder(
        Settings(data_dir=tmp_path, builds=BuildSettings(registry="r/t", cache="registry"))
    )
    assert registry.cache_options("wf") == (
        "type=registry,ref=r/t/wf:buildcache",
        "type=registry,ref=r/t/wf:buildcache,mode=max",
    )
