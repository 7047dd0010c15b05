"""task unique tenant id

UNIQUE (tenant_id, id) on task, as project and user have: what a composite foreign key from
a table that hangs off a task (`(tenant_id, task_id) -> task (tenant_id, id)`) points at.

Revision ID: 6923fdb424b3
Revises: a2a8499050b1
Create Date: 2026-12-04 18:44:49.485098+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6923fdb424b3"
down_revision: str | None = "a2a8499050b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint(op.f("uq_task_tenant_id_id"), "task", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_task_tenant_id_id"), "task", type_="unique")
