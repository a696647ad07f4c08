"""Node projects for the TypeScript tests: Render's official SDK from the vendored tarball.

`@renderinc/sdk` is not in the npm registry these machines reach, so its packed file lives in
`shared/vendor` beside the repository (see its README). Where it or Node is missing, the tests
that need them skip and say why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "workflows" / "typescript"
CONVEYOR_SDK = REPO / "sdk" / "typescript"
CONVEYOR_FIXTURE = Path(__file__).parent / "workflows" / "typescript-conveyor"
RENDER_SDK_TGZ_NAME = "renderinc-sdk-1.0.0.tgz"
# where package.json's `file:` dependency points, inside the project
VENDORED = Path("vendor") / RENDER_SDK_TGZ_NAME


def render_sdk_tarball() -> Path | None:
    """`shared/vendor/renderinc-sdk-1.0.0.tgz` in the repository's folder or one above it."""
    for folder in REPO.parents:
        candidate = folder / "shared" / "vendor" / RENDER_SDK_TGZ_NAME
        if candidate.is_file():
            return candidate
    return None


def _missing() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash .ci/setup.d/15-node.sh installs it)"
    if render_sdk_tarball() is None:
        return f"{RENDER_SDK_TGZ_NAME} is not in a shared/vendor folder above {REPO}"
    return None


requires_render_ts_sdk = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def render_ts_project() -> dict[str, bytes]:
    """The files of a TypeScript workflow on Render's SDK: path → content."""
    tarball = render_sdk_tarball()
    assert tarball is not None
    files = {
        str(path.relative_to(FIXTURE)): path.read_bytes()
        for path in sorted(FIXTURE.rglob("*"))
        if path.is_file()
    }
    files[str(VENDORED)] = tarball.read_bytes()
    files[".gitignore"] = b"node_modules/\ndist/\n"
    return files


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


requires_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are needed (bash .ci/setup.d/15-node.sh installs them)",
)


def npm(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["npm", *args], cwd=folder, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"npm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_conveyor_sdk(folder: Path) -> Path:
    """Conveyor's TypeScript SDK copied to `folder`, installed, built with tsc, tested with
    `node --test`, and packed: the tarball's path."""
    shutil.copytree(CONVEYOR_SDK, folder, ignore=shutil.ignore_patterns("node_modules", "dist"))
    npm(folder, "ci", "--no-audit", "--no-fund")
    npm(folder, "run", "build")
    npm(folder, "test")
    return folder / npm(folder, "pack", "--silent").strip().splitlines()[-1]


def conveyor_ts_project(sdk_tarball: Path, fixture: Path = CONVEYOR_FIXTURE) -> dict[str, bytes]:
    """The files of a TypeScript workflow on Conveyor's SDK (`fixture`'s): path → content."""
    files = {
        str(path.relative_to(fixture)): path.read_bytes()
        for path in sorted(fixture.rglob("*"))
        if path.is_file()
    }
    files["vendor/conveyor-sdk.tgz"] = sdk_tarball.read_bytes()
    files[".gitignore"] = b"node_modules/\ndist/\n"
    return files
