"""Users and the caller's lookup."""

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.security import hash_password
from app.crud.auth import revoke_user_logins
from app.crud.common import Row, commit_or_conflict, page
from app.crud.tenants import create_tenant
from app.models import (
    Login,
    PasswordResetToken,
    Plan,
    Role,
    Task,
    Tenant,
    User,
    UserCreate,
    utc_now,
)


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    return (await session.exec(select(User).where(User.email == email.lower()))).first()


async def get_user(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, user_id: uuid.UUID
) -> User | None:
    statement = select(User).where(User.id == user_id)
    if tenant_id is not None:
        statement = statement.where(User.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def list_users(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, skip: int, limit: int
) -> tuple[list[User], int]:
    statement = select(User).order_by(col(User.created_at), col(User.id))
    if tenant_id is not None:
        statement = statement.where(User.tenant_id == tenant_id)
    return await page(session, statement, skip=skip, limit=limit)


async def add_user(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_in: UserCreate,
    role: Role,
    is_superuser: bool = False,
) -> User:
    """Add a user (not committed), hashing the password in a worker thread."""
    user = User.model_validate(
        user_in,
        update={
            "tenant_id": tenant_id,
            "role": role,
            "is_superuser": is_superuser,
            "hashed_password": await hash_password(user_in.password),
        },
    )
    session.add(user)
    return user


async def create_user(
    *, session: AsyncSession, tenant_id: uuid.UUID, user_in: UserCreate
) -> User | None:
    """Create a user in a tenant; None when the email is taken."""
    user = await add_user(session=session, tenant_id=tenant_id, user_in=user_in, role=user_in.role)
    return user if await commit_or_conflict(session, "uq_user_email") else None


async def create_tenant_with_owner(
    *,
    session: AsyncSession,
    tenant_name: str,
    owner_in: UserCreate,
    plan: Plan = Plan.free,
    is_superuser: bool = False,
) -> tuple[Tenant, User] | None:
    """A new tenant and its owner in one transaction; None when the email is taken."""
    tenant = await create_tenant(session=session, name=tenant_name, plan=plan)
    owner = await add_user(
        session=session,
        tenant_id=tenant.id,
        user_in=owner_in,
        role=Role.owner,
        is_superuser=is_superuser,
    )
    if not await commit_or_conflict(session, "uq_user_email"):
        return None
    return tenant, owner


async def update_user(*, session: AsyncSession, user: User, data: dict[str, Any]) -> User | None:
    """Apply changes; None when the new email is taken.

    Deactivating a user also revokes their logins, so reactivation does not revive old tokens.
    The revocation runs before the changes are applied: run after, its autoflush would raise
    a duplicate email outside `commit_or_conflict` (a 500, not a 409). On a conflict the
    rollback undoes the revocation too.
    """
    if data.get("is_active") is False:
        await revoke_user_logins(session=session, user_id=user.id)
    user.sqlmodel_update(data)
    session.add(user)
    return user if await commit_or_conflict(session, "uq_user_email") else None


async def set_password(*, session: AsyncSession, user: User, hashed_password: str) -> None:
    """Store a new password hash; revoke every login and any pending reset token."""
    user.hashed_password = hashed_password
    session.add(user)
    await revoke_user_logins(session=session, user_id=user.id)
    await session.exec(
        sa.delete(PasswordResetToken).where(col(PasswordResetToken.user_id) == user.id)
    )
    await session.commit()


async def store_rehashed_password(
    *, session: AsyncSession, user_id: uuid.UUID, hashed_password: str
) -> None:
    """Replace an outdated hash (e.g. legacy bcrypt) after a successful login."""
    await session.exec(
        sa.update(User).where(col(User.id) == user_id).values(hashed_password=hashed_password)
    )


async def delete_user(*, session: AsyncSession, user: User) -> None:
    """Delete a user; their tasks become unassigned.

    The foreign key's ON DELETE SET NULL (assignee_id) would do it too, but silently:
    unassigning here first bumps each task's version, so stale `If-Match` writes fail.
    """
    await session.exec(
        sa.update(Task)
        .where(col(Task.tenant_id) == user.tenant_id, col(Task.assignee_id) == user.id)
        .values(assignee_id=None, version=col(Task.version) + 1, updated_at=utc_now())
    )
    await session.delete(user)
    await session.commit()


async def lock_active_owner_ids(*, session: AsyncSession, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    """The tenant's active owners, locked until commit so two changes cannot remove the last."""
    statement = (
        select(User.id)
        .where(User.tenant_id == tenant_id, User.role == Role.owner, col(User.is_active))
        .with_for_update()
    )
    return set((await session.exec(statement)).all())


# The caller of an access token: an active user of the token's tenant whose login (`sid`)
# is not revoked; with the row a request names joined in, when it is in the same tenant.


@functools.cache
def _caller_statement(model: Any) -> Any:
    """The caller's statement; with `model`, its row `row_id` too (NULLs when not found)."""
    statement: Any
    if model is None:
        statement = select(User).join(Login, col(Login.user_id) == col(User.id))
    else:
        row = aliased(model, name="row")
        statement = (
            select(User, row)
            .join(Login, col(Login.user_id) == col(User.id))
            .outerjoin(
                row, sa.and_(row.id == sa.bindparam("row_id"), row.tenant_id == User.tenant_id)
            )
        )
    return statement.where(
        User.id == sa.bindparam("user_id"),
        Login.id == sa.bindparam("login_id"),
        col(Login.revoked_at).is_(None),
        col(User.is_active),
        User.tenant_id == sa.bindparam("tenant_id"),
    )


async def get_caller(
    *, session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, login_id: uuid.UUID
) -> User | None:
    """The caller of an access token, or None when it no longer stands for one."""
    params = {"tenant_id": tenant_id, "user_id": user_id, "login_id": login_id}
    user: User | None = (await session.exec(_caller_statement(None), params=params)).first()
    return user


async def get_caller_and_row(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    model: type[Row],
    row_id: uuid.UUID,
) -> tuple[User, Row | None] | None:
    """In one statement, the caller (as `get_caller`) and the `model` row `row_id` if it is
    in the caller's tenant; None when the token no longer stands for a caller."""
    params = {"tenant_id": tenant_id, "user_id": user_id, "login_id": login_id, "row_id": row_id}
    found = (await session.exec(_caller_statement(model), params=params)).first()
    return None if found is None else (found[0], found[1])
