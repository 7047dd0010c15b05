from httpx import AsyncClient

from tests.conftest import API
from tests.factories import Factories


async def test_health_check(client: AsyncClient) -> None:
    response = await client.get(f"{API}/utils/health-check/")
    assert response.status_code == 200
    assert response.json() is True


async def test_ready_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get(f"{API}/utils/ready/")
    assert response.status_code == 200
    assert response.json() is True


async def test_test_email_is_for_superusers(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/utils/test-email/", params={"email_to": "x@example.com"}, headers=owner.headers
    )
    assert response.status_code == 403
    root = await make.superuser()
    response = await client.post(
        f"{API}/utils/test-email/", params={"email_to": "x@example.com"}, headers=root.headers
    )
    assert response.status_code == 201
    assert response.json() == {"message": "Test email sent"}
