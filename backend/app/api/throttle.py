"""Throttling of logins, signups and password recoveries: keys, limits and the 429."""

from fastapi import HTTPException, Request, status
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud


def client_address(request: Request) -> str:
    """The socket peer, or the client a trusted proxy names (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


def too_many(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=detail,
        headers={"Retry-After": str(retry_after)},
    )


async def throttle_attempt(
    session: AsyncSession,
    request: Request,
    kind: str,
    email: str,
    per_email: int,
    per_address: int,
) -> None:
    """Count a signup or recovery attempt per email and per address; 429 past a limit."""
    limits = {
        crud.throttle_key(f"{kind}-email", email.strip().lower()): per_email,
        crud.throttle_key(f"{kind}-ip", client_address(request)): per_address,
    }
    retry_after = await crud.count_attempt(session=session, limits=limits)
    if retry_after is not None:
        raise too_many("Too many attempts; try again later", retry_after)
