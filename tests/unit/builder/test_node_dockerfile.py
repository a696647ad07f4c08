"""The Dockerfile generated for a Node project, and the build context beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.base import BuildFailed
from builder.node_dockerfile import prepare_node_context
from builder.node_project import read_node_project


def node_project(root: Path, dependencies: dict[str, str]) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "vendor").mkdir()
    package = {
        "name": "wf",
        "scripts": {"build": "tsc", "start": "node dist/main.js"},
        "dependencies": dependencies,
    }
    (root / "package.json").write_text(json.dumps(package))
    (root / "package-lock.json").write_text("{}")
    (root / "src" / "main.ts").write_text("export {};\n")
    (root / "vendor" / "sdk.tgz").write_bytes(b"tarball")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "left-over").write_text("not copied")
    return root


def test_the_dependency_layer_holds_only_what_installs(tmp_path: Path) -> None:
    source = node_project(tmp_path / "repo", {"sdk": "file:vendor/sdk.tgz", "left-pad": "1.3.0"})
    context = tmp_path / "context"
    context.mkdir()
    dockerfile = prepare_node_context(
        read_node_project(source), context, base_image="node-base:1", build_command=""
    )
    deps = sorted(str(p.relative_to(context / "deps")) for p in (context / "deps").rglob("*"))
    assert deps == ["package-lock.json", "package.json", "vendor", "vendor/sdk.tgz"]
    assert (context / "app" / "src" / "main.ts").is_file()
    assert not (context / "app" / "node_modules").exists()
    assert dockerfile.read_text() == (
        "FROM node-base:1\n"
        "WORKDIR /app\n"
        "# The dependency layer: only package.json, the lockfile and local packages are copied "
        "first, so\n"
        "# code changes reuse it.\n"
        "COPY deps /opt/conveyor-deps\n"
        "RUN cp -a /opt/conveyor-deps/. /app/ && npm ci --no-audit --no-fund --install-links\n"
        "COPY app /app\n"
        "RUN npm run build\n"
        "ENV PATH=/app/node_modules/.bin:$PATH\n"
    )


def test_a_build_command_and_a_ca_bundle(tmp_path: Path) -> None:
    source = node_project(tmp_path / "repo", {})
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    context = tmp_path / "context"
    context.mkdir()
    text = prepare_node_context(
        read_node_project(source),
        context,
        base_image="b",
        build_command="npm run compile && echo 'done'",
        ca_bundle=bundle,
    ).read_text()
    assert (context / "conveyor-build-ca.pem").read_text() == bundle.read_text()
    assert "COPY conveyor-build-ca.pem /etc/ssl/certs/conveyor-build-ca.pem\n" in text
    assert "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/conveyor-build-ca.pem\n" in text
    assert text.index("NODE_EXTRA_CA_CERTS") < text.index("npm ci")
    assert "RUN /bin/sh -c 'npm run compile && echo '\"'\"'done'\"'\"''\n" in text
    assert "RUN npm run build" not in text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("file:../outside.tgz", "is outside the repository"),
        ("file:vendor/missing.tgz", "no such file or folder in the repository"),
    ],
)
def test_local_packages_must_be_in_the_repository(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "outside.tgz").write_bytes(b"x")
    source = node_project(tmp_path / "repo", {"dep": spec})
    context = tmp_path / "context"
    context.mkdir()
    with pytest.raises(BuildFailed, match=message):
        prepare_node_context(read_node_project(source), context, base_image="b", build_command="")
