"""infra/ as data: the Terraform and Nomad files parsed with python-hcl2, and their blocks."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import hcl2

INFRA = Path(__file__).resolve().parents[3] / "infra"
TERRAFORM = INFRA / "terraform"
NOMAD = INFRA / "nomad"
Body = dict[str, Any]


def _plain(value: Any) -> Any:
    """python-hcl2 output without its quoting of strings and its block markers."""
    if isinstance(value, dict):
        return {
            _plain(key): _plain(item)
            for key, item in value.items()
            if key not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def load(path: Path) -> Body:
    with path.open() as handle:
        parsed: Body = _plain(hcl2.load(handle))
    return parsed


def infra_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".tf", ".hcl"))


def labelled(kind: str, type_: str) -> dict[str, Body]:
    """Every `<kind> "<type_>" "<name>" {…}` block of the Terraform files, by name."""
    found: dict[str, Body] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        for entry in load(path).get(kind, []):
            for name, body in entry.get(type_, {}).items():
                assert name not in found, f"{kind} {type_}.{name} declared twice"
                found[name] = body
    return found


def resources(type_: str) -> dict[str, Body]:
    return labelled("resource", type_)


def policy_documents() -> dict[str, Body]:
    return labelled("data", "aws_iam_policy_document")


def block(body: Body, name: str) -> Body:
    """The single nested block `name` of `body`."""
    nested = body.get(name)
    assert isinstance(nested, list), f"no {name} block"
    assert len(nested) == 1, f"{len(nested)} {name} blocks, expected one"
    found: Body = nested[0]
    return found


def blocks(body: Body, name: str) -> list[Body]:
    found: list[Body] = body.get(name, [])
    return found


def statements(document: Body) -> list[Body]:
    return blocks(document, "statement")


def variable_default(name: str) -> Any:
    for entry in load(TERRAFORM / "variables.tf")["variable"]:
        if name in entry:
            return entry[name]["default"]
    raise AssertionError(f"no variable {name}")


def nomad_job(name: str) -> tuple[str, Body]:
    (jobs,) = load(NOMAD / f"{name}.nomad.hcl")["job"]
    ((job_name, job),) = jobs.items()
    return job_name, job


def tasks(group: Body) -> dict[str, Body]:
    return {name: body for entry in blocks(group, "task") for name, body in entry.items()}


def single_group(job: Body) -> Body:
    ((_, group),) = block(job, "group").items()
    found: Body = group
    return found


def task_environment(task: Body) -> dict[str, str]:
    """The task's `env` plus the names its env templates set (secrets from Nomad Variables)."""
    environment = dict(block(task, "env"))
    for template in blocks(task, "template"):
        if template.get("env"):
            for line in template["data"].splitlines():
                name, equals, value = line.strip().partition("=")
                if equals and not name.startswith("{{"):
                    environment[name] = value
    return environment
