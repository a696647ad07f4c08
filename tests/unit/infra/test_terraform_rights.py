"""Each role and security group lets the processes on its nodes do what their code does, no more.

The needs are derived, then checked against iam.tf and rds.tf as parsed:
- the blob prefixes: every `*_key` function of app/, builder/, core/ and scheduler/ that builds
  a blob key under a literal folder (`runs/…`), and which package refers to which;
- the S3 calls the blob store makes (core/blobs/s3.py), as the IAM actions AWS requires for them;
- the Nomad jobs: which `conveyor` command runs on which node class, with which settings
  (`CONVEYOR_BLOBS__URL`: the bucket; `CONVEYOR_DATABASE__URL`: PostgreSQL; an image of ours).
A new prefix, a new S3 call, a new process or a new setting in a job fails here until the
Terraform follows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.unit.infra.hcl_files import (
    NOMAD,
    Body,
    block,
    blocks,
    load,
    policy_documents,
    resources,
    statements,
    task_environment,
    tasks,
)

ROOT = Path(__file__).resolve().parents[3]
SOURCE_PACKAGES = ("app", "builder", "core", "scheduler")
BUCKET = "${aws_s3_bucket.blobs.arn}"
NODE_CLASS_TAG = "conveyor-node-class"

# The packages each process runs (app/cli/serve.py, app/cli/builder.py): the server serves app/
# over the whole engine, in-process builds included (builder/); the scheduler runs scheduler/;
# the builder runs builder/, which registers what it built through scheduler.registration and
# reads that registration's log back by its key (builder/execution.py).
PROCESS_PACKAGES = {
    "server": ("app", "builder", "scheduler", "core"),
    "scheduler": ("scheduler", "core"),
    "builder": ("builder", "core"),
}

# boto3 call -> the IAM actions it needs (AWS: "Actions, resources, and condition keys for
# Amazon S3"; boto3's transfer manager uploads in parts above its threshold and aborts the
# upload when a part fails).
S3_CALL_ACTIONS = {
    "head_bucket": {"s3:ListBucket"},
    "head_object": {"s3:GetObject"},
    "get_object": {"s3:GetObject"},
    "generate_presigned_url": {"s3:GetObject"},  # of get_object (checked below)
    "upload_file": {"s3:PutObject", "s3:AbortMultipartUpload"},
    "upload_fileobj": {"s3:PutObject", "s3:AbortMultipartUpload"},
}
BUCKET_ACTIONS = {"s3:ListBucket"}
# SSE-KMS with the bucket key: writing needs a data key, reading (and completing a multipart
# upload) needs Decrypt.
KMS_THROUGH_S3 = {"kms:Decrypt", "kms:GenerateDataKey"}
# The job variables that name an image of ours, and its repository (docs/deployment.md, step 2:
# the builder's image is the server image's `-builder` tag). BuildKit's comes from Docker Hub.
IMAGE_REPOSITORIES = {"image": "server", "builder_image": "server"}
PUBLIC_IMAGES = {"buildkit_image"}
PULL_ACTIONS = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
}


# --- what the code does ----------------------------------------------------------------------


def modules(package: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(), filename=str(path))


def literal_folder(function: ast.FunctionDef) -> str | None:
    """`runs` for a function returning `f"runs/{run_id}/input.json"`, else None."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = node.value
        first = value.values[0] if isinstance(value, ast.JoinedStr) and value.values else value
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and "/" in first.value:
            return first.value.split("/", 1)[0]
    return None


@cache
def key_functions() -> dict[str, str]:
    """Every function that builds a blob key under a folder, and that folder."""
    found: dict[str, str] = {}
    for package in SOURCE_PACKAGES:
        for _, tree in modules(package):
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name.endswith("_key"):
                    folder = literal_folder(node)
                    if folder is not None:
                        found[node.name] = folder
    return found


def names_used(tree: ast.Module) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.name.rsplit(".", 1)[-1])
    return used


@cache
def prefixes_of_package(package: str) -> frozenset[str]:
    functions = key_functions()
    return frozenset(
        functions[name]
        for _, tree in modules(package)
        for name in names_used(tree) & functions.keys()
    )


def prefixes_of_process(process: str) -> set[str]:
    return {p for package in PROCESS_PACKAGES[process] for p in prefixes_of_package(package)}


