"""A task with one parameter of each kind the run form knows (the dashboard's e2e tests)."""

from typing import Literal

from conveyor import Workflows

app = Workflows()


@app.task
def describe(
    count: int,
    ratio: float = 1.5,
    loud: bool = False,
    color: Literal["red", "green"] = "red",
    tags: list[str] | None = None,
) -> dict[str, object]:
    """Gives back its input with each value's Python type.

    The run form shows a number field for `count` and `ratio`, a checkbox for `loud`, a choice
    for `color` and a JSON field for `tags`.
    """
    values = {"count": count, "ratio": ratio, "loud": loud, "color": color, "tags": tags}
    return {name: [value, type(value).__name__] for name, value in values.items()}
