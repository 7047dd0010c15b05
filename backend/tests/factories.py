"""Small async factories. They go through the HTTP API, except for what the API cannot
make (a superuser), so the tests exercise the same paths as clients do."""

import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud, models
from app.core.config import settings
from app.core.db import SET_TENANT_CONTEXT, tenant_context
from app.models import LoginThrottle, UserCreate

API = settings.API_V1_STR
PASSWORD = "correct horse battery"
# UserPublic, exactly: nothing more (no password, no hash) and nothing less.
USER_FIELDS = {
    "id",
    "email",
    "full_name",
    "role",
    "is_active",
    "is_superuser",
    "tenant_id",
    "created_at",
}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Actor:
    """A logged-in user: its public fields, tokens and ready-made auth headers."""

    user: dict[str, Any]
    access_token: str
    refresh_token: str
    password: str = PASSWORD

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def tenant_id(self) -> str:
        return str(self.user["tenant_id"])

    @property
    def email(self) -> str:
        return str(self.user["email"])

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


@dataclass
class Tenant:
    """A tenant with one logged-in user per role."""

    owner: Actor
    admin: Actor
    member: Actor

    @property
    def id(self) -> str:
        return self.owner.tenant_id

    def by_role(self, role: str) -> Actor:
        return {"owner": self.owner, "admin": self.admin, "member": self.member}[role]


@dataclass
class Factories:
    client: AsyncClient
    session: AsyncSession
    counter: list[int] = field(default_factory=lambda: [0])

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            f"{API}/login/access-token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def actor(self, user: dict[str, Any], password: str = PASSWORD) -> Actor:
        tokens = await self.login(user["email"], password)
        return Actor(user, tokens["access_token"], tokens["refresh_token"], password)

    async def signup(
        self, *, email: str | None = None, password: str = PASSWORD, tenant_name: str = "Acme"
    ) -> Actor:
        """A new tenant through open signup; the returned actor is its owner."""
        response = await self.client.post(
            f"{API}/users/signup",
            json={
                "email": email or unique_email("owner"),
                "password": password,
                "tenant_name": tenant_name,
            },
        )
        assert response.status_code == 201, response.text
        return await self.actor(response.json(), password)

    async def user(self, by: Actor, *, role: str = "member", **fields: Any) -> Actor:
        """A user created by `by` in its tenant, logged in."""
        body = {"email": unique_email(role), "password": PASSWORD, "role": role, **fields}
        response = await self.client.post(f"{API}/users/", json=body, headers=by.headers)
        assert response.status_code == 201, response.text
        return await self.actor(response.json(), body["password"])

    async def tenant(self, name: str = "Acme") -> Tenant:
        owner = await self.signup(tenant_name=name)
        admin = await self.user(owner, role="admin")
        member = await self.user(owner, role="member")
        return Tenant(owner=owner, admin=admin, member=member)

    async def superuser(self) -> Actor:
        """A platform superuser (owner of its own tenant): the API cannot make one."""
        email = unique_email("root")
        created = await crud.create_tenant_with_owner(
            session=self.session,
            tenant_name="Platform",
            owner_in=UserCreate(email=email, password=PASSWORD),
            is_superuser=True,
        )
        assert created is not None
        return await self.actor({"email": email, **created[1].model_dump(mode="json")})

    async def project(self, by: Actor, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Project {secrets.token_hex(3)}", **fields}
        response = await self.client.post(f"{API}/projects/", json=body, headers=by.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def task(self, by: Actor, project_id: str, **fields: Any) -> dict[str, Any]:
        body = {"project_id": project_id, "title": f"Task {secrets.token_hex(3)}", **fields}
        response = await self.client.post(f"{API}/tasks/", json=body, headers=by.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())


@asynccontextmanager
async def across_tenants(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A committed transaction of the app's role that sees every tenant, as a job's would."""
    async with engine.begin() as connection:
        await connection.execute(
            SET_TENANT_CONTEXT, tenant_context(tenant_id=None, cross_tenant=True)
        )
        yield connection


async def purge(
    engine: AsyncEngine, tenant_ids: Iterable[str | uuid.UUID], emails: Iterable[str]
) -> None:
    """Remove what a test on `committed_client` made: its tenants (rows cascade) and the
    throttle keys of its emails."""
    async with across_tenants(engine) as connection:
        await connection.execute(
            sa.delete(models.Tenant).where(
                col(models.Tenant.id).in_([uuid.UUID(str(t)) for t in tenant_ids])
            )
        )
        await connection.execute(
            sa.delete(LoginThrottle).where(
                col(LoginThrottle.key).in_(
                    [
                        crud.throttle_key(kind, email)
                        for email in emails
                        for kind in ("email", "signup-email", "recovery-email")
                    ]
                )
            )
        )
