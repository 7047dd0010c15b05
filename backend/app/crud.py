"""Small async queries, one function per query. Routes call them directly.

Every function that reaches tenant data takes `tenant_id` and filters on it. Where a
superuser may cross tenants the parameter is `tenant_id: UUID | None`, and `None` (any
tenant) comes only from `deps.tenant_scope`, which gives it to superusers alone.
"""

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.core.config import settings
from app.core.security import hash_password, hash_token, new_opaque_token
from app.models import (
    Login,
    LoginThrottle,
    PasswordResetToken,
    Plan,
    Project,
    ProjectCreate,
    RefreshToken,
    Role,
    Task,
    TaskCreate,
    TaskStatus,
    Tenant,
    User,
    UserCreate,
    utc_now,
)

T = TypeVar("T")


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint behind an asyncpg IntegrityError."""
    return getattr(exc.orig.__cause__, "constraint_name", None) if exc.orig else None


async def commit_or_conflict(session: AsyncSession, *constraints: str) -> bool:
    """Commit; on a violation of one of `constraints`, roll back and return False."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        if violated_constraint(exc) in constraints:
            return False
        raise
    return True


async def page(
    session: AsyncSession, statement: SelectOfScalar[T], *, skip: int, limit: int
) -> tuple[list[T], int]:
    """The rows of a page and the total matching the same filters.

    One query for the page; a second counts only when the page cannot tell the total (it
    is full, or empty past the start): a short page ends the list, so it knows its count.
    """
    rows = list((await session.exec(statement.offset(skip).limit(limit))).all())
    if len(rows) < limit and (rows or skip == 0):
        return rows, skip + len(rows)
    count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
    return rows, (await session.exec(count_statement)).one()


