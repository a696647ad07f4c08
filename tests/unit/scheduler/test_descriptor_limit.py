"""The control plane raises its soft limit on open descriptors to the hard limit."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys
from scheduler.descriptors import raise_descriptor_limit
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
print(raise_descriptor_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


@pytest.mark.parametrize(
    ("soft", "hard", "expected"),
    [
        (256, 4096, "4096 4096 4096"),  # raised to the hard limit
        (1024, 1024, "1024 1024 1024"),  # nothing to raise
        (4096, 8192, "8192 8192 8192"),
    ],
)
def test_the_soft_limit_becomes_the_hard_one(soft: int, hard: int, expected: str) -> None:
    # in a process of its own: the test runner's limits stay as they are
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(soft), str(hard)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == expected.split()
