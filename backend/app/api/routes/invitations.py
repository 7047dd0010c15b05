from fastapi import APIRouter, HTTPException, status
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud, emails, jobs
from app.api.deps import (
    CrossTenantSessionDep,
    CurrentAdmin,
    InvitationInScope,
    Limit,
    SessionDep,
    Skip,
    TenantFilter,
    forbidden,
)
from app.api.errors import StrictJSONRoute, responses
from app.api.routes.login import issue_token
from app.api.routes.users import EMAIL_TAKEN
from app.core.db import set_tenant_context
from app.models import (
    Invitation,
    InvitationAccept,
    InvitationCreate,
    InvitationPublic,
    InvitationsPublic,
    Role,
    Token,
    User,
    UserCreate,
)

router = APIRouter(prefix="/invitations", tags=["invitations"], route_class=StrictJSONRoute)


def ensure_can_invite(actor: User, role: Role) -> None:
    """The role matrix of creating users: admins invite members and admins, owners anyone."""
    if role == Role.owner and not actor.is_superuser and actor.role != Role.owner:
        raise forbidden("Only an owner may invite an owner")


async def email_registered(session: AsyncSession, caller: User, email: str) -> bool:
    """Emails are unique across tenants, so this one lookup reaches past the tenant
    policies (explicitly, then back to the caller's own scope)."""
    await set_tenant_context(session, tenant_id=caller.tenant_id, cross_tenant=True)
    try:
        return await crud.get_user_by_email(session=session, email=email) is not None
    finally:
        await set_tenant_context(
            session, tenant_id=caller.tenant_id, cross_tenant=caller.is_superuser
        )


@router.post(
    "/",
    response_model=InvitationPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 422),
)
async def create_invitation(
    session: SessionDep, current_user: CurrentAdmin, invitation_in: InvitationCreate
) -> Invitation:
    """Invite an email into the caller's tenant with a role; the link is emailed (a job)."""
    ensure_can_invite(current_user, invitation_in.role)
    if await email_registered(session, current_user, invitation_in.email):
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    tenant = await crud.get_tenant(session=session, tenant_id=current_user.tenant_id)
    assert tenant is not None  # the caller's own tenant
    invitation, token = await crud.add_invitation(
        session=session,
        tenant_id=current_user.tenant_id,
        invited_by_id=current_user.id,
        invitation_in=invitation_in,
    )
    data = emails.invitation_email(
        email_to=invitation.email, token=token, tenant_name=tenant.name, role=invitation.role
    )
    # In the invitation's own transaction: the email job exists if and only if it does.
    await jobs.enqueue_email(session=session, email_to=invitation.email, data=data)
    await session.commit()
    return invitation


@router.get("/", response_model=InvitationsPublic, responses=responses(401, 403, 422))
async def read_invitations(
    session: SessionDep,
    _: CurrentAdmin,
    tenant_id: TenantFilter,
    skip: Skip = 0,
    limit: Limit = 100,
) -> InvitationsPublic:
    """The pending invitations of the caller's tenant (a superuser's cover every tenant)."""
    invitations, count = await crud.list_invitations(
        session=session, tenant_id=tenant_id, skip=skip, limit=limit
    )
    return InvitationsPublic.model_validate({"data": invitations, "count": count})


@router.delete(
    "/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
async def delete_invitation(
    session: SessionDep, invitation: InvitationInScope, current_user: CurrentAdmin
) -> None:
    """Revoke a pending invitation: its link stops working."""
    ensure_can_invite(current_user, Role(invitation.role))
    await crud.delete_invitation(session=session, invitation=invitation)


@router.post("/accept", responses=responses(400, 409, 422))
async def accept_invitation(session: CrossTenantSessionDep, body: InvitationAccept) -> Token:
    """Join the inviting tenant with the invited role: creates the user and signs them in."""
    invitation = await crud.consume_invitation(session=session, token=body.token)
    if invitation is None:
        await session.rollback()
        raise HTTPException(status_code=400, detail="Invalid token")
    user_in = UserCreate(
        email=invitation.email,
        password=body.password,
        full_name=body.full_name,
        role=Role(invitation.role),
    )
    user = await crud.create_user(session=session, tenant_id=invitation.tenant_id, user_in=user_in)
    if user is None:
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    login, refresh_token = await crud.create_login(session=session, user_id=user.id)
    return issue_token(user, login, refresh_token)
