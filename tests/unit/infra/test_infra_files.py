"""infra/: Terraform and Nomad files parse, keep the properties that matter, pass checkov."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from core.settings import Settings
from tests.unit.infra.hcl_files import (
    INFRA,
    NOMAD,
    TERRAFORM,
    Body,
    block,
    blocks,
    infra_files,
    load,
    nomad_job,
    policy_documents,
    resources,
    single_group,
    statements,
    task_environment,
    tasks,
    variable_default,
)

CHECKOV = Path("/opt/checkov-venv/bin/checkov")
CHECKOV_SETUP = ".ci/setup.d/30-checkov.sh"

TERRAFORM_FILES = ("main", "variables", "outputs", "s3", "ecr", "iam", "rds", "versions")
NOMAD_FILES = ("conveyor-server", "conveyor-scheduler", "conveyor-builder", "worker-template")
# The only action AWS offers no narrower resource for.
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken"}
# A KMS key policy's Resource must be "*": it means the key the policy is attached to.
KEY_POLICY_DOCUMENTS = {"kms_key"}


# --- layout and parsing ----------------------------------------------------------------------


def test_layout_is_the_documented_one() -> None:
    assert {p.stem for p in TERRAFORM.glob("*.tf")} == set(TERRAFORM_FILES)
    assert {p.name for p in NOMAD.glob("*.hcl")} == {f"{n}.nomad.hcl" for n in NOMAD_FILES}


@pytest.mark.parametrize("path", infra_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_file_parses(path: Path) -> None:
    assert load(path), f"{path} is empty"


def test_aws_provider_is_pinned() -> None:
    (terraform,) = load(TERRAFORM / "versions.tf")["terraform"]
    (providers,) = terraform["required_providers"]
    aws = providers["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert aws["version"].startswith("~>"), "pin the provider to one major version"
    assert "<" in terraform["required_version"]


# --- S3 --------------------------------------------------------------------------------------


def test_bucket_is_encrypted_with_the_kms_key() -> None:
    (sse,) = resources("aws_s3_bucket_server_side_encryption_configuration").values()
    default = block(block(sse, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${aws_kms_key.conveyor.arn}"
    assert resources("aws_kms_key")["conveyor"]["enable_key_rotation"] is True


def test_bucket_is_versioned() -> None:
    (versioning,) = resources("aws_s3_bucket_versioning").values()
    assert versioning["bucket"] == "${aws_s3_bucket.blobs.id}"
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"


def test_bucket_blocks_every_kind_of_public_access() -> None:
    (access,) = resources("aws_s3_bucket_public_access_block").values()
    assert access["bucket"] == "${aws_s3_bucket.blobs.id}"
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert access[flag] is True, flag


def test_lifecycle_expires_logs_and_noncurrent_versions() -> None:
    (lifecycle,) = resources("aws_s3_bucket_lifecycle_configuration").values()
    rules = {rule["id"]: rule for rule in blocks(lifecycle, "rule")}
    assert all(rule["status"] == "Enabled" for rule in rules.values())

    logs = rules["expire-logs"]
    assert block(logs, "filter")["prefix"] == "logs/"
    assert block(logs, "expiration")["days"] == "${var.logs_retention_days}"
    assert variable_default("logs_retention_days") > 0

    noncurrent = rules["expire-noncurrent-versions"]
    expiry = block(noncurrent, "noncurrent_version_expiration")
    assert expiry["noncurrent_days"] == "${var.noncurrent_version_retention_days}"


def test_bucket_policy_refuses_plain_http() -> None:
    (policy,) = resources("aws_s3_bucket_policy").values()
    assert policy["policy"] == "${data.aws_iam_policy_document.blobs_bucket.json}"
    denials = [s for s in statements(policy_documents()["blobs_bucket"]) if s["effect"] == "Deny"]
    insecure = [
        condition
        for statement in denials
        for condition in blocks(statement, "condition")
        if condition["variable"] == "aws:SecureTransport"
    ]
    assert insecure == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]


# --- ECR -------------------------------------------------------------------------------------


def test_repositories_scan_on_push_with_immutable_tags_and_expire_images() -> None:
    repositories = resources("aws_ecr_repository")
    assert set(repositories) == {"conveyor", "build_cache"}
    repository = repositories["conveyor"]
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert block(repository, "image_scanning_configuration")["scan_on_push"] is True
    assert block(repository, "encryption_configuration")["encryption_type"] == "KMS"
    lifecycle = resources("aws_ecr_lifecycle_policy")["conveyor"]
    assert lifecycle["for_each"] == repository["for_each"], "one lifecycle policy per repository"


def test_the_build_cache_repository_is_mutable_encrypted_and_expires_old_layers() -> None:
    cache = resources("aws_ecr_repository")["build_cache"]
    # BuildKit rewrites a workflow's cache tag on every build; no task runs an image from it
    assert cache["image_tag_mutability"] == "MUTABLE"
    assert block(cache, "encryption_configuration")["encryption_type"] == "KMS"
    lifecycle = resources("aws_ecr_lifecycle_policy")["build_cache"]
    assert lifecycle["repository"] == "${aws_ecr_repository.build_cache.name}"


# --- IAM -------------------------------------------------------------------------------------


def allow_statements() -> Iterator[tuple[str, Body]]:
    for name, document in policy_documents().items():
        for statement in statements(document):
            if statement.get("effect", "Allow") == "Allow":
                yield name, statement


def test_allow_statements_name_no_wildcard_action() -> None:
    for name, statement in allow_statements():
        for action in statement.get("actions", []):
            assert "*" not in action, f"{name}/{statement.get('sid')}: action {action}"
        assert "not_actions" not in statement, f"{name}: NotAction grants everything else"


def test_star_resource_only_where_aws_requires_it() -> None:
    for name, statement in allow_statements():
        if "*" not in statement.get("resources", []) or name in KEY_POLICY_DOCUMENTS:
            continue
        assert set(statement["actions"]) <= STAR_RESOURCE_ACTIONS, (
            f"{name}/{statement.get('sid')}: Resource * for {statement['actions']}"
        )


def test_roles_use_checked_documents_only() -> None:
    for name, policy in resources("aws_iam_role_policy").items():
        assert policy["policy"] == f"${{data.aws_iam_policy_document.{name}.json}}"
    assert set(resources("aws_iam_role_policy")) == {"control_plane", "builder", "worker_node"}


def actions_of(document: str) -> set[str]:
    return {
        action
        for statement in statements(policy_documents()[document])
        for action in statement.get("actions", [])
    }


def test_control_plane_never_pushes_images() -> None:
    """What it may read and write is derived from the code in test_terraform_rights.py."""
    actions = actions_of("control_plane")
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} <= actions
    assert not actions & {"ecr:PutImage", "ecr:InitiateLayerUpload"}


def test_control_plane_can_head_the_bucket() -> None:
    """The S3 store's start-up check is HeadBucket: s3:ListBucket with no prefix in the request."""
    (listing,) = [
        statement
        for statement in statements(policy_documents()["control_plane"])
        if statement["actions"] == ["s3:ListBucket"]
    ]
    condition = block(listing, "condition")
    assert condition["variable"] == "s3:prefix"
    assert condition["test"].endswith("IfExists"), "a request without a prefix must pass"


