"""A task on a cron schedule (every second: cron's sixth field is seconds)."""

from conveyor import Workflows

app = Workflows()


@app.task(schedule="* * * * * */1")
def tick(label: str = "tick") -> str:
    return label


@app.task
def plain(n: int) -> int:
    return n
