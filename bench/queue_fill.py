"""W5's deep queue: copies of one pending run, written straight into Conveyor's PostgreSQL.

Creating 100,000 runs through the API would take longer than the whole bench, so one run is
created through the API (while no scheduler runs) and every row that mentions its id is copied
with a new id. Nothing here names a table or column of Conveyor's schema, so the copy keeps
working when the schema changes; a row it cannot copy faithfully is an error, not a guess.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from core.ids import new_id

TEXT_TYPES = ("character varying", "text")


class QueueFillError(RuntimeError):
    """The template run's rows cannot be copied without knowing what they mean."""


async def _rows_mentioning(connection: Any, run_id: str) -> dict[str, list[asyncpg.Record]]:
    columns = await connection.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    found: dict[str, list[asyncpg.Record]] = {}
    for column in columns:
        if column["data_type"] not in TEXT_TYPES:
            continue
        table, name = column["table_name"], column["column_name"]
        if table in found:
            continue
        rows = await connection.fetch(f'SELECT * FROM "{table}" WHERE "{name}" = $1', run_id)
        if rows:
            found[table] = rows
    return found


def _copy(row: asyncpg.Record, run_id: str, new_run_id: str, offset: int) -> tuple[Any, ...]:
    values = []
    for value in row.values():
        if value == run_id:
            value = new_run_id
        elif isinstance(value, datetime):
            # later copies look created later, as runs submitted one after another would
            value = value + timedelta(microseconds=offset)
        values.append(value)
    return tuple(values)


async def fill_queue(dsn: str, run_id: str, copies: int) -> list[str]:
    """Adds `copies` pending runs like `run_id`; returns their ids in the order they sort."""
    prefix, _ = run_id.split("-", 1)
    # ids carry their creation time: copies sort after the template, one millisecond apart
    base_ms = int(time.time() * 1000) + 1
    ids = [new_id(prefix, now_ms=base_ms + i) for i in range(copies)]
    connection = await asyncpg.connect(dsn)
    try:
        tables = await _rows_mentioning(connection, run_id)
        if not tables:
            raise QueueFillError(f"no row mentions the template run {run_id}")
        for table, rows in tables.items():
            if len(rows) != 1:
                raise QueueFillError(f"{len(rows)} rows of {table} mention {run_id}; expected 1")
            row = rows[0]
            records = [_copy(row, run_id, new, i + 1) for i, new in enumerate(ids)]
            try:
                await connection.copy_records_to_table(
                    table, records=records, columns=list(row.keys())
                )
            except asyncpg.UniqueViolationError as exc:
                # a row of its own identity, not the run's: copying it needs to know its meaning
                raise QueueFillError(f"cannot copy {table}'s row of {run_id}: {exc}") from None
    finally:
        await connection.close()
    return ids
