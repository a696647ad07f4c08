"""A task that fails on its first attempt and succeeds on the retry (the dashboard's e2e tests).

The marker file is how the second attempt knows a first one ran: attempts are separate processes.
"""

from pathlib import Path

from conveyor import Retry, Workflows

app = Workflows()


@app.task(retry=Retry(max_retries=2, wait_duration_ms=300, backoff_scaling=1.0))
def fails_once(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("first attempt ran")
        raise RuntimeError(f"first attempt fails on purpose (marker {path.name})")
    return "second attempt made it"
