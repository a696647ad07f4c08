"""docs/deployment.md as written: every command is one this file runs or checks.

Run here: the secrets key and attempt secret commands, the database preparation (its SQL, on a
fresh PostgreSQL database under another role name), the migration snippet, `conveyor keys
create` against that database as the new role, and the `jq` filter on allocations in the shape
Nomad's API lists them. Checked (no cloud here): every program is a listed prerequisite, every
`terraform output` exists, every `nomad job run -var` is a variable of its job and gives each
one without a default, `nomad var put` puts exactly what the jobs' templates read, and every
`--build-arg` is an `ARG` of its Dockerfile.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from tests.integration.databases import POSTGRES_ADMIN_DSN, fresh_database
from tests.unit.infra.hcl_files import NOMAD, TERRAFORM, load

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deployment.md"
PYTHON = Path(sys.executable)
SHELL_WORDS = {"cd", "cat", "export", "for", "do", "done"}
RUN_IN_AN_ALLOCATION = {"conveyor"}  # `nomad alloc exec … conveyor …`, and step 7's CLI


@cache
def guide() -> str:
    return GUIDE.read_text()


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", guide(), flags=re.S)


def without_heredocs(block: str) -> tuple[str, dict[str, str]]:
    """The block without its here-documents' bodies, and those bodies by their delimiter."""
    kept: list[str] = []
    bodies: dict[str, str] = {}
    lines = iter(block.splitlines())
    for line in lines:
        kept.append(line)
        found = re.search(r"<<'(\w+)'", line)
        if found:
            body = []
            for inner in lines:
                if inner == found.group(1):
                    break
                body.append(inner)
            bodies[found.group(1)] = "\n".join(body)
    return "\n".join(kept), bodies


def logical_lines(block: str) -> Iterator[str]:
    """Lines joined across `\\`, an open quote and an open parenthesis (bash arrays)."""
    pending = ""
    for line in without_heredocs(block)[0].splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        if pending.count("'") % 2 or pending.count("(") != pending.count(")"):
            continue
        if pending.strip():
            yield pending
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"


def substitutions(line: str) -> tuple[str, list[str]]:
    """The line with each `$(…)` replaced by a word, and the commands inside them."""
    out: list[str] = []
    inner: list[str] = []
    i = 0
    quoted = False
    while i < len(line):
        if not quoted and line.startswith("$(", i):
            depth, j, inner_quoted = 1, i + 2, False
            while depth:
                char = line[j]
                if char == "'":
                    inner_quoted = not inner_quoted
                elif not inner_quoted:
                    depth += {"(": 1, ")": -1}.get(char, 0)
                j += 1
            inner.append(line[i + 2 : j - 1])
            out.append("SUBSTITUTED")
            i = j
            continue
        quoted ^= line[i] == "'"
        out.append(line[i])
        i += 1
    return "".join(out), inner


def commands(line: str) -> Iterator[list[str]]:
    """Each simple command of a line (pipelines and `;`/`&&` split, `$(…)` looked into)."""
    outer, inner = substitutions(line)
    for each in inner:
        yield from commands(each)
    if re.match(r"\w+=\(", outer):  # a bash array: words, not a command
        return
    tokens = shlex.split(outer.replace(";", " ; "), comments=True)
    current: list[str] = []
    for token in [*tokens, ";"]:
        if token in ("|", "&&", ";"):
            words = list(current)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value command
                words.pop(0)
            if words:
                yield words
            current = []
        else:
            current.append(token)


def all_commands() -> list[list[str]]:
    return [c for block in sh_blocks() for line in logical_lines(block) for c in commands(line)]


