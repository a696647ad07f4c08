"""Human-readable views of the API's JSON: tables and a run's details."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor._jsonschema import describe

Obj = dict[str, Any]


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True, indent=indent)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def short_time(value: str | None) -> str:
    if not value:
        return "-"
    return _parse(value).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (_parse(end) - _parse(start)).total_seconds()
    return f"{seconds:.2f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def result_value(run: Obj) -> Any:
    """The task's return value: the wire wraps it in a one-element list (Render's rule)."""
    results = run.get("results") or []
    return results[0] if len(results) == 1 else results


def runs_table(runs: Sequence[Obj]) -> str:
    rows = [
        [
            run["id"],
            run.get("taskSlug", run.get("taskId", "")),
            run["status"],
            str(len(run.get("attempts", []))),
            short_time(run.get("createdAt")),
            duration(run.get("startedAt"), run.get("completedAt")),
        ]
        for run in runs
    ]
    return table(["ID", "TASK", "STATUS", "ATTEMPTS", "CREATED", "DURATION"], rows)


def tasks_table(tasks: Sequence[Obj]) -> str:
    rows = []
    for task in tasks:
        options = task.get("options") or {}
        timeout = options.get("timeoutSeconds")
        rows.append(
            [
                task.get("slug", task["name"]),
                task["id"],
                options.get("plan") or "-",
                f"{timeout}s" if timeout else "-",
                ", ".join(p["name"] for p in task.get("parameters") or []) or "-",
            ]
        )
    return table(["TASK", "ID", "PLAN", "TIMEOUT", "PARAMETERS"], rows)


def parameter_line(param: Obj) -> str:
    """`name: type = default`, the type from the schema when the task registered one."""
    schema = param.get("schema")
    kind = describe(schema) if isinstance(schema, dict) and schema else param.get("type")
    line = str(param["name"]) + (f": {kind}" if kind else "")
    if param.get("hasDefault"):
        line += f" = {param.get('defaultValue') or 'null'}"
    return line


def task_details(task: Obj) -> str:
    lines = [f"{task.get('slug', task['name'])}  {task['id']}  version {task['workflowVersionId']}"]
    if task.get("description"):
        lines += ["", *("  " + line for line in task["description"].splitlines()), ""]
    params = task.get("parameters") or []
    lines.append("  parameters:" if params else "  parameters: none")
    lines += [f"    {parameter_line(p)}" for p in params]
    options = task.get("options") or {}
    for key in ("timeoutSeconds", "plan", "schedule", "concurrency"):
        if options.get(key) is not None:
            lines.append(f"  {key}: {options[key]}")
    retry = options.get("retry")
    if retry:
        lines.append(
            f"  retry: {retry['maxRetries']} times, first after {retry['waitDurationMs']} ms, "
            f"then times {retry['factor']}"
        )
    return "\n".join(lines)


def run_details(run: Obj) -> str:
    lines = [f"{run['id']}  {run.get('taskSlug', run.get('taskId'))}  {run['status']}"]
    if run.get("waiting"):
        lines[0] += " (waiting on children)"
    fields = [
        ("created", short_time(run.get("createdAt"))),
        ("started", short_time(run.get("startedAt"))),
        ("completed", short_time(run.get("completedAt"))),
        ("root", run.get("rootTaskRunId", "")),
        ("parent", run.get("parentTaskRunId") or "-"),
        ("input", to_json(run.get("input"))),
    ]
    if run["status"] == "succeeded":
        fields.append(("result", to_json(result_value(run))))
    if run.get("error"):
        fields.append(("error", run["error"]))
    lines += [f"  {name:<10}{value}" for name, value in fields]
    attempts = run.get("attempts") or []
    if attempts:
        lines.append("  attempts:")
    for item in attempts:
        lines.append(_attempt_line(item))
        if item.get("error"):
            lines.append(f"      error: {item['error']}")
    if run.get("stackTrace"):
        lines += ["  stack trace:", *("    " + ln for ln in run["stackTrace"].splitlines())]
    return "\n".join(lines)


def _attempt_line(item: Obj) -> str:
    took = duration(item.get("startedAt"), item.get("completedAt"))
    outcome = item.get("outcome") or "-"
    cost = item.get("costUsd")
    extra = f"  ${cost:.6f}" if isinstance(cost, int | float) else ""
    return (
        f"    #{item['attempt']}  {item['status']:<10} {outcome:<22} "
        f"started {short_time(item.get('startedAt'))}  took {took}{extra}"
    )