@cache
def s3_calls() -> frozenset[str]:
    """The methods core/blobs/s3.py calls on its boto3 client."""
    tree = ast.parse((ROOT / "core" / "blobs" / "s3.py").read_text())
    called: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "_client"
        ):
            called.add(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "generate_presigned_url"
        ):
            assert isinstance(node.args[0], ast.Constant)
            assert node.args[0].value == "get_object", "presigned URLs are for reading only"
    return frozenset(called)


def s3_object_actions() -> set[str]:
    return {a for call in s3_calls() for a in S3_CALL_ACTIONS[call]} - BUCKET_ACTIONS


def code_logs_in_with_iam_tokens() -> bool:
    return any(
        "generate_db_auth_token" in names_used(tree)
        for package in SOURCE_PACKAGES
        for _, tree in modules(package)
    )


# --- what the jobs run where -----------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    command: str  # `conveyor <command>`
    node_class: str
    environment: frozenset[str]  # CONVEYOR_* names its job sets
    image_variables: frozenset[str]


def job_processes() -> list[Process]:
    found: list[Process] = []
    for path in sorted(NOMAD.glob("conveyor-*.nomad.hcl")):
        (jobs,) = load(path)["job"]
        ((_, job),) = jobs.items()
        (node_class,) = [
            c["value"] for c in blocks(job, "constraint") if c["attribute"] == "${node.class}"
        ]
        ((_, group),) = block(job, "group").items()
        images = frozenset(
            config["image"].removeprefix("${var.").removesuffix("}")
            for task in tasks(group).values()
            for config in [block(task, "config")]
        )
        for task in tasks(group).values():
            config = block(task, "config")
            if config.get("command") == "conveyor":
                env = frozenset(task_environment(task))
                found.append(Process(config["args"][0], node_class, env, images))
    return found


def processes_on(node_class: str) -> list[Process]:
    return [p for p in job_processes() if p.node_class == node_class]


def role_classes() -> dict[str, str]:
    """Each role's node class (its `conveyor-node-class` tag)."""
    return {
        name: role["tags"][NODE_CLASS_TAG]
        for name, role in resources("aws_iam_role").items()
        if NODE_CLASS_TAG in role.get("tags", {})
    }


# --- the derived needs, each against the Terraform --------------------------------------------


def test_the_code_keeps_blobs_under_these_folders() -> None:
    """The scan finds the key functions; a new folder needs its rights decided (below)."""
    assert key_functions() == {
        "run_input_key": "runs",
        "run_output_key": "runs",
        "flow_step_input_key": "runs",
        "flow_step_result_key": "runs",
        "attempt_log_key": "logs",
        "registration_log_key": "registrations",
        "build_log_key": "builds",
    }
    assert prefixes_of_process("builder") == {"builds", "registrations"}
    assert prefixes_of_process("scheduler") == {"runs", "logs", "registrations"}


def test_every_process_of_the_jobs_is_known_and_every_node_class_has_a_role() -> None:
    commands = {p.command for p in job_processes()}
    assert commands == set(PROCESS_PACKAGES)
    assert {p.node_class for p in job_processes()} <= set(role_classes().values())
    assert sorted(role_classes().values()) == sorted(set(role_classes().values())), "one each"


def test_the_blob_store_makes_only_calls_whose_rights_are_known() -> None:
    assert s3_calls() <= S3_CALL_ACTIONS.keys(), "map the new call to its IAM actions"
    assert s3_calls() >= {"head_bucket", "get_object", "upload_file"}


def s3_statements(document: Body) -> tuple[list[Body], list[Body]]:
    """(bucket statements, object statements) of a policy document."""
    bucket: list[Body] = []
    objects: list[Body] = []
    for statement in statements(document):
        actions = set(statement.get("actions", []))
        if actions & BUCKET_ACTIONS:
            bucket.append(statement)
        elif any(action.startswith("s3:") for action in actions):
            objects.append(statement)
    return bucket, objects