def prerequisites() -> set[str]:
    section = guide().split("## 0. What you need", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z0-9-]+)`", section))


def test_every_program_the_walkthrough_runs_is_a_prerequisite() -> None:
    programs = {words[0] for words in all_commands()}
    assert {"terraform", "aws", "docker", "nomad", "psql", "jq", "openssl", "python3"} <= programs
    missing = programs - prerequisites() - SHELL_WORDS - RUN_IN_AN_ALLOCATION
    assert not missing, f"used but not listed under '0. What you need': {missing}"


def test_every_terraform_output_it_reads_exists() -> None:
    outputs = {name for entry in load(TERRAFORM / "outputs.tf")["output"] for name in entry}
    read = set(re.findall(r"terraform -chdir=infra/terraform output -raw (\w+)", guide()))
    assert read and read <= outputs, read - outputs


def job_variables(job_file: Path) -> dict[str, bool]:
    """Each variable of a job file, and whether it has a default."""
    return {
        name: "default" in body
        for entry in load(job_file)["variable"]
        for name, body in entry.items()
    }


def test_each_nomad_job_run_gives_its_job_the_variables_it_takes() -> None:
    arrays: dict[str, list[str]] = {}
    runs = 0
    for block in sh_blocks():
        for line in logical_lines(block):
            array = re.fullmatch(r"(\w+)=\((.*)\)", line, flags=re.S)
            if array:
                arrays[array.group(1)] = shlex.split(array.group(2))
                continue
            for words in commands(line):
                if words[:3] != ["nomad", "job", "run"]:
                    continue
                runs += 1
                expanded: list[str] = []
                for word in words[3:]:
                    name = re.fullmatch(r"\$\{(\w+)\[@\]\}", word)
                    expanded += arrays[name.group(1)] if name else [word]
                given = {
                    value.split("=", 1)[0]
                    for flag, value in itertools.pairwise(expanded)
                    if flag == "-var"
                }
                variables = job_variables(REPO / expanded[-1])
                assert given <= variables.keys(), (expanded[-1], given - variables.keys())
                required = {name for name, has_default in variables.items() if not has_default}
                assert required <= given, (expanded[-1], required - given)
    assert runs == 3


def test_nomad_var_put_puts_what_the_jobs_read() -> None:
    (put,) = [w for w in all_commands() if w[:3] == ["nomad", "var", "put"]]
    keys = {word.split("=", 1)[0] for word in put[4:]}
    read: set[str] = set()
    for name in ("conveyor-server", "conveyor-scheduler", "conveyor-builder"):
        text = (NOMAD / f"{name}.nomad.hcl").read_text()
        assert f'nomadVar "nomad/jobs/{name}"' in text
        read |= set(re.findall(r"\{\{\s*(?:with\s+)?\.(\w+)\s*\}\}", text))
    assert keys == read


def test_build_args_are_arguments_of_their_dockerfile() -> None:
    builds = [w for w in all_commands() if w[:2] == ["docker", "build"]]
    assert len(builds) == 2
    for words in builds:
        dockerfile = words[words.index("-f") + 1] if "-f" in words else "Dockerfile"
        arguments = set(re.findall(r"^ARG (\w+)", (REPO / dockerfile).read_text(), flags=re.M))
        given = {words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "--build-arg"}
        assert given <= arguments, (dockerfile, given - arguments)


def test_no_plain_http_address_outside_the_cluster() -> None:
    for block in sh_blocks():
        for url in re.findall(r"http://[^\s\"')]+", block):
            pytest.fail(f"plain HTTP in the walkthrough: {url}")


def assignment(name: str) -> str:
    """The command of `NAME=$(command)` in the walkthrough."""
    (found,) = re.findall(rf"^{name}=\$\((.*)\)$", guide(), flags=re.M)
    return str(found)


def test_the_secrets_it_generates_are_accepted() -> None:
    secrets_key = subprocess.run(
        shlex.split(assignment("SECRETS_KEY")), capture_output=True, text=True, check=True
    ).stdout.strip()
    Fernet(secrets_key.encode())  # what CONVEYOR_BUILDS__SECRETS_KEY must be
    attempt_secret = subprocess.run(
        shlex.split(assignment("ATTEMPT_SECRET")), capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", attempt_secret)


def test_the_jq_filter_picks_a_running_allocation() -> None:
    (line,) = [line for b in sh_blocks() for line in logical_lines(b) if "| jq " in line]
    jq = next(words for words in commands(line) if words[0] == "jq")
    # `nomad job allocs -json`: AllocationListStub objects, newest first
    allocations = [
        {"ID": "3c1f…-stopped", "ClientStatus": "complete", "DesiredStatus": "stop"},
        {"ID": "9a2e…-running", "ClientStatus": "running", "DesiredStatus": "run"},
        {"ID": "5d7b…-running", "ClientStatus": "running", "DesiredStatus": "run"},
    ]
    done = subprocess.run(jq, input=json.dumps(allocations), capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "9a2e…-running\n"), done.stderr


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def test_database_preparation_migration_and_first_key_run_as_written(tmp_path: Path) -> None:
    """Step 3's SQL, step 4's migration and step 6's key, on local PostgreSQL (no TLS here)."""
    (block,) = [b for b in sh_blocks() if "psql " in b]
    (psql,) = [w for line in logical_lines(block) for w in commands(line) if w[0] == "psql"]
    assert psql[1] == "host=${ENDPOINT%:*} dbname=conveyor user=conveyor_admin sslmode=require"
    sql = without_heredocs(block)[1]["SQL"]
    url_shape = re.search(
        r"postgresql\+asyncpg://conveyor:<password>@<host>:5432/conveyor\S*", guide()
    )
    assert url_shape is not None
    assert (
        url_shape.group(0)
        == "postgresql+asyncpg://conveyor:<password>@<host>:5432/conveyor?ssl=require"
    )
    (docker_run,) = [w for w in all_commands() if w[:2] == ["docker", "run"]]
    assert docker_run[-2:] == ["conveyor", "migrate"]
    assert any(w.startswith("CONVEYOR_DATABASE__URL=") for w in docker_run)
    (create_key,) = [w for w in all_commands() if "keys" in w and "create" in w]
    key_command = create_key[create_key.index("conveyor") :]

    role = f"conveyor_walk_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with fresh_database("postgres", tmp_path) as admin_url:
        database = admin_url.rsplit("/", 1)[1]
        statements = (
            sql.replace("<a long random password>", password)
            .replace("ROLE conveyor ", f"ROLE {role} ")
            .replace("DATABASE conveyor ", f'DATABASE "{database}" ')
            .replace("TO conveyor;", f"TO {role};")
        )
        try:
            done = subprocess.run(
                [
                    "psql",
                    f"host=127.0.0.1 dbname={database} user=postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                ],
                input=statements,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            url = f"postgresql+asyncpg://{role}:{password}@127.0.0.1:5432/{database}"
            migrate = [str(PYTHON.with_name("conveyor")), "migrate"]
            env = {"CONVEYOR_DATABASE__URL": url, "PATH": "/usr/bin:/bin"}
            for expected in ("migrated the schema from revision none to ", "the schema is at"):
                done = subprocess.run(
                    migrate, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
                )
                assert done.returncode == 0, done.stderr
                assert done.stdout.startswith(expected), done.stdout
            done = subprocess.run(
                [str(PYTHON.with_name(key_command[0])), *key_command[1:]],
                env={
                    "CONVEYOR_DATABASE__URL": url,
                    "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
                    "PATH": "/usr/bin:/bin",
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("cvy_") and "(laptop)" in done.stderr
            owner = asyncio.run(_owner_of_tables(admin_url.replace("+asyncpg", "")))
            assert owner == {role}, "the schema belongs to the role the control plane logs in as"
        finally:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            asyncio.run(_admin(f"DROP ROLE IF EXISTS {role}"))


async def _owner_of_tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tableowner FROM pg_tables WHERE schemaname='public'")
    finally:
        await connection.close()
    return {row["tableowner"] for row in rows}
