"""The process executors' sandbox, platform side: who an instance runs as, what it sees, what it
may use. The instance side (namespaces, entered in the instance's own process) is
`conveyor._sandbox`; docs/deployment.md "What a task sees" says what each level isolates."""

from scheduler.sandbox.cgroups import AttemptCgroup, Cgroups, Limits
from scheduler.sandbox.identities import Identity, IdentityPool
from scheduler.sandbox.policy import SandboxPolicy, SandboxUnavailable

__all__ = [
    "AttemptCgroup",
    "Cgroups",
    "Identity",
    "IdentityPool",
    "Limits",
    "SandboxPolicy",
    "SandboxUnavailable",
]
