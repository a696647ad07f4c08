"""The bench's jobs for RQ (a work horse forked per job, Redis).

Imported by `rq worker` and by the RQ driver, both in the RQ virtualenv the harness builds
under bench/.cache. A job cannot block on other jobs in RQ, so parents use dependencies.
"""

from __future__ import annotations

from rq import Queue, get_current_job  # type: ignore[import-not-found]

QUEUE = "bench"


def add(a: int, b: int) -> int:
    return a + b


def total() -> int:
    """The sum of the results of every job this one depends on."""
    # the dependency ids stored with the job (RQ empties the set it keeps for waiting ones)
    parts = get_current_job().fetch_dependencies()
    return sum(int(part.return_value()) for part in parts)


def fan(n: int) -> str:
    """W3: enqueues `n` children and a `total` that waits for them; returns total's job id."""
    job = get_current_job()
    queue = Queue(QUEUE, connection=job.connection)
    children = queue.enqueue_many([Queue.prepare_data(add, (i, i)) for i in range(n)])
    return str(queue.enqueue(total, depends_on=children).id)


def step() -> int:
    """W4: one level of a chain, each job depending on the one before: 1 + the previous."""
    job = get_current_job()
    before = job.dependency
    return 1 + (int(before.return_value()) if before is not None else 0)
