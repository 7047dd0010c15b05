"""Logins, refresh tokens, login throttling and password reset tokens."""

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings
from app.core.security import hash_token, new_opaque_token
from app.models import (
    THROTTLE_KEY_MAX,
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


def throttle_key(kind: str, value: str) -> str:
    """`kind:value`, cut to the column: only values longer than any account's collide."""
    # PostgreSQL text cannot hold NUL: drop it rather than fail on hostile input.
    return f"{kind}:{value.replace(chr(0), '')}"[:THROTTLE_KEY_MAX]


def _retry_after(window_start: datetime, now: datetime) -> int:
    return max(1, int((window_start + _window() - now).total_seconds()) + 1)


async def login_retry_after(*, session: AsyncSession, limits: dict[str, int]) -> int | None:
    """Seconds until every key of `limits` that reached its limit may try again, or None."""
    now = utc_now()
    reached = sa.or_(
        *(
            sa.and_(col(LoginThrottle.key) == key, col(LoginThrottle.failures) >= limit)
            for key, limit in limits.items()
        )
    )
    statement = select(func.max(LoginThrottle.window_start)).where(
        reached, LoginThrottle.window_start > now - _window()
    )
    window_start: datetime | None = (await session.exec(statement)).one()
    return None if window_start is None else _retry_after(window_start, now)


async def _count(
    *, session: AsyncSession, keys: list[str], now: datetime
) -> list[tuple[str, int, datetime]]:
    """Add one to each key's count (committed); a window that has passed starts again."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    expired = table.c.window_start <= now - _window()
    insert = sa.dialects.postgresql.insert(table).values(
        [{"key": key, "failures": 1, "window_start": now} for key in keys]
    )
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": sa.case((expired, 1), else_=table.c.failures + 1),
            "window_start": sa.case((expired, now), else_=table.c.window_start),
        },
    ).returning(table.c.key, table.c.failures, table.c.window_start)
    rows = (await session.exec(statement)).all()
    await session.commit()
    return [(row[0], row[1], row[2]) for row in rows]


async def record_login_failure(*, session: AsyncSession, keys: list[str]) -> None:
    """Count a failed login against each key."""
    await _count(session=session, keys=keys, now=utc_now())


async def count_attempt(*, session: AsyncSession, limits: dict[str, int]) -> int | None:
    """Count an attempt (signup, password recovery) against each key of `limits`.

    Returns the seconds to wait when a key has gone past its limit, else None. The count
    is atomic, so concurrent attempts cannot slip past the limit together.
    """
    now = utc_now()
    rows = await _count(session=session, keys=list(limits), now=now)
    over = [start for key, count, start in rows if count > limits[key]]
    return _retry_after(max(over), now) if over else None


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
