"""Reading the log clock's stamps (`scheduler.log_clock`): when each line of a log arrived."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

SUFFIX = ".times"


def times_key(log_key: str) -> str:
    """The blob of a log's stamps: one `offset milliseconds` line per growth seen."""
    return log_key + SUFFIX


def parse_stamps(text: str) -> list[tuple[int, int]]:
    """`offset ms` lines → [(offset, ms)], in order; malformed lines are skipped."""
    stamps = []
    for line in text.splitlines():
        offset, _, ms = line.partition(" ")
        if offset.isdigit() and ms.isdigit():
            stamps.append((int(offset), int(ms)))
    return stamps


def line_times(
    data: bytes, stamps: Sequence[tuple[int, int]], ended: datetime | None
) -> list[int | None]:
    """The time (ms since the epoch) each line of `data` was first seen; None when unknown.

    A line not covered by any stamp ends the attempt's output: it gets the attempt's end.
    """
    end_ms = int(ended.timestamp() * 1000) if ended else None
    times: list[int | None] = []
    offset = 0
    index = 0
    for line in split_lines(data):
        offset += len(line)
        while index < len(stamps) and stamps[index][0] < offset:
            index += 1
        times.append(stamps[index][1] if index < len(stamps) else end_ms)
    return times


def split_lines(data: bytes) -> list[bytes]:
    """Lines ended by `\n` only (a `\r` redraws a line in a terminal; it ends none here), each
    with its newline. Splitting UTF-8 there never cuts a character."""
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    return [*lines, pieces[-1]] if pieces[-1] else lines
