from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from app import crud, emails, jobs
from app.api.deps import (
    CallerDep,
    CrossTenantSessionDep,
    CurrentSuperuser,
    CurrentUser,
    SessionDep,
    unauthorized,
)
from app.api.errors import StrictJSONRoute, json_error_responses, responses
from app.api.throttle import client_address, throttle_attempt, too_many
from app.core.config import settings
from app.core.security import (
    create_access_token,
    hash_password,
    verify_dummy_password,
    verify_password,
)
from app.models import (
    Login,
    Message,
    NewPassword,
    RefreshRequest,
    Token,
    User,
    UserPublic,
)

router = APIRouter(tags=["login"], route_class=StrictJSONRoute)

INCORRECT_LOGIN = "Incorrect email or password"
RECOVERY_MESSAGE = "If that email is registered, a password recovery email is on its way"


class LoginForm(BaseModel):
    """OAuth2 password form: `username` is the email."""

    # Generous bounds: a longer value is a wrong login (400), not malformed input.
    username: str = Field(min_length=1, max_length=4096)
    password: str = Field(min_length=1, max_length=4096)
    grant_type: Literal["password"] | None = None
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


def issue_token(user: User, login: Login, refresh_token: str) -> Token:
    return Token(
        access_token=create_access_token(
            user_id=user.id, tenant_id=user.tenant_id, login_id=login.id
        ),
        refresh_token=refresh_token,
        expires_in=settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60,
    )


@router.post("/login/access-token", responses=responses(400, 422, 429))
async def login_access_token(
    session: CrossTenantSessionDep, request: Request, form: Annotated[LoginForm, Form()]
) -> Token:
    """Sign in with email and password (OAuth2 password flow); returns access and refresh tokens."""
    email = form.username.strip().lower()
    email_key = crud.throttle_key("email", email)
    address_key = crud.throttle_key("ip", client_address(request))
    keys = [email_key, address_key]
    retry_after = await crud.login_retry_after(
        session=session,
        limits={
            email_key: settings.LOGIN_MAX_FAILURES,
            address_key: settings.LOGIN_MAX_FAILURES_PER_ADDRESS,
        },
    )
    if retry_after is not None:
        raise too_many("Too many failed logins; try again later", retry_after)
    user = await crud.get_user_by_email(session=session, email=email)
    if user is None:
        await verify_dummy_password(form.password)
        valid, new_hash = False, None
    else:
        valid, new_hash = await verify_password(form.password, user.hashed_password)
    if user is None or not valid:
        await crud.record_login_failure(session=session, keys=keys)
        raise HTTPException(status_code=400, detail=INCORRECT_LOGIN)
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    if new_hash is not None:
        await crud.store_rehashed_password(
            session=session, user_id=user.id, hashed_password=new_hash
        )
    await crud.clear_login_failures(session=session, key=email_key)
    login, refresh_token = await crud.create_login(session=session, user_id=user.id)
    return issue_token(user, login, refresh_token)


@router.post("/login/refresh", responses=responses(401, 422))
async def refresh_access_token(session: CrossTenantSessionDep, body: RefreshRequest) -> Token:
    """Trade a refresh token for new tokens. Each refresh token works once: reusing one revokes its login."""
    rotated = await crud.rotate_refresh_token(session=session, token=body.refresh_token)
    if rotated is None:
        raise unauthorized("Invalid refresh token")
    return issue_token(*rotated)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401))
async def logout(session: SessionDep, caller: CallerDep) -> None:
    """Revoke the caller's login: its refresh tokens and access tokens stop working."""
    await crud.revoke_login(session=session, login_id=caller.login_id)


@router.post("/login/test-token", response_model=UserPublic, responses=responses(401))
async def test_token(current_user: CurrentUser) -> User:
    """Return the user of the bearer token."""
    return current_user


@router.post("/password-recovery/{email}", responses=responses(429))
async def recover_password(email: str, session: CrossTenantSessionDep, request: Request) -> Message:
    """Email a single-use password reset link; the answer is the same whether or not the email exists."""
    await throttle_attempt(
        session,
        request,
        "recovery",
        email,
        settings.PASSWORD_RECOVERY_MAX_PER_EMAIL,
        settings.PASSWORD_RECOVERY_MAX_PER_ADDRESS,
    )
    # A NUL can be in no stored email (PostgreSQL would refuse to compare it): same answer.
    user = None if "\x00" in email else await crud.get_user_by_email(session=session, email=email)
    if user is not None and user.is_active:
        token = await crud.create_password_reset_token(session=session, user_id=user.id)
        data = emails.reset_password_email(email_to=user.email, token=token)
        # The email is a job in the token's own transaction: both are kept, or neither.
        await jobs.enqueue_email(session=session, email_to=user.email, data=data)
        await session.commit()
    return Message(message=RECOVERY_MESSAGE)


@router.post("/reset-password/", responses=responses(400, 422))
async def reset_password(session: CrossTenantSessionDep, body: NewPassword) -> Message:
    """Set a new password with a reset token; every login of the user is revoked."""
    user = await crud.consume_password_reset_token(session=session, token=body.token)
    if user is None:
        await session.rollback()
        raise HTTPException(status_code=400, detail="Invalid token")
    hashed = await hash_password(body.new_password)
    await crud.set_password(session=session, user=user, hashed_password=hashed)
    return Message(message="Password updated successfully")


@router.post(
    "/password-recovery-html-content/{email}",
    response_class=HTMLResponse,
    responses=json_error_responses(401, 403, 404),
)
async def recover_password_html_content(
    email: str, session: SessionDep, _: CurrentSuperuser
) -> HTMLResponse:
    """Superuser: the HTML of the password recovery email, to check the template."""
    user = await crud.get_user_by_email(session=session, email=email)
    if user is None:
        raise HTTPException(status_code=404, detail="User not found")
    data = emails.reset_password_email(email_to=user.email, token="preview-token")
    return HTMLResponse(content=data.html, headers={"subject": data.subject})
