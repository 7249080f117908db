"""A method a route does not serve is 405 with ``Allow`` (RFC 9110) and a JSON detail.

Found by schemathesis' CLI (ST204): the error handler dropped the exception's headers,
so every 405 came without ``Allow``. Each described path is tried, and its ``Allow``
must name the methods the OpenAPI description gives it."""

from __future__ import annotations

import re

import httpx

from hubbub.http.openapi.document import build_document
from hubbub.node import Node

_PARAMETER = re.compile(r"\{[^}]+\}")


async def test_an_unserved_method_is_405_with_allow_naming_the_described_ones(
    node: Node,
) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        for path, item in build_document()["paths"].items():
            concrete = _PARAMETER.sub("1", path)
            answer = await client.request("TRACE", concrete)
            assert answer.status_code == 405, path
            assert answer.json()["detail"], path
            allowed = {m.strip() for m in answer.headers.get("Allow", "").split(",") if m}
            described = {method.upper() for method in item}
            assert described <= allowed <= described | {"HEAD", "OPTIONS"}, path


async def test_an_id_out_of_range_is_404_for_every_method_of_its_path(node: Node) -> None:
    """An id no route accepts (0) matches no route: 404, whatever the method. Found by
    schemathesis: with POST and DELETE of /users/{user_id}/block as two rules, werkzeug
    counted the POST rule's method before the DELETE rule's converter refused the id, and
    answered DELETE /users/0/block with 405 and ``Allow: POST``."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        for path, item in build_document()["paths"].items():
            for method, operation in item.items():
                at_path = [p for p in operation.get("parameters", []) if p["in"] == "path"]
                if not at_path or any(p["schema"].get("type") != "integer" for p in at_path):
                    continue
                answer = await client.request(method.upper(), _PARAMETER.sub("0", path))
                assert answer.status_code == 404, f"{method} {path}: {answer.status_code}"
                assert answer.json()["detail"], path
