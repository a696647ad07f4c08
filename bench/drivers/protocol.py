"""The driver side of the harness's pipe: one JSON request per line in, one JSON reply out.

Drivers run in the interpreter of the system they drive (a peer's own virtualenv), so this
module uses the standard library only. The first line a driver writes is `{"ready": ...}`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

Request = dict[str, Any]
Reply = dict[str, Any]


class WrongResult(Exception):
    """A task answered, but not what it was asked to compute."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WrongResult(what)


def serve(handle: Callable[[Request], Reply], ready: Reply) -> None:
    out = sys.stdout
    # anything else a library prints must not corrupt the replies
    sys.stdout = sys.stderr
    out.write(json.dumps({"ready": ready}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line))
        except Exception as exc:
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
