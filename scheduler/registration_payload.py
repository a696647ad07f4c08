"""The `/register-tasks` body as domain values, checked for shape and for sense."""

from __future__ import annotations

from typing import Any

from croniter import croniter

from core.domain import RetryPolicy, TaskOptions, TaskParameter, TaskSpec
from core.settings import Settings

MAX_DESCRIPTION_CHARS = 10_000
# The backoff factor of a retry that gives none. Render documents 1.5 for its TypeScript SDK,
# which leaves the key out when `backoffScaling` is not set; the Python SDKs always send one.
DEFAULT_FACTORS = {"typescript": 1.5}
FALLBACK_FACTOR = 1.0


class InvalidRegistration(ValueError):
    """The worker's task list is malformed or breaks a rule; the message says which."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidRegistration(message)


def worker_language(user_agent: str) -> str:
    """The language of the SDK behind a `User-Agent` (`render-sdk-typescript/1.0.0 (node/…)`)."""
    product = user_agent.strip().split("/", 1)[0].lower()
    if product.endswith("-typescript") or product.endswith("-javascript"):
        return "typescript"
    return "python"


def _retry(raw: Any, task: str, language: str) -> RetryPolicy | None:
    if raw is None:
        return None
    _require(isinstance(raw, dict), f"task {task!r}: retry must be an object")
    factor = raw.get("factor")
    if "factor" not in raw:  # JSON.stringify drops a key whose value is `undefined`
        factor = DEFAULT_FACTORS.get(language, FALLBACK_FACTOR)
    try:
        policy = RetryPolicy(
            int(raw.get("max_retries", 0)),
            int(raw.get("wait_duration_ms", 0)),
            float(factor),
        )
    except (TypeError, ValueError):
        raise InvalidRegistration(f"task {task!r}: retry values must be numbers") from None
    _require(policy.max_retries >= 0, f"task {task!r}: max_retries must be >= 0")
    _require(policy.wait_duration_ms >= 0, f"task {task!r}: wait_duration_ms must be >= 0")
    _require(policy.factor >= 1.0, f"task {task!r}: retry factor must be >= 1")
    return policy


def _options(raw: Any, task: str, settings: Settings, language: str) -> TaskOptions:
    raw = raw or {}
    _require(isinstance(raw, dict), f"task {task!r}: options must be an object")
    timeout = raw.get("timeout_seconds")
    if timeout is not None:
        low, high = settings.limits.min_timeout_seconds, settings.limits.max_timeout_seconds
        _require(
            isinstance(timeout, int) and low <= timeout <= high,
            f"task {task!r}: timeout_seconds must be an integer from {low} to {high}",
        )
    plan = raw.get("plan")
    _require(
        plan is None or plan in settings.plan_names,
        f"task {task!r}: unknown plan {plan!r} (plans: {', '.join(settings.plan_names)})",
    )
    concurrency = raw.get("concurrency")
    _require(
        concurrency is None or (isinstance(concurrency, int) and concurrency > 0),
        f"task {task!r}: concurrency must be a positive integer",
    )
    schedule = raw.get("schedule")
    _require(
        schedule is None or (isinstance(schedule, str) and croniter.is_valid(schedule)),
        f"task {task!r}: schedule {schedule!r} is not a cron expression "
        "(5 fields, or 6 with seconds last)",
    )
    return TaskOptions(
        retry=_retry(raw.get("retry"), task, language),
        timeout_seconds=timeout,
        plan=plan,
        schedule=schedule,
        concurrency=concurrency,
    )


def _parameters(raw: Any, task: str) -> tuple[TaskParameter, ...]:
    raw = raw or []
    _require(isinstance(raw, list), f"task {task!r}: parameters must be a list")
    parameters = []
    for item in raw:
        _require(
            isinstance(item, dict) and isinstance(item.get("name"), str),
            f"task {task!r}: every parameter needs a name",
        )
        # Conveyor's SDK adds each parameter's JSON Schema; Render's sends none.
        schema = item.get("schema")
        _require(
            schema is None or isinstance(schema, dict),
            f"task {task!r}: the schema of parameter {item['name']!r} must be a JSON object",
        )
        parameters.append(
            TaskParameter(
                name=item["name"],
                type=item.get("type"),
                has_default=bool(item.get("has_default", False)),
                default_value=item.get("default_value"),
                schema=schema,
            )
        )
    return tuple(parameters)


def _description(raw: Any, task: str) -> str | None:
    _require(raw is None or isinstance(raw, str), f"task {task!r}: description must be a string")
    text = (raw or "").strip()[:MAX_DESCRIPTION_CHARS]
    return text or None


def _kind(raw: Any, task: str) -> str:
    _require(raw in (None, "task", "flow"), f"task {task!r}: kind must be 'task' or 'flow'")
    return "flow" if raw == "flow" else "task"


def parse_registration(
    body: Any, settings: Settings, *, language: str = "python"
) -> list[TaskSpec]:
    """The tasks a worker registered; `language` is its SDK's (see `worker_language`)."""
    _require(
        isinstance(body, dict) and isinstance(body.get("tasks"), list), "expected {tasks: [...]}"
    )
    specs: list[TaskSpec] = []
    seen: set[str] = set()
    for raw in body["tasks"]:
        _require(isinstance(raw, dict), "every task must be an object")
        name = raw.get("name")
        _require(isinstance(name, str) and name.strip() != "", "every task needs a name")
        _require(name not in seen, f"task {name!r} is registered twice")
        seen.add(name)
        spec = TaskSpec(
            name=name,
            options=_options(raw.get("options"), name, settings, language),
            parameters=_parameters(raw.get("parameters"), name),
            description=_description(raw.get("description"), name),
            language=language,
            kind=_kind(raw.get("kind"), name),
        )
        required = [p.name for p in spec.parameters if not p.has_default]
        _require(
            spec.options.schedule is None or not required,
            f"task {name!r} has a schedule but needs {', '.join(required)}: "
            "a scheduled run starts with no input",
        )
        specs.append(spec)
    _require(bool(specs), "the worker registered no tasks")
    return specs