def contains(column: Any, text: str) -> Any:
    """Case-insensitive substring match with `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return col(column).ilike(f"%{escaped}%", escape="\\")


# --- Tenants -----------------------------------------------------------------------------


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


# --- Users -------------------------------------------------------------------------------


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    return (await session.exec(select(User).where(User.email == email.lower()))).first()


async def get_user(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, user_id: uuid.UUID
) -> User | None:
    statement = select(User).where(User.id == user_id)
    if tenant_id is not None:
        statement = statement.where(User.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def get_active_user_of_login(
    *, session: AsyncSession, user_id: uuid.UUID, login_id: uuid.UUID
) -> User | None:
    """The user of an access token, in one query with its login: None if either is gone."""
    statement = (
        select(User)
        .join(Login, col(Login.user_id) == col(User.id))
        .where(
            User.id == user_id,
            Login.id == login_id,
            col(Login.revoked_at).is_(None),
            col(User.is_active),
        )
    )
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


# --- Logins and refresh tokens -----------------------------------------------------------


async def add_refresh_token(*, session: AsyncSession, login_id: uuid.UUID) -> str:
    token, token_hash = new_opaque_token()
    session.add(
        RefreshToken(
            token_hash=token_hash,
            login_id=login_id,
            expires_at=utc_now() + timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS),
        )
    )
    return token


async def create_login(*, session: AsyncSession, user_id: uuid.UUID) -> tuple[Login, str]:
    """Record a sign-in and its first refresh token."""
    login = Login(user_id=user_id)  # its id is made here, so the token can refer to it
    session.add(login)
    refresh_token = await add_refresh_token(session=session, login_id=login.id)
    await session.commit()
    return login, refresh_token


async def rotate_refresh_token(
    *, session: AsyncSession, token: str
) -> tuple[User, Login, str] | None:
    """Spend a refresh token for a new one of the same login.

    A token that was already spent revokes its whole login (reuse detection). Returns None
    for any token that cannot be used.
    """
    token_hash = hash_token(token)
    now = utc_now()
    spent = await session.exec(
        sa.update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == token_hash,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(RefreshToken.login_id))
    )
    login_id = spent.scalar_one_or_none()
    if login_id is None:
        reused = await session.exec(
            select(RefreshToken.login_id).where(
                RefreshToken.token_hash == token_hash, col(RefreshToken.used_at).is_not(None)
            )
        )
        reused_login_id = reused.first()
        if reused_login_id is not None:
            await revoke_login(session=session, login_id=reused_login_id)
        return None
    row = (
        await session.exec(
            select(User, Login)
            .join(Login, col(Login.user_id) == col(User.id))
            .where(Login.id == login_id, col(Login.revoked_at).is_(None), col(User.is_active))
        )
    ).first()
    if row is None:
        await session.rollback()
        return None
    user, login = row
    new_token = await add_refresh_token(session=session, login_id=login.id)
    await session.commit()
    return user, login, new_token


async def revoke_login(*, session: AsyncSession, login_id: uuid.UUID) -> None:
    await session.exec(
        sa.update(Login)
        .where(col(Login.id) == login_id, col(Login.revoked_at).is_(None))
        .values(revoked_at=utc_now())
    )
    await session.commit()


async def revoke_user_logins(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    """Revoke every login of a user (not committed)."""
    await session.exec(
        sa.update(Login)
        .where(col(Login.user_id) == user_id, col(Login.revoked_at).is_(None))
        .values(revoked_at=utc_now())
    )


# --- Login throttling --------------------------------------------------------------------


def _window() -> timedelta:
    return timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)


async def login_retry_after(*, session: AsyncSession, keys: list[str]) -> int | None:
    """Seconds until every throttled key among `keys` may try again, or None if none is."""
    now = utc_now()
    statement = select(func.max(LoginThrottle.window_start)).where(
        col(LoginThrottle.key).in_(keys),
        LoginThrottle.failures >= settings.LOGIN_MAX_FAILURES,
        LoginThrottle.window_start > now - _window(),
    )
    window_start: datetime | None = (await session.exec(statement)).one()
    if window_start is None:
        return None
    return max(1, int((window_start + _window() - now).total_seconds()) + 1)


async def record_login_failure(*, session: AsyncSession, keys: list[str]) -> None:
    """Count a failed login against each key; a window that has passed starts again."""
    now = utc_now()
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    expired = table.c.window_start <= now - _window()
    statement = sa.dialects.postgresql.insert(table).values(
        [{"key": key, "failures": 1, "window_start": now} for key in keys]
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": sa.case((expired, 1), else_=table.c.failures + 1),
            "window_start": sa.case((expired, now), else_=table.c.window_start),
        },
    )
    await session.exec(statement)
    await session.commit()


async def clear_login_failures(*, session: AsyncSession, key: str) -> None:
    """Forget failures for a key (not committed)."""
    await session.exec(sa.delete(LoginThrottle).where(col(LoginThrottle.key) == key))


# --- Password reset ----------------------------------------------------------------------


async def create_password_reset_token(*, session: AsyncSession, user_id: uuid.UUID) -> str:
    """A new single-use reset token; earlier unused ones of the user stop working."""
    await session.exec(
        sa.delete(PasswordResetToken).where(col(PasswordResetToken.user_id) == user_id)
    )
    token, token_hash = new_opaque_token()
    session.add(
        PasswordResetToken(
            token_hash=token_hash,
            user_id=user_id,
            expires_at=utc_now() + timedelta(minutes=settings.PASSWORD_RESET_TOKEN_EXPIRE_MINUTES),
        )
    )
    await session.commit()
    return token


async def consume_password_reset_token(*, session: AsyncSession, token: str) -> User | None:
    """Spend a reset token (not committed): the active user it was issued to, or None."""
    now = utc_now()
    result = await session.exec(
        sa.update(PasswordResetToken)
        .where(
            col(PasswordResetToken.token_hash) == hash_token(token),
            col(PasswordResetToken.used_at).is_(None),
            col(PasswordResetToken.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(PasswordResetToken.user_id))
    )
    user_id = result.scalar_one_or_none()
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


# --- Projects ----------------------------------------------------------------------------

PROJECT_SORTS: dict[str, sa.UnaryExpression[Any]] = {
    "created_at": col(Project.created_at).asc(),
    "-created_at": col(Project.created_at).desc(),
    "name": col(Project.name).asc(),
    "-name": col(Project.name).desc(),
}


async def get_project(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, project_id: uuid.UUID
) -> Project | None:
    statement = select(Project).where(Project.id == project_id)
    if tenant_id is not None:
        statement = statement.where(Project.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def list_projects(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[Project], int]:
    statement = select(Project).order_by(PROJECT_SORTS[sort], col(Project.id))
    if tenant_id is not None:
        statement = statement.where(Project.tenant_id == tenant_id)
    if q:
        statement = statement.where(contains(Project.name, q))
    return await page(session, statement, skip=skip, limit=limit)


async def create_project(
    *, session: AsyncSession, tenant_id: uuid.UUID, project_in: ProjectCreate
) -> Project | None:
    """Create a project; None when the tenant already has one of that name."""
    project = Project.model_validate(project_in, update={"tenant_id": tenant_id})
    session.add(project)
    return project if await commit_or_conflict(session, "uq_project_tenant_id_name") else None


async def update_versioned(
    *, session: AsyncSession, row: T, data: dict[str, Any], expected_version: int | None
) -> T | None:
    """Apply `data` and bump `version` in one UPDATE, guarded by the version when given.

    None means the guard failed: someone else changed the row first. An IntegrityError
    (e.g. a duplicate name) propagates after the rollback. An empty `data` writes nothing,
    so it bumps nothing: it only checks the version.
    """
    model: Any = type(row)
    if not data:
        current: int = row.version  # type: ignore[attr-defined]
        return row if expected_version in (None, current) else None
    statement = (
        sa.update(model)
        .where(model.id == row.id, model.tenant_id == row.tenant_id)  # type: ignore[attr-defined]
        .values(**data, version=model.version + 1, updated_at=utc_now())
        .returning(model)
    )
    if expected_version is not None:
        statement = statement.where(model.version == expected_version)
    try:
        result = await session.exec(statement, execution_options={"populate_existing": True})
        updated: T | None = result.scalars().one_or_none()
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return updated


async def delete_versioned(
    *, session: AsyncSession, row: Any, expected_version: int | None
) -> bool:
    """Delete a row, guarded by its version when given; False when the guard failed."""
    model: Any = type(row)
    statement = sa.delete(model).where(model.id == row.id, model.tenant_id == row.tenant_id)
    if expected_version is not None:
        statement = statement.where(model.version == expected_version)
    result = await session.exec(statement.returning(model.id))
    deleted = result.first() is not None
    await session.commit()
    return deleted


# --- Tasks -------------------------------------------------------------------------------

TASK_SORTS: dict[str, sa.UnaryExpression[Any]] = {
    "created_at": col(Task.created_at).asc(),
    "-created_at": col(Task.created_at).desc(),
    "title": col(Task.title).asc(),
    "-title": col(Task.title).desc(),
    "due_date": col(Task.due_date).asc().nulls_last(),
    "-due_date": col(Task.due_date).desc().nulls_last(),
}


async def get_task(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, task_id: uuid.UUID
) -> Task | None:
    statement = select(Task).where(Task.id == task_id)
    if tenant_id is not None:
        statement = statement.where(Task.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def list_tasks(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    status: TaskStatus | None,
    assignee_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[Task], int]:
    statement = tasks_statement(
        tenant_id=tenant_id,
        project_id=project_id,
        status=status,
        assignee_id=assignee_id,
        q=q,
        sort=sort,
    )
    return await page(session, statement, skip=skip, limit=limit)


def tasks_statement(
    *,
    tenant_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    status: TaskStatus | None,
    assignee_id: uuid.UUID | None,
    q: str | None,
    sort: str,
) -> SelectOfScalar[Task]:
    """The filtered, sorted task list before paging (tests EXPLAIN it)."""
    statement = select(Task).order_by(TASK_SORTS[sort], col(Task.id))
    if tenant_id is not None:
        statement = statement.where(Task.tenant_id == tenant_id)
    if project_id is not None:
        statement = statement.where(Task.project_id == project_id)
    if status is not None:
        statement = statement.where(Task.status == status)
    if assignee_id is not None:
        statement = statement.where(Task.assignee_id == assignee_id)
    if q:
        statement = statement.where(contains(Task.title, q))
    return statement


async def is_active_user_of_tenant(
    *, session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    statement = select(User.id).where(
        User.id == user_id, User.tenant_id == tenant_id, col(User.is_active)
    )
    return (await session.exec(statement)).first() is not None


async def create_task(*, session: AsyncSession, tenant_id: uuid.UUID, task_in: TaskCreate) -> Task:
    """Create a task. A project or assignee outside the tenant fails the composite foreign
    keys: the IntegrityError propagates after the rollback."""
    task = Task.model_validate(task_in, update={"tenant_id": tenant_id})
    session.add(task)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return task
