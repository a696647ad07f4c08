"""Flow steps: large inputs and results in the blob store, and the size the history limit counts

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_steps") as table:
        table.alter_column("input_json", existing_type=sa.Text(), nullable=True)
        table.add_column(sa.Column("input_key", sa.String(length=300), nullable=True))
        table.add_column(sa.Column("result_key", sa.String(length=300), nullable=True))
        table.add_column(
            sa.Column("payload_chars", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE flow_steps SET payload_chars ="
        " length(input_json) + coalesce(length(result_json), 0)"
    )


def downgrade() -> None:
    # blob-held payloads cannot go back into a NOT NULL column: refuse rather than lose them
    bind = op.get_bind()
    held = bind.execute(
        sa.text(
            "SELECT count(*) FROM flow_steps WHERE input_key IS NOT NULL OR result_key IS NOT NULL"
        )
    ).scalar_one()
    if held:
        raise RuntimeError(
            f"{held} flow steps keep their input or result in the blob store; "
            "downgrading would lose them"
        )
    with op.batch_alter_table("flow_steps") as table:
        table.drop_column("payload_chars")
        table.drop_column("result_key")
        table.drop_column("input_key")
        table.alter_column("input_json", existing_type=sa.Text(), nullable=False)
