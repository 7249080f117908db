"""Building blocks of the OpenAPI description: the shapes every area repeats.

Each area module (auth.py, users.py, ...) describes its routes with these, so that an
operation says only what is its own: its summary, parameters, body and answers.
"""

from __future__ import annotations

from typing import Any

from hubbub.http.validation import MAX_ID

Schema = dict[str, Any]
Security = list[dict[str, list[str]]]

#: Security requirements, by the schemes of document.py.
ACCESS: Security = [{"accessToken": []}]
REFRESH: Security = [{"refreshToken": []}]
OPS: Security = [{"opsToken": []}]
API_KEY: Security = [{"apiKey": []}]
PUBLIC: Security = []

#: What each error status means wherever it is answered; the detail says more.
ERROR_MEANINGS = {
    304: "Not modified: the client's copy (If-None-Match) is current",
    401: "Missing, invalid or expired credential",
    403: "Authenticated, but not allowed to do this",
    404: "No such resource among the caller's",
    408: "The request body stopped arriving",
    409: "Conflicts with what exists",
    413: "The request body is too large",
    415: "The upload is not an image of a supported format",
    422: "Invalid input: the detail names the field and the rule",
    429: "Too many failed attempts: retry after Retry-After seconds",
    503: "A dependency (storage, chat) is unavailable: retry shortly",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON null (OpenAPI 3.1 has no ``nullable``)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A JSON object with these properties; the ``required`` ones are always present.
    More properties may be added in later versions (docs/CONTRACT: fields are added)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
TEXT: Schema = {"type": "string"}


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ok(schema: Schema, description: str = "Success", status: int = 200) -> dict[str, Any]:
    """A JSON success answer."""
    return {str(status): {"description": description, "content": json_content(schema)}}


def no_content(description: str = "Done") -> dict[str, Any]:
    """A 204 answer: no body."""
    return {"204": {"description": description}}


def errors(*statuses: int) -> dict[str, Any]:
    """Error answers: each a JSON ``{"detail"}`` (the shared ``Error`` response)."""
    answers: dict[str, Any] = {}
    for status in statuses:
        if status == 304:
            answers["304"] = {"description": ERROR_MEANINGS[304]}
        elif status == 429:
            answers["429"] = {
                "description": ERROR_MEANINGS[429],
                "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
                "content": json_content(ref("Error")),
            }
        else:
            answers[str(status)] = {
                "description": ERROR_MEANINGS[status],
                "content": json_content(ref("Error")),
            }
    return answers


def path_id(name: str, description: str) -> Schema:
    """A path id: ASCII digits, 1..2**63-1; anything else matches no route (404)."""
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ID}


def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    security: Security,
    parameters: list[Schema] | None = None,
    body: dict[str, Any] | None = None,
    description: str | None = None,
    dependent: bool = True,
) -> dict[str, Any]:
    """One operation, with the answers the app-wide rules add to its own ``responses``:

    - 401 for one that needs a credential;
    - 413 (over the body cap) and 422 (not a JSON object, not UTF-8, NUL) for one with a
      body; 422 for one with query arguments (out of range, NUL: validation.py);
    - 503 unless it is not ``dependent`` on storage or chat."""
    answers = dict(responses)
    added: list[int] = []
    if security:
        added.append(401)
    if body is not None:
        added += [413, 422]
    if any(p["in"] == "query" for p in parameters or ()):
        added.append(422)
    if dependent:
        added.append(503)
    answers.update({k: v for k, v in errors(*dict.fromkeys(added)).items() if k not in answers})
    found: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": security,
        "responses": dict(sorted(answers.items())),
    }
    if description:
        found["description"] = description
    if parameters:
        found["parameters"] = parameters
    if body is not None:
        found["requestBody"] = body
    return found
