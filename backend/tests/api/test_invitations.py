"""Invitations: invite by email, the link in the queued email, accept once, sign in."""

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import engine as app_engine
from app.models import Invitation, utc_now
from tests.conftest import API
from tests.factories import PASSWORD, Actor, Factories, bearer, purge, unique_email
from tests.mail import Outbox, Sink, eventually, token_in

INVALID = {"detail": "Invalid token"}
TAKEN = {"detail": "A user with this email already exists"}
INVITATION_FIELDS = {
    "id",
    "email",
    "role",
    "tenant_id",
    "invited_by_id",
    "created_at",
    "expires_at",
}


async def invite(client: AsyncClient, by: Actor, email: str, role: str = "member") -> Response:
    return await client.post(
        f"{API}/invitations/", json={"email": email, "role": role}, headers=by.headers
    )


async def accept(client: AsyncClient, token: str, **fields: Any) -> Response:
    body = {"token": token, "password": PASSWORD, **fields}
    return await client.post(f"{API}/invitations/accept", json=body)


async def link_token(outbox: Outbox) -> str:
    return await outbox.link_token("accept-invitation")


async def test_invite_accept_and_sign_in(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup(tenant_name="Invi\nters")
    email = unique_email("invited")
    response = await invite(client, owner, email.upper(), role="admin")
    assert response.status_code == 201, response.text
    invitation = response.json()
    assert set(invitation) == INVITATION_FIELDS
    assert invitation["email"] == email
    assert invitation["role"] == "admin"
    assert invitation["tenant_id"] == owner.tenant_id
    assert invitation["invited_by_id"] == owner.id
    [message] = await outbox.sent()
    assert message.email_to == email
    assert "Invi ters" in message.subject  # no line break in a header
    token = await link_token(outbox)
    assert token in message.html

    response = await accept(client, token, full_name="New Admin")
    assert response.status_code == 200, response.text
    tokens = response.json()
    me = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    user = me.json()
    assert (user["email"], user["role"], user["tenant_id"], user["full_name"]) == (
        email,
        "admin",
        owner.tenant_id,
        "New Admin",
    )
    login = await make.login(email)
    assert login["token_type"] == "bearer"
    # Spent: the same link again is refused, and the invitation is no longer pending.
    assert (await accept(client, token)).json() == INVALID
    assert (await accept(client, token)).status_code == 400
    listed = await client.get(f"{API}/invitations/", headers=owner.headers)
    assert listed.json() == {"data": [], "count": 0}


async def test_forged_expired_and_revoked_tokens_are_400(
    client: AsyncClient, make: Factories, outbox: Outbox, session: AsyncSession
) -> None:
    owner = await make.signup()
    expired_email, revoked_email = unique_email("expired"), unique_email("revoked")
    expired = (await invite(client, owner, expired_email)).json()
    expired_token = await link_token(outbox)
    revoked = (await invite(client, owner, revoked_email)).json()
    revoked_token = await link_token(outbox)
    await session.exec(
        sa.update(Invitation)
        .where(col(Invitation.id) == expired["id"])
        .values(expires_at=utc_now() - timedelta(seconds=1))
    )
    response = await client.delete(f"{API}/invitations/{revoked['id']}", headers=owner.headers)
    assert response.status_code == 204
    for token in (expired_token, revoked_token, "forged", expired_token + "x"):
        response = await accept(client, token)
        assert response.status_code == 400, token
        assert response.json() == INVALID
    users = await client.get(f"{API}/users/", headers=owner.headers)
    assert {u["email"] for u in users.json()["data"]} == {owner.email}
    # Gone from the pending list, and by id.
    listed = await client.get(f"{API}/invitations/", headers=owner.headers)
    assert listed.json()["count"] == 0
    response = await client.delete(f"{API}/invitations/{revoked['id']}", headers=owner.headers)
    assert response.status_code == 404


async def test_a_registered_email_is_409_at_invite_and_at_accept(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    other = await make.signup()
    response = await invite(client, owner, other.email.upper())
    assert response.status_code == 409
    assert response.json() == TAKEN
    assert await outbox.sent() == []
    # Registered between the invitation and its acceptance.
    email = unique_email("late")
    assert (await invite(client, owner, email)).status_code == 201
    token = await link_token(outbox)
    await make.signup(email=email)
    response = await accept(client, token)
    assert response.status_code == 409
    assert response.json() == TAKEN


async def test_a_new_invitation_replaces_the_pending_one(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    email = unique_email("twice")
    first = (await invite(client, owner, email)).json()
    first_token = await link_token(outbox)
    second = (await invite(client, owner, email, role="admin")).json()
    second_token = await link_token(outbox)
    listed = (await client.get(f"{API}/invitations/", headers=owner.headers)).json()
    assert [row["id"] for row in listed["data"]] == [second["id"]] != [first["id"]]
    assert (await accept(client, first_token)).json() == INVALID
    response = await accept(client, second_token)
    assert response.status_code == 200
    me = await client.get(f"{API}/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["role"] == "admin"


async def test_invitations_list_is_paginated(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    ids = [(await invite(client, owner, unique_email("page"))).json()["id"] for _ in range(3)]
    url = f"{API}/invitations/"
    page = (await client.get(url, params={"limit": 2}, headers=owner.headers)).json()
    assert page["count"] == 3
    rest = (await client.get(url, params={"skip": 2}, headers=owner.headers)).json()
    assert {row["id"] for row in page["data"] + rest["data"]} == set(ids)
    response = await client.get(url, params={"limit": 0}, headers=owner.headers)
    assert response.status_code == 422


async def test_bad_input_is_422_and_changes_nothing(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    for body in (
        {"email": "not-an-email"},
        {"email": unique_email(), "role": "king"},
        {"role": "member"},
    ):
        response = await client.post(f"{API}/invitations/", json=body, headers=owner.headers)
        assert response.status_code == 422, body
    assert (await invite(client, owner, unique_email())).status_code == 201
    token = await link_token(outbox)
    for body in ({"token": token, "password": "s3cr"}, {"password": PASSWORD}):
        response = await client.post(f"{API}/invitations/accept", json=body)
        assert response.status_code == 422
        assert "s3cr" not in response.text  # never echoed
    assert (await accept(client, token)).status_code == 200  # still unused
    assert (
        await client.post(f"{API}/invitations/", json={"email": "x@example.com"})
    ).status_code == 401


async def test_invitation_email_reaches_an_smtp_server_end_to_end(
    committed_client: AsyncClient, sink: Sink, worker: None
) -> None:
    """Through the real sessions and the in-process worker, as a deployment runs it."""
    client = committed_client
    sink.start()
    owner_email, email = unique_email("owner"), unique_email("invited")
    response = await client.post(
        f"{API}/users/signup",
        json={"email": owner_email, "password": PASSWORD, "tenant_name": "End to end"},
    )
    tenant_id = response.json()["tenant_id"]
    try:
        login = await client.post(
            f"{API}/login/access-token", data={"username": owner_email, "password": PASSWORD}
        )
        owner = Actor(response.json(), login.json()["access_token"], login.json()["refresh_token"])
        assert (await invite(client, owner, email)).status_code == 201

        async def delivered() -> bool:
            return bool(sink.messages_to(email))

        await eventually(delivered, "the invitation email")
        [text_body] = sink.texts_to(email)
        token = token_in(text_body, "accept-invitation")
        response = await accept(client, token)
        assert response.status_code == 200, response.text
        login = await client.post(
            f"{API}/login/access-token", data={"username": email, "password": PASSWORD}
        )
        assert login.status_code == 200
        assert (await accept(client, token)).status_code == 400
    finally:
        await purge(app_engine, [tenant_id], [owner_email, email])
