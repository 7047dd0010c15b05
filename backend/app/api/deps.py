"""Request dependencies: the session, the caller, role guards and tenant-scoped path loaders."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, cast

from fastapi import Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import TypeAdapter, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.api.errors import invalid
from app.core.config import settings
from app.core.db import (
    ConnectionSource,
    SessionMaker,
    set_tenant_context,
    tenant_connection,
)
from app.core.logs import set_caller
from app.core.security import AccessClaims, decode_access_token
from app.models import ROLE_RANK, Invitation, Project, Role, Task, User

TOKEN_URL = f"{settings.API_V1_STR}/login/access-token"
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionMaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_cross_tenant_session(session: SessionDep) -> AsyncSession:
    """rls: the session of a route that must reach across tenants before anyone is
    authenticated (login by email, signup, password recovery and reset, refresh-token
    rotation). The one explicit way past the tenant policies, besides superusers."""
    await set_tenant_context(session, tenant_id=None, cross_tenant=True)
    return session


CrossTenantSessionDep = Annotated[AsyncSession, Depends(get_cross_tenant_session)]
TokenDep = Annotated[str | None, Depends(reusable_oauth2)]


def unauthorized(detail: str = "Could not validate credentials") -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user and the login (`sid`) their access token belongs to."""

    user: User
    login_id: uuid.UUID


def verified_claims(token: str | None) -> AccessClaims:
    """The claims of the request's access token (401 when missing or invalid)."""
    if not token:
        raise unauthorized("Not authenticated")
    claims = decode_access_token(token)
    if claims is None:
        raise unauthorized()
    return claims


async def get_caller(session: SessionDep, token: TokenDep) -> Caller:
    claims = verified_claims(token)
    # rls: from here on the database shows this session the token's tenant only (its user
    # and login rows too); applied with the transaction's first statement.
    await set_tenant_context(session, tenant_id=claims.tenant_id)
    user = await crud.get_active_user_of_login(
        session=session, user_id=claims.user_id, login_id=claims.login_id
    )
    if user is None or user.tenant_id != claims.tenant_id:
        raise unauthorized()
    if user.is_superuser:  # rls: superusers work across tenants (one more statement)
        await set_tenant_context(session, tenant_id=user.tenant_id, cross_tenant=True)
    set_caller(user.id, user.tenant_id)  # ops: the caller's ids on this request's log lines
    return Caller(user=user, login_id=claims.login_id)


CallerDep = Annotated[Caller, Depends(get_caller)]


# The hot paths' caller: the same checks in one statement on a plain connection (no ORM
# session, no BEGIN/ROLLBACK), the row a request reads joined in where it can be.


def connection_source(request: Request) -> ConnectionSource:
    """Where the hot paths take connections from: `app.state.connections`, the process's
    pool (main.py); the tests put their own connection there."""
    return cast(ConnectionSource, request.app.state.connections)


async def get_connections(request: Request) -> ConnectionSource:
    return connection_source(request)


ConnectionsDep = Annotated[ConnectionSource, Depends(get_connections)]

Loaded = TypeVar("Loaded")


class BearerLoader(OAuth2PasswordBearer, Generic[Loaded]):
    """A dependency that reads the bearer token itself and loads what the route needs.

    The same security scheme as `TokenDep` in the OpenAPI schema, resolved as one
    dependency: each nested dependency costs FastAPI a resolution of its own on every
    request, which on the hot paths cost more than their statement.
    """

    def __init__(self, load: Callable[[Request, str | None], Awaitable[Loaded]]) -> None:
        super().__init__(
            tokenUrl=TOKEN_URL,
            scheme_name=reusable_oauth2.scheme_name,
            auto_error=False,
        )
        self.load = load

    async def __call__(self, request: Request) -> Loaded:  # type: ignore[override]
        return await self.load(request, await super().__call__(request))


