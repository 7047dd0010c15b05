"""The scheduled clean-up deletes exactly the rows no request can use any more."""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud, jobs
from app.core.config import settings
from app.core.db import engine as app_engine
from app.models import (
    Invitation,
    Login,
    LoginThrottle,
    PasswordResetToken,
    RefreshToken,
    utc_now,
)
from tests.factories import Factories, unique_email
from tests.mail import eventually


def digest() -> str:
    return uuid.uuid4().hex * 2


async def test_clean_up_deletes_what_is_spent_and_keeps_what_is_live(
    make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    user_id, tenant_id = uuid.UUID(owner.id), uuid.UUID(owner.tenant_id)
    signed_in = set((await session.exec(select(Login.id).where(Login.user_id == user_id))).all())
    now = utc_now()
    lifetime = timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)
    window = timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)

    live_login, old_revoked, new_revoked, dead_login = (Login(user_id=user_id) for _ in range(4))
    old_revoked.revoked_at = now - lifetime - timedelta(minutes=1)
    new_revoked.revoked_at = now - timedelta(minutes=1)
    dead_login.created_at = now - lifetime - timedelta(days=1)
    session.add_all([live_login, old_revoked, new_revoked, dead_login])
    await session.flush()

    def refresh(login: Login, expires_in: timedelta, used: bool = False) -> RefreshToken:
        return RefreshToken(
            token_hash=digest(),
            login_id=login.id,
            expires_at=now + expires_in,
            used_at=now if used else None,
        )

    def reset(expires_in: timedelta, used: bool = False) -> PasswordResetToken:
        return PasswordResetToken(
            token_hash=digest(),
            user_id=user_id,
            expires_at=now + expires_in,
            used_at=now if used else None,
        )

    def invitation(expires_in: timedelta, accepted: bool = False) -> Invitation:
        return Invitation(
            tenant_id=tenant_id,
            email=unique_email("invited"),
            token_hash=digest(),
            expires_at=now + expires_in,
            accepted_at=now if accepted else None,
        )

    def throttle(age: timedelta) -> LoginThrottle:
        return LoginThrottle(key=f"email:{unique_email()}", failures=3, window_start=now - age)

    keep = [
        refresh(live_login, timedelta(days=1)),
        refresh(live_login, timedelta(days=1), used=True),  # reuse detection needs it
        refresh(new_revoked, timedelta(days=1)),
        reset(timedelta(minutes=5)),
        invitation(timedelta(days=1)),
        throttle(window / 2),
    ]
    drop = [
        refresh(live_login, -timedelta(seconds=1)),
        refresh(dead_login, -timedelta(days=1)),
        reset(-timedelta(seconds=1)),
        reset(timedelta(minutes=5), used=True),
        invitation(-timedelta(seconds=1)),
        invitation(timedelta(days=1), accepted=True),
        throttle(window + timedelta(seconds=1)),
    ]
    session.add_all(keep + drop)
    await session.flush()
    kept_logins = {live_login.id, new_revoked.id, *signed_in}

    deleted = await crud.delete_expired_rows(session=session)
    assert deleted["login"] >= 2 and deleted["invitation"] >= 2

    logins = set((await session.exec(select(Login.id).where(Login.user_id == user_id))).all())
    assert logins == kept_logins
    for row in keep:
        assert await session.get(type(row), sa.inspect(row).identity) is not None, row
    for row in drop:
        assert await session.get(type(row), sa.inspect(row).identity) is None, row
    # Twice is the same as once.
    await crud.delete_expired_rows(session=session)
    assert (
        set((await session.exec(select(Login.id).where(col(Login.user_id) == user_id))).all())
        == kept_logins
    )


async def test_every_worker_registers_the_one_clean_up_schedule(worker: None) -> None:
    async def registered() -> bool:
        async with app_engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT entrypoint, expression FROM pgqueuer_schedules")
            )
            return (jobs.CLEAN_UP, settings.CLEANUP_SCHEDULE) in {tuple(row) for row in rows}

    await eventually(registered, "the clean-up schedule")
