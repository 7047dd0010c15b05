"""The scheduled clean-up: rows that can no longer be used. It crosses tenants on purpose."""

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings
from app.models import (
    Invitation,
    Login,
    LoginThrottle,
    PasswordResetToken,
    RefreshToken,
    utc_now,
)


async def _delete(session: AsyncSession, statement: sa.Delete) -> int:
    result = await session.exec(statement)
    return int(result.rowcount)


async def delete_expired_rows(*, session: AsyncSession) -> dict[str, int]:
    """Delete what no request can use any more; returns the rows deleted per table. Idempotent.

    - refresh tokens past their expiry. A rotated token is kept until then: presenting it
      again is how reuse (theft) is detected;
    - logins revoked longer ago than a refresh token lives, and logins whose every refresh
      token has expired (their access tokens expired long before);
    - password reset tokens used or expired; invitations accepted or expired;
    - throttle rows whose window has passed (they no longer count).
    """
    now = utc_now()
    deleted = {
        "refresh_token": await _delete(
            session, sa.delete(RefreshToken).where(col(RefreshToken.expires_at) <= now)
        ),
    }
    has_token = sa.exists().where(col(RefreshToken.login_id) == col(Login.id))
    deleted["login"] = await _delete(
        session,
        sa.delete(Login).where(
            sa.or_(
                col(Login.revoked_at) <= now - timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS),
                sa.and_(
                    ~has_token,
                    col(Login.created_at)
                    <= now - timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
                ),
            )
        ),
    )
    deleted["password_reset_token"] = await _delete(
        session,
        sa.delete(PasswordResetToken).where(
            sa.or_(
                col(PasswordResetToken.used_at).is_not(None),
                col(PasswordResetToken.expires_at) <= now,
            )
        ),
    )
    deleted["invitation"] = await _delete(
        session,
        sa.delete(Invitation).where(
            sa.or_(col(Invitation.accepted_at).is_not(None), col(Invitation.expires_at) <= now)
        ),
    )
    window = timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)
    deleted["login_throttle"] = await _delete(
        session, sa.delete(LoginThrottle).where(col(LoginThrottle.window_start) <= now - window)
    )
    await session.commit()
    return deleted
