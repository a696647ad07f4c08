"""A control plane holds about two descriptors per running instance (its socket and the
connection on it, besides the database's and the clients'): the soft limit many systems start a
process with, 1,024, runs out at a few hundred runs asleep at once. It is raised to the hard limit,
which is the administrator's to set."""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger(__name__)

# where the hard limit is unlimited: the kernel's own ceiling by default (fs.nr_open)
UNLIMITED_TARGET = 1 << 20


def raise_descriptor_limit() -> int:
    """Raises this process's soft limit on open descriptors to its hard limit; returns the soft
    limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("the limit on open descriptors stays at %d: %s", soft, exc)
        return soft
    return target