def test_builder_pushes_to_the_workflows_and_cache_repositories_only() -> None:
    actions = actions_of("builder")
    assert {"ecr:PutImage", "ecr:CompleteLayerUpload"} <= actions
    (push,) = [
        s for s in statements(policy_documents()["builder"]) if "ecr:PutImage" in s["actions"]
    ]
    assert push["resources"] == [
        '${aws_ecr_repository.conveyor["workflows"].arn}',
        "${aws_ecr_repository.build_cache.arn}",
    ]


def test_worker_nodes_only_pull_images() -> None:
    actions = actions_of("worker_node")
    assert all(action.startswith("ecr:") for action in actions), actions
    assert not actions & {"ecr:PutImage", "ecr:InitiateLayerUpload"}


# --- RDS -------------------------------------------------------------------------------------


def test_database_is_encrypted_private_protected_and_backed_up() -> None:
    database = resources("aws_db_instance")["conveyor"]
    assert database["engine"] == "postgres"
    assert database["storage_encrypted"] is True
    assert database["kms_key_id"] == "${aws_kms_key.conveyor.arn}"
    assert database["publicly_accessible"] is False
    assert database["deletion_protection"] is True
    assert database["iam_database_authentication_enabled"] is True
    assert database["skip_final_snapshot"] is False
    assert database["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert variable_default("db_backup_retention_days") >= 7
    assert "password" not in database, "the password is generated and kept by RDS"
    assert database["manage_master_user_password"] is True


def test_database_lives_in_the_given_private_subnets() -> None:
    subnets = resources("aws_db_subnet_group")["conveyor"]
    assert subnets["subnet_ids"] == "${var.private_subnet_ids}"
    database = resources("aws_db_instance")["conveyor"]
    assert database["db_subnet_group_name"] == "${aws_db_subnet_group.conveyor.name}"


def test_the_database_has_its_own_security_group_with_separate_rules() -> None:
    """Which nodes reach it is derived from the jobs in test_terraform_rights.py."""
    database = resources("aws_db_instance")["conveyor"]
    assert database["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]
    for group in resources("aws_security_group").values():
        assert "ingress" not in group and "egress" not in group, "rules are separate resources"


# --- Nomad: control plane --------------------------------------------------------------------


def setting_exists(variable: str) -> bool:
    """Whether `CONVEYOR_A__B` names a field of `Settings` (prefix, `__` nesting)."""
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("CONVEYOR_").lower().split("__")
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


@pytest.mark.parametrize(
    ("job_file", "command"), [("conveyor-server", "server"), ("conveyor-scheduler", "scheduler")]
)
def test_control_plane_jobs(job_file: str, command: str) -> None:
    name, job = nomad_job(job_file)
    assert name == job_file
    assert job["type"] == "service"
    update = block(job, "update")
    assert update["health_check"] == "checks"
    assert update["auto_revert"] is True

    group = single_group(job)
    check = block(block(group, "service"), "check")
    assert (check["type"], check["path"]) == ("http", "/healthz")
    (task,) = tasks(group).values()
    assert task["driver"] == "docker"
    config = block(task, "config")
    assert (config["command"], config["args"]) == ("conveyor", [command])
    resources = block(task, "resources")
    assert resources["cpu"] > 0 and resources["memory"] > 0

    environment = task_environment(task)
    assert environment["CONVEYOR_EXECUTOR__KIND"] == "nomad"
    assert environment["CONVEYOR_BLOBS__URL"] == "${var.blobs_url}"
    assert {"CONVEYOR_DATABASE__URL", "NOMAD_ADDR", "NOMAD_TOKEN"} <= set(environment)
    unknown = [v for v in environment if v.startswith("CONVEYOR_") and not setting_exists(v)]
    assert unknown == [], "not settings in core/settings.py"


def test_builder_job_runs_the_builder_beside_a_rootless_buildkit() -> None:
    name, job = nomad_job("conveyor-builder")
    assert name == "conveyor-builder" and job["type"] == "service"
    assert block(job, "constraint")["value"] == "conveyor-builder"
    group = single_group(job)
    network = block(group, "network")
    assert network["mode"] == "bridge", "the builder reaches BuildKit on the group's loopback"
    relay_port = block(network, "port")["relay"]["to"]
    found = tasks(group)
    assert set(found) == {"buildkitd", "builder"}

    buildkitd = found["buildkitd"]
    assert block(buildkitd, "lifecycle") == {"hook": "prestart", "sidecar": True}
    config = block(buildkitd, "config")
    assert "rootless" in variable_of_job("conveyor-builder", "buildkit_image")
    assert config.get("privileged") is not True
    assert "--oci-worker-no-process-sandbox" in config["args"]
    address = config["args"][config["args"].index("--addr") + 1]

    builder = found["builder"]
    config = block(builder, "config")
    assert (config["command"], config["args"][0]) == ("conveyor", "builder")
    environment = task_environment(builder)
    assert environment["CONVEYOR_BUILDS__BUILDKIT_ADDRESS"] == address
    assert environment["CONVEYOR_BUILDS__CACHE"] == "registry"
    assert environment["CONVEYOR_BUILDS__REGISTRY_AUTH"] == "ecr"
    assert environment["CONVEYOR_BUILDS__REPOSITORY_PER_WORKFLOW"] == "false", "immutable tags"
    assert environment["CONVEYOR_BUILDER__LISTEN_PORT"] == str(relay_port)
    assert environment["CONVEYOR_BUILDER__ADVERTISE_URL"] == "http://${NOMAD_ADDR_relay}"
    assert {"CONVEYOR_DATABASE__URL", "CONVEYOR_BUILDS__SECRETS_KEY"} <= set(environment)
    unknown = [v for v in environment if v.startswith("CONVEYOR_") and not setting_exists(v)]
    assert unknown == [], "not settings in core/settings.py"
    grace = float(environment["CONVEYOR_BUILDER__STOP_GRACE_SECONDS"])
    assert float(builder["kill_timeout"].removesuffix("s")) > grace, "time to hand builds back"
    # a client caps kill_timeout at its max_kill_timeout, 30 s by default: say what to set
    if float(builder["kill_timeout"].removesuffix("s")) > 30:
        text = (NOMAD / "conveyor-builder.nomad.hcl").read_text()
        assert 'max_kill_timeout = "300s"' in text
        assert 'max_kill_timeout = "300s"' in (INFRA.parent / "docs" / "deployment.md").read_text()
    outputs = {name for entry in load(TERRAFORM / "outputs.tf")["output"] for name in entry}
    for variable in ("workflows_repository_url", "build_cache_repository_url", "blobs_url"):
        assert variable in outputs, f"the job's {variable} comes from Terraform"


@pytest.mark.parametrize("job_file", ["conveyor-server", "conveyor-scheduler", "conveyor-builder"])
def test_control_plane_jobs_verify_the_nomad_agents_certificate(job_file: str) -> None:
    assert variable_of_job(job_file, "nomad_addr").startswith("https://")
    _, job = nomad_job(job_file)
    task = next(t for t in tasks(single_group(job)).values() if "template" in t)
    ca_cert = task_environment(task)["CONVEYOR_NOMAD__CA_CERT"]
    assert ca_cert == "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
    (written,) = [t for t in blocks(task, "template") if t["destination"] == ca_cert]
    assert ".nomad_ca_cert" in written["data"] and written["perms"] == "0400"


def variable_of_job(job_file: str, name: str) -> Any:
    for entry in load(NOMAD / f"{job_file}.nomad.hcl")["variable"]:
        if name in entry:
            return entry[name]["default"]
    raise AssertionError(f"no variable {name}")


def test_the_server_job_leaves_builds_to_the_builders() -> None:
    _, job = nomad_job("conveyor-server")
    (task,) = tasks(single_group(job)).values()
    assert task_environment(task)["CONVEYOR_BUILDS__IN_PROCESS"] == "false"


def test_settings_read_the_variables_the_jobs_set() -> None:
    os.environ.update(
        {
            "CONVEYOR_EXECUTOR__KIND": "nomad",
            "CONVEYOR_BLOBS__URL": "s3://bucket",
            "CONVEYOR_DATABASE__URL": "postgresql+asyncpg://db/conveyor",
            "CONVEYOR_NOMAD__DATACENTERS": '["dc1", "dc2"]',  # jsonencode(var.datacenters)
        }
    )
    settings = Settings()
    assert settings.executor.kind == "nomad"
    assert settings.blobs.url == "s3://bucket"
    assert settings.database_url == "postgresql+asyncpg://db/conveyor"
    assert settings.nomad.datacenters == ("dc1", "dc2")


def test_checkov_finds_nothing_unsuppressed() -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run {CHECKOV_SETUP} (as root) first")
    environment = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "BC_SKIP_MAPPING": "true",
    }
    completed = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=110,
        check=False,
    )
    assert completed.stdout, completed.stderr
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    results = reports[0]["results"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): "
        f"{c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert failed == [], "checkov:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, "checkov did not read the Terraform files"
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in results["skipped_checks"]
        if c["check_result"].get("suppress_comment", "No comment provided") == "No comment provided"
    ]
    assert unexplained == [], "every #checkov:skip needs a reason"
    assert completed.returncode == 0
