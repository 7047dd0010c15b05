"""Row-level security in migrations: one call per tenant-owned table.

    enable_tenant_rls("comment")                         # rows carry tenant_id
    enable_tenant_rls("login", through=("user", "user_id"))  # rows hang off a user

Each table gets RLS enabled and forced (the owner is subject to it too) and one policy,
`tenant_isolation`, for every command: a row is visible and writable when its tenant is
the transaction's `app.tenant_id`, or when `app.cross_tenant` is 'on' (see
`app.core.db.set_tenant_context`). Unset settings show nothing and refuse every write.
The service role (DATABASE_URL's user, when it is not the owner) gets exactly the table
privileges it needs, table by table: a table nobody granted stays closed to it.
"""

from alembic import context, op

POLICY = "tenant_isolation"
# Each setting read through a scalar subquery: PostgreSQL evaluates it once per statement
# (an InitPlan), not once per row it checks; a count over a thousand rows notices.
CROSS_TENANT = "(SELECT current_setting('app.cross_tenant', true)) = 'on'"
CURRENT_TENANT = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
DML = "SELECT, INSERT, UPDATE, DELETE"


def service_role() -> str | None:
    """The role the service connects as; None when it is the migrating role itself."""
    role = context.config.attributes.get("service_role")
    return str(role) if role else None


def grant_to_service(table: str, privileges: str = DML) -> None:
    role = service_role()
    if role:
        op.execute(f'GRANT {privileges} ON "{table}" TO "{role}"')


def revoke_from_service(table: str) -> None:
    role = service_role()
    if role:
        op.execute(f'REVOKE ALL ON "{table}" FROM "{role}"')


def enable_tenant_rls(
    table: str, *, key: str = "tenant_id", through: tuple[str, str] | None = None
) -> None:
    """Confine `table` to the current tenant: by its own `key` column (`id` for the tenant
    table), or `through` a parent table ("user", "user_id"): a row is visible exactly when
    its parent row is, under the parent's own policy."""
    if through is None:
        own_tenant = f"{key} = {CURRENT_TENANT}"
    else:
        parent, column = through
        own_tenant = f'EXISTS (SELECT 1 FROM "{parent}" p WHERE p.id = "{table}".{column})'  # noqa: S608 (names from migrations)
    condition = f"{CROSS_TENANT} OR {own_tenant}"
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING ({condition}) WITH CHECK ({condition})')
    grant_to_service(table)


def disable_tenant_rls(table: str) -> None:
    revoke_from_service(table)
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
