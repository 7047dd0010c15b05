"""Regressions found by fuzzing the API with schemathesis (backend/fuzz): 500s and wrong statuses."""

import uuid

import pytest

from tests.conftest import API
from tests.factories import Factories


@pytest.mark.parametrize("actor", ["owner", "admin", "superuser"])
async def test_deactivate_with_a_taken_email_is_a_409_that_changes_nothing(
    make: Factories, actor: str
) -> None:
    # Deactivating revokes the user's logins; that UPDATE used to autoflush the new email
    # first, and the duplicate escaped as a 500 instead of the 409.
    tenant = await make.tenant()
    by = await make.superuser() if actor == "superuser" else tenant.by_role(actor)
    member = tenant.member

    response = await make.client.patch(
        f"{API}/users/{member.id}",
        json={"email": tenant.owner.email.upper(), "is_active": False},
        headers=by.headers,
    )

    assert response.status_code == 409, response.text
    assert response.json() == {"detail": "A user with this email already exists"}
    # Nothing changed: the member keeps their email, stays active, and their login works.
    me = await make.client.get(f"{API}/users/me", headers=member.headers)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == member.email
    assert me.json()["is_active"] is True


def test_patch_schemas_admit_null_only_where_the_server_takes_it() -> None:
    """The generated client must not offer `null` for a field the server answers 422 for."""
    from app.main import app
    from app.models import PatchModel

    schemas = app.openapi()["components"]["schemas"]
    patch_models = {cls.__name__: cls for cls in PatchModel.__subclasses__()}
    patch_models |= {
        sub.__name__: sub for cls in list(patch_models.values()) for sub in cls.__subclasses__()
    }
    assert {"UserUpdateMe", "UserUpdate", "TenantUpdate", "ProjectUpdate", "TaskUpdate"} <= set(
        patch_models
    )
    for name, cls in patch_models.items():
        for field, prop in schemas[name]["properties"].items():
            admits_null = {"type": "null"} in prop.get("anyOf", [])
            assert admits_null == (field in cls.nullable_fields), (name, field)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize("resource", ["projects", "tasks"])
async def test_an_if_match_naming_no_version_answers_after_the_id_is_checked(
    make: Factories, method: str, resource: str
) -> None:
    # An If-Match naming no version was refused (412) before the path id was even parsed,
    # so a malformed id answered 412 instead of 422, and a missing row 412 instead of 404.
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    row = project if resource == "projects" else await make.task(tenant.owner, project["id"])
    body = {"description": "changed"} if method == "PATCH" else None
    headers = {**tenant.owner.headers, "If-Match": ""}

    async def send(id_: str, extra: dict[str, str] | None = None) -> int:
        response = await make.client.request(
            method, f"{API}/{resource}/{id_}", json=body, headers={**headers, **(extra or {})}
        )
        return response.status_code

    assert await send("null,null") == 422
    assert await send(str(uuid.uuid4())) == 404
    assert await send(row["id"], {"Authorization": tenant.member.headers["Authorization"]}) == (
        403 if method == "DELETE" or resource == "projects" else 412
    )
    assert await send(row["id"]) == 412
    assert await send(row["id"], {"If-Match": 'W/"1"'}) == (200 if method == "PATCH" else 204)


@pytest.mark.parametrize("path", ["/tasks/%0A", "/projects/%0A", "/users/%0A"])
async def test_a_path_ending_in_a_newline_is_not_its_parent_list(
    make: Factories, path: str
) -> None:
    # Starlette's `$` matched before a final newline, so `/tasks/\n` answered the task
    # list (200 with a list body where a task was documented).
    owner = await make.signup()
    response = await make.client.get(f"{API}{path}", headers=owner.headers)
    assert response.status_code == 422, response.text
