"""schemathesis against a live node: every operation of /openapi.json, driven with
generated input (valid and invalid), answers no 5xx and nothing outside its description.

The node runs in a thread of its own (``node_in_thread``) so that schemathesis' blocking
HTTP client can call it; the description is loaded from the node's own /openapi.json.
Each operation gets a bounded, derandomized number of examples, so the run is the same
on every machine and stays short.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hubbub.client import ChatClient
from hubbub.http.openapi.document import build_document
from hubbub.node import Node
from tests.helpers.images import encoded_image
from tests.helpers.nodes import node_in_thread
from tests.helpers.server_api import create_key

#: Examples per operation and round: enough to reach each answer an operation has with
#: ordinary input, few enough for a run well under a minute. HUBBUB_FUZZ_EXAMPLES=200
#: digs deeper, by hand.
EXAMPLES = int(os.environ.get("HUBBUB_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Operations whose every answer may be a refusal: generated user ids rarely exist, and
#: by the time leave and promote run, the run itself may have taken the caller out of
#: the group (today: add-member, leave, promote).
MAX_REFUSED_ONLY = 4
DESCRIPTION = build_document()
OPS_TOKEN = "openapi-test-operator-token"
PASSWORD = "correct horse battery"


@attrs.frozen
class Live:
    url: str
    #: The Authorization header for each security scheme of the description.
    credentials: dict[str, str]
    #: Path parameters that name things which exist, by parameter name.
    real: dict[str, object]
    #: Query arguments that do, likewise (the cursor before bob wrote).
    real_query: dict[str, object]
    #: Path parameters of one path that differ from ``real`` (a name is a different file
    #: under /web than under /ops/assets), by path.
    real_at: dict[str, dict[str, object]]
    #: Bodies naming things that exist, by "METHOD path" (ids in a body: the same).
    real_body: dict[str, dict[str, object]]


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[Live]:
    """A node where ada has a group with bob in it, a message from bob and an image, and
    a server API key."""
    keys: list[str] = []

    async def create_api_key(node: Node) -> None:
        keys.append(await create_key(node.storage, "openapi"))

    with node_in_thread(
        tmp_path / "data", database_url, create_api_key, ops_token=OPS_TOKEN
    ) as url:
        yield _populate(url, keys[0])


def _populate(url: str, api_key: str) -> Live:
    with httpx.Client(base_url=url, timeout=10) as client:
        ids = {}
        for name in ("ada", "bob"):
            created = client.post(
                "/auth/signup",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
        # Two logins: schemathesis spends (and then replays) the refresh token of one,
        # which revokes that login, and logs the other out; access tokens outlive both.
        pairs = [
            client.post("/auth/login", data={"username": "ada", "password": PASSWORD}).json()
            for _ in range(2)
        ]
        access = {"Authorization": f"Bearer {pairs[0]['access_token']}"}
        group = client.post("/groups/create-group", params={"name": "g"}, headers=access)
        assert group.status_code == 200, group.text
        group_id = group.json()["group_id"]
        added = client.post(
            f"/groups/{group_id}/add-member", params={"user_id": ids["bob"]}, headers=access
        )
        assert added.status_code == 200, added.text
        image = client.post(
            "/upload/image",
            files={"file": ("a.png", encoded_image("PNG"), "image/png")},
            headers=access,
        )
        assert image.status_code == 200, image.text
        bob = client.post("/auth/login", data={"username": "bob", "password": PASSWORD})
        head = client.get("/sync", params={"since": "now"}, headers=access)
        assert head.status_code == 200, head.text
    # Histories, conversations and the stream have something in them to check.
    trio.run(_converse, url, bob.json()["access_token"], ids["ada"], group_id, image.json()["url"])
    return Live(
        url,
        credentials={
            "accessToken": f"Bearer {pairs[0]['access_token']}",
            "refreshToken": f"Bearer {pairs[1]['refresh_token']}",
            "opsToken": f"Bearer {OPS_TOKEN}",
            "apiKey": f"Bearer {api_key}",
        },
        real={
            "group_id": group_id,
            "user_id": ids["bob"],
            "filename": image.json()["filename"],
            "name": "ops.js",
        },
        real_at={"/web/{name}": {"name": "app.js"}},
        real_query={"since": head.json()["cursor"], "user_ids": f"{ids['ada']},{ids['bob']}"},
        real_body={
            "POST /conversations/mute": {"kind": "direct", "user_id": ids["bob"]},
            "DELETE /conversations/mute": {"kind": "group", "group_id": group_id},
            "POST /api/v1/messages": {
                "author_id": ids["bob"],
                "recipient_id": ids["ada"],
                "message": "from the server",
            },
        },
    )


async def _converse(url: str, token: str, ada: int, group_id: int, image_url: str) -> None:
    """As bob: a direct message to ada, edited and reacted to, and a group message with
    an image."""
    async with ChatClient.connect(url, token) as bob:
        sent = await bob.send_and_answer(
            {"type": "message", "recipient_id": ada, "message": "hello"}, "d"
        )
        assert sent["type"] == "ack", sent
        changes = [
            ({"type": "edit", "message_id": sent["message_id"], "message": "hi"}, "edit"),
            ({"type": "react", "message_id": sent["message_id"], "emoji": "+1"}, "react"),
        ]
        for frame, client_id in changes:
            answer = await bob.send_and_answer(
                frame, client_id, answer="message_edited" if client_id == "edit" else "reaction"
            )
            assert answer["type"] != "error", answer
        posted = await bob.send_and_answer(
            {"type": "group_message", "group_id": group_id, "image_url": image_url}, "g"
        )
        assert posted["type"] == "ack", posted


def _operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path) for path, item in DESCRIPTION["paths"].items() for method in item
    ]


def _parameters(method: str, path: str) -> list[dict]:
    return DESCRIPTION["paths"][path][method.lower()].get("parameters", [])


def _negatable(method: str, path: str) -> bool:
    """Whether any input of the operation can be invalid: it has a body, or a parameter
    that is not free text. (Hypothesis finds no invalid input for the others.)"""
    operation = DESCRIPTION["paths"][path][method.lower()]
    free = {"type": "string"}
    return "requestBody" in operation or any(
        p["schema"] != free for p in operation.get("parameters", [])
    )


def _headers(live: Live, method: str, path: str) -> dict[str, str]:
    """The credential of the operation's first security scheme, if it has one."""
    security = DESCRIPTION["paths"][path][method.lower()]["security"]
    for requirement in security:
        for scheme in requirement:
            assert scheme in live.credentials, f"no credential for {scheme}: add it to _populate"
            return {"Authorization": live.credentials[scheme]}
    return {}


