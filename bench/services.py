"""What the peers and PostgreSQL configurations need on this machine, checked before starting."""

from __future__ import annotations

import asyncio

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# dedicated Redis databases: the harness flushes these, and only these
REDIS_DB = {"celery": 14, "rq": 15}


def redis_url(peer: str) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB[peer]}"


async def redis_version() -> str | None:
    """Redis's version (`INFO server`, spoken in RESP), or None when it does not answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(REDIS_HOST, REDIS_PORT), 5)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        await writer.drain()
        header = await asyncio.wait_for(reader.readline(), 5)
        if not header.startswith(b"$"):
            return None
        body = await reader.readexactly(int(header[1:]) + 2)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1]
    return "unknown"
