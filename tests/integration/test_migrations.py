"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from core.db.engine import alembic_config, create_engine, migrate
from core.db.models import Base

pytestmark = pytest.mark.anyio


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # a second run changes nothing

        def differences(connection: Any) -> list[Any]:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_0013_gives_each_recorded_step_the_size_its_history_limit_counts(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    url = engine.url.render_as_string(hide_password=False)

    def upgrade_to(connection: Any, revision: str) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    step = (
        "INSERT INTO flow_steps (run_id, seq, type, name, input_hash, input_json, status,"
        " flow_attempt, result_json, attempts, started_at) VALUES (:run, :seq, 'inline', 'f',"
        " 'h', :input, :status, 0, :result, '[]', CURRENT_TIMESTAMP)"
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to, "0012")
        async with engine.connect() as connection:
            # a step log without its runs: the foreign key to task_runs is not what this tests
            if connection.dialect.name == "postgresql":
                await connection.exec_driver_sql("SET session_replication_role = replica")
            else:
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for seq, input_json, result_json in ((1, "[1,2]", '"done"'), (2, '["x"]', None)):
                await connection.execute(
                    text(step),
                    {
                        "run": "trn-1",
                        "seq": seq,
                        "input": input_json,
                        "status": "succeeded" if result_json else "running",
                        "result": result_json,
                    },
                )
            await connection.commit()
        await migrate(engine)
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT seq, payload_chars, input_key, result_key FROM flow_steps ORDER BY seq"
                )
            )
            assert [tuple(row) for row in rows] == [(1, 11, None, None), (2, 5, None, None)]
    finally:
        await engine.dispose()
