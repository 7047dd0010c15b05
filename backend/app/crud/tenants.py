"""Tenants."""

import re
import secrets
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.crud.common import page, violated_constraint
from app.models import (
    Plan,
    Tenant,
    User,
)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64].strip("-") or "tenant"


async def create_tenant(
    *,
    session: AsyncSession,
    name: str,
    plan: Plan = Plan.free,
    tenant_settings: dict[str, Any] | None = None,
) -> Tenant:
    """Add a tenant (not committed) with a unique slug derived from its name."""
    base = slugify(name)
    slug = base
    while True:
        tenant = Tenant(name=name, slug=slug, plan=plan, settings=tenant_settings or {})
        try:
            async with session.begin_nested():  # a clash rolls back to here, then a suffix
                session.add(tenant)
        except IntegrityError as exc:
            if violated_constraint(exc) != "uq_tenant_slug":
                raise
            slug = f"{base}-{secrets.token_hex(3)}"
            continue
        return tenant


async def get_tenant(*, session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def list_tenants(*, session: AsyncSession, skip: int, limit: int) -> tuple[list[Tenant], int]:
    statement = select(Tenant).order_by(col(Tenant.created_at).desc(), col(Tenant.id))
    return await page(session, statement, skip=skip, limit=limit)


async def update_tenant(*, session: AsyncSession, tenant: Tenant, data: dict[str, Any]) -> Tenant:
    tenant.sqlmodel_update(data)
    session.add(tenant)
    await session.commit()
    return tenant


async def tenant_has_superuser(*, session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    statement = select(User.id).where(User.tenant_id == tenant_id, col(User.is_superuser)).limit(1)
    return (await session.exec(statement)).first() is not None


async def delete_tenant(*, session: AsyncSession, tenant: Tenant) -> None:
    """Delete a tenant; its users, projects and tasks go with it (ON DELETE CASCADE)."""
    await session.delete(tenant)
    await session.commit()
