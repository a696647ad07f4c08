"""The Prometheus rendering of the usage report."""

from __future__ import annotations

from app.api.metrics import render


def test_metrics_render_queue_and_per_task_counters() -> None:
    text = render(
        {
            "maxConcurrency": 20,
            "queue": {"pending": 3, "running": 2, "waiting": 1},
            "perTask": [
                {"taskSlug": 'hello/"odd"', "attempts": 4, "computeSeconds": 1.5, "costUsd": 0.01}
            ],
            "perDay": [],
        }
    )
    lines = text.splitlines()
    assert 'conveyor_runs{state="pending"} 3' in lines
    assert 'conveyor_runs{state="waiting"} 1' in lines
    assert "conveyor_max_concurrency 20" in lines
    assert 'conveyor_compute_seconds_total{task="hello/\\"odd\\""} 1.5' in lines
    assert 'conveyor_attempts_total{task="hello/\\"odd\\""} 4' in lines
    assert text.endswith("\n")
