"""Invitations to join a tenant."""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings
from app.core.security import hash_token, new_opaque_token
from app.crud.common import page
from app.models import Invitation, InvitationCreate, utc_now


def _pending() -> sa.ColumnElement[bool]:
    return sa.and_(col(Invitation.accepted_at).is_(None), col(Invitation.expires_at) > utc_now())


def is_pending(invitation: Invitation) -> bool:
    """`_pending()` for an invitation already loaded (the path loader's)."""
    return invitation.accepted_at is None and invitation.expires_at > utc_now()


async def add_invitation(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    invited_by_id: uuid.UUID,
    invitation_in: InvitationCreate,
) -> tuple[Invitation, str]:
    """A new invitation and its link token (not committed); an earlier pending invitation
    of the same email to the same tenant stops working."""
    await session.exec(
        sa.delete(Invitation).where(
            col(Invitation.tenant_id) == tenant_id,
            col(Invitation.email) == invitation_in.email,
            col(Invitation.accepted_at).is_(None),
        )
    )
    token, token_hash = new_opaque_token()
    invitation = Invitation.model_validate(
        invitation_in,
        update={
            "tenant_id": tenant_id,
            "invited_by_id": invited_by_id,
            "token_hash": token_hash,
            "expires_at": utc_now() + timedelta(days=settings.INVITATION_EXPIRE_DAYS),
        },
    )
    session.add(invitation)
    await session.flush()
    return invitation, token


async def list_invitations(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, skip: int, limit: int
) -> tuple[list[Invitation], int]:
    """Pending invitations, newest first."""
    statement = (
        select(Invitation)
        .where(_pending())
        .order_by(col(Invitation.created_at).desc(), col(Invitation.id))
    )
    if tenant_id is not None:
        statement = statement.where(Invitation.tenant_id == tenant_id)
    return await page(session, statement, skip=skip, limit=limit)


async def delete_invitation(*, session: AsyncSession, invitation: Invitation) -> None:
    """Revoke an invitation: its link stops working."""
    await session.exec(
        sa.delete(Invitation).where(
            col(Invitation.id) == invitation.id, col(Invitation.tenant_id) == invitation.tenant_id
        )
    )
    await session.commit()


async def consume_invitation(*, session: AsyncSession, token: str) -> Invitation | None:
    """Spend an invitation's token (not committed): the invitation, or None for a used,
    revoked, expired or unknown token. Concurrent uses of one token: one wins."""
    now = utc_now()
    result = await session.exec(
        sa.update(Invitation)
        .where(
            col(Invitation.token_hash) == hash_token(token),
            col(Invitation.accepted_at).is_(None),
            col(Invitation.expires_at) > now,
        )
        .values(accepted_at=now)
        .returning(Invitation),
        execution_options={"populate_existing": True},
    )
    invitation: Invitation | None = result.scalars().one_or_none()
    return invitation
