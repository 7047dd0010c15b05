from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import EmailStr
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import emails, jobs
from app.api.deps import CurrentSuperuser, SessionDep
from app.api.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE,
    StrictJSONRoute,
    responses,
)
from app.core.config import settings
from app.models import ErrorDetail, Message

router = APIRouter(prefix="/utils", tags=["utils"], route_class=StrictJSONRoute)


@router.get("/health-check/")
async def health_check() -> bool:
    """The process is up (no database check: see `ready`)."""
    return True


@router.get(
    "/ready/",
    responses={503: {"model": ErrorDetail, "description": "The database does not answer"}},
)
async def ready(session: SessionDep) -> bool:
    """The service can reach its database within a short timeout."""
    try:
        with anyio.fail_after(settings.DB_READY_TIMEOUT):
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        raise HTTPException(
            status_code=503,
            detail=DATABASE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        ) from exc
    return True


@router.post(
    "/test-email/", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 422)
)
async def test_email(
    email_to: Annotated[EmailStr, Query()], session: SessionDep, _: CurrentSuperuser
) -> Message:
    """Superuser: send a test email (a background job)."""
    data = emails.test_email(email_to=email_to)
    await jobs.enqueue_email(session=session, email_to=email_to, data=data)
    await session.commit()
    return Message(message="Test email sent")
