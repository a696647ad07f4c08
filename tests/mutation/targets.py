"""The modules that guard tenants and money, each with the tests that must kill its mutants.

`quick` targets are the CI subset: their tests are pure and fast, so mutmut finishes them in
well under a minute each on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    paths: tuple[str, ...]  # the files mutated
    tests: tuple[str, ...]  # the tests run against each mutant (those that reach it)
    quick: bool = False
    # in the CI subset, these instead of `tests` (the fastest that still kill every mutant)
    quick_tests: tuple[str, ...] | None = None


TARGETS: tuple[Target, ...] = (
    Target(
        "request guard",
        ("app/api/request_guard.py",),
        ("tests/unit/app/test_request_guard_rules.py", "tests/unit/app/test_request_guard.py"),
        quick=True,
        quick_tests=("tests/unit/app/test_request_guard_rules.py",),
    ),
    Target(
        "task environment",
        ("scheduler/executors/environment.py",),
        ("tests/unit/scheduler/test_environment_rules.py",),
        quick=True,
    ),
    Target(
        "settings (pass_env, plans, retry default)",
        ("core/settings.py",),
        (
            "tests/unit/scheduler/test_environment_rules.py",
            "tests/unit/scheduler/test_admission_rules.py",
            "tests/unit/core/test_retry_delays.py",
            "tests/unit/scheduler/test_registration_payload.py",
        ),
        quick=True,
    ),
    Target(
        "retry policy",
        ("core/domain.py", "scheduler/runs/retries.py"),
        (
            "tests/unit/core/test_retry_delays.py",
            "tests/unit/core/test_domain_values.py",
            "tests/unit/scheduler/test_registration_payload.py",
        ),
        quick=True,
    ),
    Target(
        "admission and limits",
        ("scheduler/runs/admission_rules.py",),
        ("tests/unit/scheduler/test_admission_rules.py",),
        quick=True,
    ),
    Target(
        "metering",
        ("scheduler/runs/metering.py",),
        ("tests/unit/scheduler/test_admission_rules.py",),
        quick=True,
    ),
    Target(
        "webhook verification",
        ("app/github/signature.py",),
        ("tests/unit/app/test_webhook_signature.py",),
        quick=True,
    ),
    Target(
        "instance socket framing",
        ("scheduler/http1.py",),
        ("tests/unit/scheduler/test_http1.py",),
        quick=True,
    ),
    Target(
        "API keys",
        ("core/auth.py", "app/api/auth.py"),
        ("tests/unit/core/test_api_keys.py", "tests/unit/app/test_callers.py"),
    ),
)
