"""Request limits: body size (413, before the body is read whole), URL and header lengths."""

import json
from collections.abc import AsyncIterator

from httpx import AsyncClient

from app.api.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URL_BYTES
from tests.conftest import API
from tests.factories import Factories

TOO_LARGE = {"detail": f"Request body larger than {MAX_BODY_BYTES} bytes"}


def padded_project(size: int) -> bytes:
    """A valid project body of exactly `size` bytes (JSON whitespace as padding)."""
    body = json.dumps({"name": "Padded"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def count_projects(client: AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get(f"{API}/projects/", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


async def test_a_body_of_the_limit_is_accepted_and_one_byte_more_is_a_413(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    headers = {**owner.headers, "Content-Type": "application/json"}
    at_limit = padded_project(MAX_BODY_BYTES)
    response = await client.post(f"{API}/projects/", content=at_limit, headers=headers)
    assert response.status_code == 201, response.text

    over = padded_project(MAX_BODY_BYTES + 1)
    response = await client.post(f"{API}/projects/", content=over, headers=headers)
    assert response.status_code == 413, response.text
    assert response.json() == TOO_LARGE
    assert await count_projects(client, owner.headers) == 1


async def test_a_chunked_body_is_cut_off_once_past_the_limit(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    chunk = b" " * 65_536
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "Chunked"'
        for _ in range(1000):  # 64 MiB if it were all read
            sent += 1
            yield chunk
        yield b"}"

    headers = {**owner.headers, "Content-Type": "application/json"}
    response = await client.post(f"{API}/projects/", content=endless_body(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json() == TOO_LARGE
    assert sent <= MAX_BODY_BYTES // len(chunk) + 2
    assert await count_projects(client, owner.headers) == 0


async def test_a_chunked_form_past_the_limit_is_a_413_too(client: AsyncClient) -> None:
    async def form() -> AsyncIterator[bytes]:
        yield b"username=a%40example.com&password="
        for _ in range(40):
            yield b"x" * 65_536

    response = await client.post(
        f"{API}/login/access-token",
        content=form(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text
    assert response.json() == TOO_LARGE


async def test_a_small_chunked_body_goes_through(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"Small"}'

    headers = {**owner.headers, "Content-Type": "application/json"}
    response = await client.post(f"{API}/projects/", content=body(), headers=headers)
    assert response.status_code == 201, response.text


async def test_a_long_query_string_or_path_is_a_414(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await client.get(
        f"{API}/projects/", params={"q": "x" * MAX_URL_BYTES}, headers=owner.headers
    )
    assert response.status_code == 414, response.text
    assert response.json() == {"detail": "URL too long"}
    response = await client.post(f"{API}/password-recovery/{'x' * MAX_URL_BYTES}@example.com")
    assert response.status_code == 414, response.text


async def test_a_long_header_is_a_431(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    for headers in (
        {"Authorization": "Bearer " + "x" * MAX_HEADER_BYTES},
        {**owner.headers, "If-Match": "W/" + '"1",' * (MAX_HEADER_BYTES // 4)},
        {**owner.headers, **{f"X-Filler-{i}": "y" * 4000 for i in range(10)}},
    ):
        response = await client.get(f"{API}/users/me", headers=headers)
        assert response.status_code == 431, response.text
        assert response.json() == {"detail": "Request headers too large"}
    # A long but bounded header still reaches the route.
    response = await client.get(
        f"{API}/users/me", headers={**owner.headers, "X-Filler": "z" * 4000}
    )
    assert response.status_code == 200, response.text
