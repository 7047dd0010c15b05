"""row-level security on every tenant-owned table; the service role's privileges

Revision ID: 5c1e7a9d2b40
Revises: 9453a8d00776
Create Date: 2026-12-03 08:00:00+00:00

A new tenant-owned table: one `enable_tenant_rls("table")` line in its own migration (and
`disable_tenant_rls` in its downgrade). See app/core/rls.py.
"""

from collections.abc import Sequence

from app.core.rls import (
    disable_tenant_rls,
    enable_tenant_rls,
    grant_to_service,
    revoke_from_service,
)

revision: str = "5c1e7a9d2b40"
down_revision: str | None = "9453a8d00776"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["tenant", "user", "project", "task", "login", "refresh_token", "password_reset_token"]


def upgrade() -> None:
    enable_tenant_rls("tenant", key="id")
    enable_tenant_rls("user")
    enable_tenant_rls("project")
    enable_tenant_rls("task")
    # Sign-ins and their tokens hang off a user: visible exactly when the user is.
    enable_tenant_rls("login", through=("user", "user_id"))
    enable_tenant_rls("refresh_token", through=("login", "login_id"))
    enable_tenant_rls("password_reset_token", through=("user", "user_id"))
    # Throttle rows are keyed by email and client address, not by tenant: no policy.
    grant_to_service("login_throttle")


def downgrade() -> None:
    revoke_from_service("login_throttle")
    for table in reversed(TABLES):
        disable_tenant_rls(table)
