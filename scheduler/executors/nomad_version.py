"""Which Nomad versions the executor supports, checked against `GET /v1/agent/self` at start.

1.5.0 is the floor: the jobs' default datacenters are `["*"]`, a wildcard older servers take as a
datacenter literally named `*` (nothing is ever placed). Everything else the executor relies on
(prestart sidecars, blocking queries, dispatch with an idempotency token) is older than that.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scheduler.executors.nomad_api import NomadApi, NomadError

logger = logging.getLogger(__name__)

MINIMUM = (1, 5, 0)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


class UnsupportedNomad(NomadError):
    """The agent runs a Nomad older than the executor supports."""


def agent_version(self_info: dict[str, Any]) -> str | None:
    """The agent's version from `/v1/agent/self`: `config.Version.Version`, else the member's
    `build` tag (what `nomad version` and `nomad server members` show)."""
    config = self_info.get("config") or {}
    version = config.get("Version")
    if isinstance(version, dict):
        version = version.get("Version")
    if isinstance(version, str) and version:
        return version
    tags = (self_info.get("member") or {}).get("Tags") or {}
    build = tags.get("build")
    return build if isinstance(build, str) and build else None


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


async def check_version(api: NomadApi) -> str | None:
    """The agent's version, once it is known to be supported; None if the token may not read it.

    A token without `agent:read` gets 403: the check is skipped with a warning rather than
    asking for more privilege than dispatching needs.
    """
    try:
        info = await api.agent_self()
    except NomadError as exc:
        if exc.status == 403:
            logger.warning(
                "cannot read the Nomad agent's version (its ACL token has no agent:read): "
                "make sure the cluster runs Nomad %s or later",
                ".".join(map(str, MINIMUM)),
            )
            return None
        raise
    text = agent_version(info)
    parsed = parse_version(text) if text else None
    if parsed is None:
        raise UnsupportedNomad(f"the Nomad agent reported no version Conveyor can read: {text!r}")
    if parsed < MINIMUM:
        raise UnsupportedNomad(
            f"Nomad {text} is not supported: the executor needs {'.'.join(map(str, MINIMUM))} "
            "or later (wildcard datacenters arrived in 1.5.0)"
        )
    return text