@dataclass(frozen=True, slots=True)
class CallerRow:
    """The caller on the hot paths: their UserPublic fields, read without the ORM."""

    user: dict[str, Any]
    login_id: uuid.UUID

    @property
    def id(self) -> uuid.UUID:
        return cast(uuid.UUID, self.user["id"])

    @property
    def tenant_id(self) -> uuid.UUID:
        return cast(uuid.UUID, self.user["tenant_id"])

    @property
    def is_superuser(self) -> bool:
        return bool(self.user["is_superuser"])


async def load_caller_row(request: Request, token: str | None) -> CallerRow:
    claims = verified_claims(token)
    async with tenant_connection(connection_source(request), tenant_id=claims.tenant_id) as conn:
        user = await crud.fetch_caller(
            conn=conn, tenant_id=claims.tenant_id, user_id=claims.user_id, login_id=claims.login_id
        )
    if user is None:
        raise unauthorized()
    set_caller(claims.user_id, claims.tenant_id)  # ops: the caller's ids on the log lines
    return CallerRow(user=user, login_id=claims.login_id)


FastCaller = Annotated[CallerRow, Depends(BearerLoader(load_caller_row))]


TenantQuery = Annotated[uuid.UUID | None, Query(description="Superuser: only this tenant's rows")]


def tenant_filter(
    is_superuser: bool, own_tenant_id: uuid.UUID, requested: uuid.UUID | None
) -> uuid.UUID | None:
    """The tenant a list covers: a superuser's choice (None: all), anyone else's own only."""
    if is_superuser:
        return requested
    if requested is not None and requested != own_tenant_id:
        raise invalid("tenant_id", "Tenant not found", where="query")
    return own_tenant_id


async def get_tenant_filter_fast(
    caller: FastCaller, tenant_id: TenantQuery = None
) -> uuid.UUID | None:
    """`get_tenant_filter` for the hot paths."""
    return tenant_filter(caller.is_superuser, caller.tenant_id, tenant_id)


FastTenantFilter = Annotated[uuid.UUID | None, Depends(get_tenant_filter_fast)]


@dataclass(frozen=True, slots=True)
class TaskRow:
    caller: CallerRow
    task: dict[str, Any]


_uuid_adapter = TypeAdapter(uuid.UUID)


async def load_task_row_in_scope(request: Request, token: str | None) -> TaskRow | None:
    """The caller and the task of the path in one statement: 401, then 404 (another
    tenant's too). The route declares `task_id` itself, so a malformed id still answers
    401 before 422, as with `TaskInScope`; None then (FastAPI answers the 422)."""
    claims = verified_claims(token)
    try:
        task_id = _uuid_adapter.validate_python(request.path_params["task_id"])
    except ValidationError:
        task_id = None
    connections = connection_source(request)
    async with tenant_connection(connections, tenant_id=claims.tenant_id) as conn:
        if task_id is None:
            user = await crud.fetch_caller(
                conn=conn,
                tenant_id=claims.tenant_id,
                user_id=claims.user_id,
                login_id=claims.login_id,
            )
            if user is None:
                raise unauthorized()
            return None
        found = await crud.fetch_caller_and_task(
            conn=conn,
            tenant_id=claims.tenant_id,
            user_id=claims.user_id,
            login_id=claims.login_id,
            task_id=task_id,
        )
    if found is None:
        raise unauthorized()
    caller = CallerRow(user=found[0], login_id=claims.login_id)
    set_caller(claims.user_id, claims.tenant_id)  # ops: the caller's ids on the log lines
    task = found[1]
    if task is None and caller.is_superuser:  # a superuser's scope is every tenant
        async with tenant_connection(
            connections, tenant_id=claims.tenant_id, cross_tenant=True
        ) as conn:
            task = await crud.fetch_task(conn=conn, task_id=task_id)
    if task is None:
        raise HTTPException(status_code=404, detail="Task not found")
    return TaskRow(caller=caller, task=task)


TaskRowInScope = Annotated[TaskRow, Depends(BearerLoader(load_task_row_in_scope))]


async def get_current_user(caller: CallerDep) -> User:
    return caller.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def forbidden(detail: str = "The user doesn't have enough privileges") -> HTTPException:
    return HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)


def has_role(user: User, minimum: Role) -> bool:
    return user.is_superuser or ROLE_RANK[Role(user.role)] >= ROLE_RANK[minimum]


