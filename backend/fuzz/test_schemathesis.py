"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI), as a member and as
an owner: no server error, and every answer fits what the schema documents.

Run by `scripts/test.sh` as a step of its own (`pytest backend/fuzz`): schemathesis serves
the app from an event loop of its own, so the app's connection pools must never see the
test suite's loop. Findings stay as ordinary tests in tests/api/test_fuzz_regressions.py.
"""

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.engine import Status, events
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from app.main import app
from tests.conftest import API

PASSWORD = "fuzzing password"
# No 5xx; statuses, content types, headers and bodies as documented; invalid input refused;
# auth enforced; a deleted row gone and a created one readable.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    use_after_free,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation and role, and stateful scenarios: about a minute on 2 cores.
MAX_EXAMPLES = 25
STATEFUL_RUNS = 80
# The same draw on every run by default, so the test command passes or fails for the code,
# not for the luck of the draw; FUZZ_RANDOM=1 explores new inputs (keep what it finds as
# a regression test).
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    database=None,
)
# Operations that end the caller's login or account: each example gets a new actor.
ENDS_THE_ACTOR = {
    ("POST", f"{API}/logout"),
    ("DELETE", f"{API}/users/me"),
    ("DELETE", f"{API}/tenants/me"),
    ("PATCH", f"{API}/users/me/password"),
    ("PATCH", f"{API}/users/me"),
}

schema = schemathesis.openapi.from_dict(app.openapi())
schema.app = app  # requests reach the app in-process, through schemathesis' ASGI client


def new_actor(role: str) -> dict[str, str]:
    """A new tenant by signup; the auth headers of its owner, or of a member it creates."""
    with asgi.get_client(app) as http:
        owner = f"owner-{secrets.token_hex(6)}@example.com"
        body = {"email": owner, "password": PASSWORD, "tenant_name": "Fuzz"}
        response = http.post(f"http://testserver{API}/users/signup", json=body)
        assert response.status_code == 201, response.text
        headers = login(http, owner)
        if role == "owner":
            return headers
        member = f"member-{secrets.token_hex(6)}@example.com"
        body = {"email": member, "password": PASSWORD, "role": "member"}
        response = http.post(f"http://testserver{API}/users/", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return login(http, member)


def login(http: Any, email: str) -> dict[str, str]:
    response = http.post(
        f"http://testserver{API}/login/access-token",
        data={"username": email, "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="session")
def actors(engine: Any) -> Iterator[dict[str, dict[str, str]]]:
    """One long-lived owner and member (in `engine`'s database); the app's lifespan ends
    with the run."""
    del engine  # only its database is needed
    try:
        yield {role: new_actor(role) for role in ("owner", "member")}
    finally:
        asgi.shutdown_lifespans()  # closes the app's pools on schemathesis' own loop


@pytest.mark.parametrize("role", ["member", "owner"])
@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation(case: schemathesis.Case, role: str, actors: Any) -> None:
    ends_the_actor = (case.method.upper(), case.path) in ENDS_THE_ACTOR
    headers = new_actor(role) if ends_the_actor else actors[role]
    case.call_and_validate(headers=headers, checks=CHECKS)


def stateful_run(headers: dict[str, str]) -> list[str]:
    """Schemathesis' own stateful phase: sequences through the links it infers (create, then
    read, change, delete), calling as `headers`. Its runner, not a bare Hypothesis state
    machine: scenarios depend on what the database kept from earlier ones, and the runner
    restarts where Hypothesis would stop on the replayed prefix drawing differently."""
    config = schemathesis.Config.from_dict(
        {
            **({} if RANDOM else {"seed": 20261203}),
            "headers": headers,
            "generation": {"max-examples": STATEFUL_RUNS, "database": "none"},
            "suppress-health-check": ["all"],
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": True, "max-steps": 10},
            },
            "checks": {
                "enabled": False,
                **{check.__name__: {"enabled": True} for check in CHECKS},
            },
        }
    )
    stateful = schemathesis.openapi.from_dict(app.openapi(), config=config)
    stateful.app = app
    problems = []
    scenarios = 0
    for event in schemathesis.engine.from_schema(stateful).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            if event.status in (Status.FAILURE, Status.ERROR):
                steps = [
                    f"{node.value.method} {node.value.formatted_path}"
                    for node in event.recorder.cases.values()
                ]
                problems.append(f"{event.status} in a scenario of: {', '.join(steps[-5:])}")
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status != Status.SUCCESS:
                        info = check.failure_info
                        detail = f"{info.failure.title}: {info.code_sample}" if info else ""
                        problems.append(f"{check.name} {check.status} {detail}")
        elif isinstance(event, events.NonFatalError | events.FatalError):
            problems.append(repr(event.info if hasattr(event, "info") else event))
    assert scenarios > 0, "the stateful phase ran no scenario"
    return problems


@pytest.mark.usefixtures("actors")
@pytest.mark.parametrize("role", ["member", "owner"])
def test_stateful_workflows(role: str) -> None:
    problems = stateful_run(new_actor(role))
    assert not problems, "\n".join(problems)
