"""`conveyor workflows create|list|deploy` and `conveyor versions list` over REST v1."""

from __future__ import annotations

import time
from typing import Any

import click

from app.cli import output
from app.cli.api_client import ApiClient, Obj
from app.cli.context import CliContext
from app.cli.errors import CliError

FINISHED = frozenset({"succeeded", "failed"})


class WorkflowsClient(ApiClient):
    """The workflow, version and build endpoints."""

    def create_workflow(self, body: Obj) -> Obj:
        created: Obj = self._json("POST", "/v1/workflows", json=body)
        return created

    def workflows(self) -> list[Obj]:
        return [item["workflow"] for item in self._json("GET", "/v1/workflows")]

    def deploy(self, workflow: str, commit: str | None) -> Obj:
        # always a JSON body: a bodiless POST has no Content-Type, which the server refuses (415)
        body: Obj = {"commitId": commit} if commit else {}
        build: Obj = self._json("POST", f"/v1/workflows/{workflow}/deploy", json=body)
        return build

    def build(self, build_id: str) -> Obj:
        build: Obj = self._json("GET", f"/v1/builds/{build_id}")
        return build

    def build_log(self, build_id: str) -> str:
        return self._request("GET", f"/v1/builds/{build_id}/logs").text

    def versions(self, workflow: str | None) -> list[Obj]:
        path = f"/v1/workflows/{workflow}/versions" if workflow else "/v1/workflowversions"
        return [item["workflowVersion"] for item in self._json("GET", path)]


def _client(ctx: click.Context) -> WorkflowsClient:
    state = ctx.find_object(CliContext)
    if state is None:
        raise click.UsageError("the conveyor command group was not set up")
    client = WorkflowsClient(state.url, state.api_key)
    ctx.call_on_close(client.close)
    return client


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--env")
        pairs[name] = text
    return pairs


@click.group("workflows")
def workflows_group() -> None:
    """Workflows built from git repositories."""


@workflows_group.command("create")
@click.argument("name")
@click.option("--repo", required=True, help="Git URL of the repository (https://…).")
@click.option("--branch", default="main", show_default=True, help="The branch that deploys.")
@click.option("--root-dir", default="", help="The workflow's folder inside the repository.")
@click.option("--build-command", default="", help="Run after dependencies are installed.")
@click.option("--start-command", default=None, help="Default: conveyor-worker main:app.")
@click.option("--env", "env", multiple=True, help="NAME=VALUE (repeatable); stored encrypted.")
@click.pass_context
def create_command(
    ctx: click.Context,
    name: str,
    repo: str,
    branch: str,
    root_dir: str,
    build_command: str,
    start_command: str | None,
    env: tuple[str, ...],
) -> None:
    """Create workflow NAME from a repository; pushes to --branch deploy it."""
    body: dict[str, Any] = {
        "name": name,
        "repo": repo,
        "branch": branch,
        "rootDir": root_dir,
        "buildCommand": build_command,
        "envVars": _env_pairs(env),
    }
    if start_command:
        body["startCommand"] = start_command
    created = _client(ctx).create_workflow(body)
    click.echo(created["id"])
    click.echo(f"created workflow {created['slug']} tracking {repo}@{branch}", err=True)


@workflows_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List workflows and their active versions."""
    items = _client(ctx).workflows()
    if as_json:
        click.echo(output.to_json(items, indent=2))
        return
    rows = [
        [w["slug"], w["id"], w.get("activeVersionId", "-"), w["buildConfig"]["repo"] or "-"]
        for w in items
    ]
    click.echo(output.table(["SLUG", "ID", "ACTIVE VERSION", "REPO"], rows))


@workflows_group.command("deploy")
@click.argument("workflow")
@click.option("--commit", help="A full commit sha (default: the branch's head).")
@click.option("--wait", is_flag=True, help="Wait for the build and print its log.")
@click.option("--timeout", type=click.FloatRange(min=1), default=1800, show_default=True)
@click.pass_context
def deploy_command(
    ctx: click.Context, workflow: str, commit: str | None, wait: bool, timeout: float
) -> None:
    """Build and register WORKFLOW (id or slug) at a commit."""
    client = _client(ctx)
    build = client.deploy(workflow, commit)
    click.echo(build["id"])
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while build["status"] not in FINISHED:
        if time.monotonic() > deadline:
            raise CliError(f"build {build['id']} still {build['status']} after {timeout:g} s")
        time.sleep(1.0)
        build = client.build(build["id"])
    click.echo(client.build_log(build["id"]), err=True, nl=False)
    if build["status"] != "succeeded":
        raise CliError(f"build {build['id']} failed: {build.get('message', '')}")
    click.echo(f"version {build['workflowVersionId']} is active", err=True)


@click.group("versions")
def versions_group() -> None:
    """Workflow versions."""


@versions_group.command("list")
@click.option("--workflow", help="Only this workflow's (id or slug).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def versions_list_command(ctx: click.Context, workflow: str | None, as_json: bool) -> None:
    """List versions, newest first."""
    client = _client(ctx)
    items = client.versions(workflow)
    if as_json:
        click.echo(output.to_json(items, indent=2))
        return
    names = {w["id"]: w.get("slug") or w["name"] for w in client.workflows()}
    rows = [
        [
            v["id"],
            names.get(v["workflowId"], v["workflowId"]),
            v["status"],
            output.short_time(v["createdAt"]),
            ", ".join(v["tasks"]) or "-",
        ]
        for v in items
    ]
    click.echo(output.table(["VERSION", "WORKFLOW", "STATUS", "CREATED", "TASKS"], rows))