def tenant_scope(user: User) -> uuid.UUID | None:
    """The tenant a caller's queries are confined to; None (any tenant) for a superuser."""
    return None if user.is_superuser else user.tenant_id


async def get_tenant_filter(user: CurrentUser, tenant_id: TenantQuery = None) -> uuid.UUID | None:
    return tenant_filter(user.is_superuser, user.tenant_id, tenant_id)


TenantFilter = Annotated[uuid.UUID | None, Depends(get_tenant_filter)]

# Pagination of every list: `skip` up to PostgreSQL's OFFSET range, pages of 1 to 100.
Skip = Annotated[int, Query(ge=0, le=2**63 - 1, description="Rows to skip")]
Limit = Annotated[int, Query(ge=1, le=100, description="Rows in the page")]


async def get_current_admin(user: CurrentUser) -> User:
    if not has_role(user, Role.admin):
        raise forbidden()
    return user


async def get_current_owner(user: CurrentUser) -> User:
    if not has_role(user, Role.owner):
        raise forbidden()
    return user


async def get_current_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise forbidden()
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]
CurrentOwner = Annotated[User, Depends(get_current_owner)]
CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]


# Path loaders: a row of another tenant answers 404, exactly like a missing one. Routes
# declare them before any role guard, so the 404 comes first.


async def get_user_in_scope(
    session: SessionDep, caller: CurrentUser, user_id: Annotated[uuid.UUID, Path()]
) -> User:
    user = await crud.get_user(session=session, tenant_id=tenant_scope(caller), user_id=user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="User not found")
    return user


async def get_project_in_scope(
    session: SessionDep, caller: CurrentUser, project_id: Annotated[uuid.UUID, Path()]
) -> Project:
    project = await crud.get_project(
        session=session, tenant_id=tenant_scope(caller), project_id=project_id
    )
    if project is None:
        raise HTTPException(status_code=404, detail="Project not found")
    return project


async def get_task_in_scope(
    session: SessionDep, caller: CurrentUser, task_id: Annotated[uuid.UUID, Path()]
) -> Task:
    task = await crud.get_task(session=session, tenant_id=tenant_scope(caller), task_id=task_id)
    if task is None:
        raise HTTPException(status_code=404, detail="Task not found")
    return task


async def get_invitation_in_scope(
    session: SessionDep, caller: CurrentUser, invitation_id: Annotated[uuid.UUID, Path()]
) -> Invitation:
    invitation = await crud.get_invitation(
        session=session, tenant_id=tenant_scope(caller), invitation_id=invitation_id
    )
    if invitation is None:
        raise HTTPException(status_code=404, detail="Invitation not found")
    return invitation


UserInScope = Annotated[User, Depends(get_user_in_scope)]
ProjectInScope = Annotated[Project, Depends(get_project_in_scope)]
TaskInScope = Annotated[Task, Depends(get_task_in_scope)]
InvitationInScope = Annotated[Invitation, Depends(get_invitation_in_scope)]


async def parse_if_match(
    if_match: Annotated[
        str | None,
        Header(description='The `ETag` of the last read, `W/"<version>"`; 412 when stale.'),
    ] = None,
) -> int | None:
    """The version an `If-Match` header expects, or None when absent or `*`.

    A value that names no version can never match: it expects version 0, which no row has
    (they start at 1), so the write answers 412 like a stale one. Not raised here: a bad
    id (422), a missing row (404) and a role too low (403) answer first.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in if_match.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if value.isascii() and value.isdigit() and len(value) <= 9:
            return int(value)
    return 0


IfMatch = Annotated[int | None, Depends(parse_if_match)]


def etag(version: int) -> str:
    return f'W/"{version}"'


def stale_or_gone(expected_version: int | None) -> HTTPException:
    """Why a guarded write touched no row: a stale If-Match (412), or the row vanished (404)."""
    if expected_version is None:
        return HTTPException(status_code=404, detail="Not found")
    return HTTPException(status_code=412, detail="Precondition failed: the If-Match is stale")