def _drive(
    schema: schemathesis.BaseSchema, live: Live, method: str, path: str, statuses: set[int]
) -> list[str]:
    """Run the operation's rounds of examples (valid input; invalid input if it can be
    invalid; valid input at ids that exist), adding each answer's status
    to ``statuses``; the failures, described."""
    operation = schema[path][method]
    headers = _headers(live, method, path)
    failures = []
    names = {p["name"]: p["in"] for p in _parameters(method, path)}
    known = {**live.real, **live.real_at.get(path, {})}
    real = {n: known[n] for n, at in names.items() if at == "path" and n in known}
    real_query = {
        n: live.real_query[n] for n, at in names.items() if at == "query" and n in live.real_query
    }
    Fixed = dict[str, object]
    #: Each round: its mode and what it fixes (path parameters, query, the body).
    rounds: list[tuple[GenerationMode, Fixed, Fixed, Fixed]] = [
        (GenerationMode.POSITIVE, {}, {}, {})
    ]
    if _negatable(method, path):
        rounds.append((GenerationMode.NEGATIVE, {}, {}, {}))
    real_body = live.real_body.get(f"{method} {path}", {})
    if real or real_query or real_body:  # generated ids rarely exist: aim at real ones
        rounds.append((GenerationMode.POSITIVE, real, real_query, real_body))
    for mode, fixed, fixed_query, fixed_body in rounds:
        body = {"body": fixed_body} if fixed_body else {}

        @FUZZ
        @given(
            case=operation.as_strategy(
                generation_mode=mode, path_parameters=fixed, query=fixed_query or None, **body
            )
        )
        def examples(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=live.url, headers=headers, checks=CHECKS, timeout=10
            )
            statuses.add(response.status_code)

        try:
            examples()
        # Every failure is reported, not just the first (schemathesis' FailureGroup is a
        # BaseExceptionGroup).
        except (Exception, BaseExceptionGroup) as failure:
            aimed = " at real ids" if fixed or fixed_query or fixed_body else ""
            failures.append(f"{method} {path} ({mode.value}{aimed}): {failure}")
    return failures


def test_every_operation_answers_within_its_description(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    assert schema.raw_schema == DESCRIPTION  # the node serves this very document
    failures: list[str] = []
    answered: dict[str, set[int]] = {}
    for method, path in _operations():
        statuses = answered[f"{method} {path}"] = set()
        failures += _drive(schema, live, method, path, statuses)
    assert not failures, "\n\n".join(failures)
    # The credentials worked: every operation answered something besides 401 (and the
    # run reached past the input checks: some answer of each is not a refusal of it).
    unauthorized = [name for name, seen in answered.items() if seen <= {401}]
    assert not unauthorized, f"only 401 from {unauthorized}"
    refused_only = [name for name, seen in answered.items() if seen <= {401, 404, 422}]
    assert len(refused_only) <= MAX_REFUSED_ONLY, f"nothing but refusals from {refused_only}"