@pytest.mark.parametrize("role", ["control_plane", "builder", "worker_node"])
def test_each_role_reaches_the_blob_folders_its_processes_use_and_no_other(role: str) -> None:
    node_class = role_classes()[role]
    uses_bucket = [p for p in processes_on(node_class) if "CONVEYOR_BLOBS__URL" in p.environment]
    folders = {f for p in uses_bucket for f in prefixes_of_process(p.command)}
    document = policy_documents()[role]
    bucket, objects = s3_statements(document)
    kms = [s for s in statements(document) if any(a.startswith("kms:") for a in s["actions"])]
    if not uses_bucket:
        assert (bucket, objects, kms) == ([], [], []), f"{role}: no process of it uses the bucket"
        return

    # HeadBucket (the store's check at start-up) is s3:ListBucket without a prefix
    assert len(bucket) == 1, f"{role}: one s3:ListBucket statement, found {len(bucket)}"
    (listing,) = bucket
    assert set(listing["actions"]) == BUCKET_ACTIONS and listing["resources"] == [BUCKET]
    condition = block(listing, "condition")
    assert (condition["test"], condition["variable"]) == ("StringLikeIfExists", "s3:prefix")
    assert set(condition["values"]) == {f"{folder}/*" for folder in folders}

    for statement in objects:
        assert set(statement["actions"]) == s3_object_actions(), statement.get("sid")
    granted = {r for statement in objects for r in statement["resources"]}
    assert granted == {f"{BUCKET}/{folder}/*" for folder in folders}

    (through_s3,) = kms
    assert set(through_s3["actions"]) == KMS_THROUGH_S3
    assert through_s3["resources"] == ["${aws_kms_key.conveyor.arn}"]
    assert block(through_s3, "condition")["variable"] == "kms:ViaService"


@pytest.mark.parametrize("role", ["control_plane", "builder"])
def test_each_role_pulls_the_images_its_nodes_run(role: str) -> None:
    node_class = role_classes()[role]
    variables = {v for p in processes_on(node_class) for v in p.image_variables}
    assert variables - PUBLIC_IMAGES <= IMAGE_REPOSITORIES.keys(), variables
    repositories = {IMAGE_REPOSITORIES[v] for v in variables - PUBLIC_IMAGES}
    pulled = {
        resource
        for statement in statements(policy_documents()[role])
        if set(statement["actions"]) >= PULL_ACTIONS
        for resource in statement["resources"]
    }
    assert {f'${{aws_ecr_repository.conveyor["{r}"].arn}}' for r in repositories} <= pulled


def test_no_role_logs_in_to_the_database_with_iam_unless_the_code_does() -> None:
    assert not code_logs_in_with_iam_tokens()
    for name, document in policy_documents().items():
        for statement in statements(document):
            assert "rds-db:connect" not in statement.get("actions", []), name


def database_node_classes() -> set[str]:
    return {p.node_class for p in job_processes() if "CONVEYOR_DATABASE__URL" in p.environment}


def test_exactly_the_nodes_whose_processes_use_the_database_reach_it() -> None:
    groups = {
        name: group["tags"][NODE_CLASS_TAG]
        for name, group in resources("aws_security_group").items()
        if NODE_CLASS_TAG in group.get("tags", {})
    }
    wanted = database_node_classes()
    assert wanted == {"conveyor-control", "conveyor-builder"}
    assert set(groups.values()) == wanted
    database = "${aws_security_group.database.id}"
    postgres = {"ip_protocol": "tcp", "from_port": 5432, "to_port": 5432}
    ingress = resources("aws_vpc_security_group_ingress_rule").values()
    egress = resources("aws_vpc_security_group_egress_rule").values()
    assert sorted(r["referenced_security_group_id"] for r in ingress) == sorted(
        f"${{aws_security_group.{name}.id}}" for name in groups
    )
    for rule in ingress:
        assert rule["security_group_id"] == database
        assert {k: rule[k] for k in postgres} == postgres
    for name in groups:
        (out,) = [
            r for r in egress if r["security_group_id"] == f"${{aws_security_group.{name}.id}}"
        ]
        assert out["referenced_security_group_id"] == database
        assert {k: out[k] for k in postgres} == postgres
    # the operator attaches each group to its nodes: each is an output
    outputs = {
        body["value"]
        for entry in load(ROOT / "infra" / "terraform" / "outputs.tf")["output"]
        for body in entry.values()
    }
    assert {f"${{aws_security_group.{name}.id}}" for name in groups} <= outputs


def test_the_worker_nodes_reach_neither_the_bucket_nor_the_database() -> None:
    assert "conveyor-worker" not in database_node_classes()
    actions = {a for s in statements(policy_documents()["worker_node"]) for a in s["actions"]}
    assert all(action.startswith("ecr:") for action in actions), actions
