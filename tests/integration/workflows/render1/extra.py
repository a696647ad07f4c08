"""Tasks of a second app, merged into `main.app` with `Workflows.from_workflows` (render 1.x)."""

from pathlib import Path

from render import Retry, TaskContext, Workflows

extra = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0), default_plan="starter")


@extra.task(
    name="configured",
    retry=Retry(max_retries=2, wait_duration_ms=10, backoff_scaling=1.5),
    timeout_seconds=120,
    plan="pro",
)
def configured_task(ctx: TaskContext) -> str:
    return "configured"


@extra.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def flaky_once(ctx: TaskContext, marker: str) -> str:
    """Fails its first attempt (attempts are separate processes: a file remembers it)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("first attempt ran")
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt made it"
