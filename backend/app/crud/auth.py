"""Logins, refresh tokens, login throttling and password reset tokens."""

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings
from app.core.security import hash_token, new_opaque_token
from app.models import (
    Login,
    LoginThrottle,
    PasswordResetToken,
    RefreshToken,
    User,
    utc_now,
)


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


async def create_password_reset_token(*, session: AsyncSession, user_id: uuid.UUID) -> str:
    """A new single-use reset token (not committed: its email job joins the transaction);
    earlier unused ones of the user stop working."""
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
