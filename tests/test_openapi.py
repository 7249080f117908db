"""The OpenAPI description (hubbub/http/openapi) is valid and describes every route.

The route check is what keeps the description whole: a route added to the app without
its operation in the document fails here, by name (and so does an operation left behind
by a removed route).
"""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from hubbub.http.openapi import document
from hubbub.http.openapi.document import build_document
from tests.helpers.apps import bare_app

#: Methods every route has that the description leaves implicit.
IMPLICIT = {"HEAD", "OPTIONS"}
#: Routes of the app that are deliberately not described: none today. (The WebSocket,
#: /ws/chat, never reaches the app: the front door hands it to hubbub.ws; it is in
#: docs/protocol.md. The app has no static folder.)
UNDESCRIBED: set[tuple[str, str]] = set()
_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _served() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route of the app."""
    found = set()
    for rule in bare_app().url_map.iter_rules():
        path = _ARGUMENT.sub(r"{\1}", rule.rule)
        for method in set(rule.methods or ()) - IMPLICIT:
            found.add((method, path))
    return found - UNDESCRIBED


def _described() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in build_document()["paths"].items()
        for method in item
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    description = build_document()
    assert description["openapi"].startswith("3.1")
    validate(description)  # raises on the first violation


def test_every_route_is_described() -> None:
    missing = sorted(_served() - _described())
    assert not missing, "routes without an operation in hubbub/http/openapi: " + ", ".join(
        f"{method} {path}" for method, path in missing
    )


def test_every_operation_is_a_route() -> None:
    stale = sorted(_described() - _served())
    assert not stale, "operations no route serves: " + ", ".join(
        f"{method} {path}" for method, path in stale
    )


def test_operations_have_unique_ids_and_say_their_errors() -> None:
    ids = []
    for item in build_document()["paths"].values():
        for operation in item.values():
            ids.append(operation["operationId"])
            if operation["security"]:
                assert "401" in operation["responses"], operation["operationId"]
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer.get("content"), f"{operation['operationId']} {status}"
    assert len(ids) == len(set(ids))


def test_two_areas_describing_one_path_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document, "AREAS", (*document.AREAS, document.AREAS[0]))
    with pytest.raises(ValueError, match="duplicate path"):
        build_document()
