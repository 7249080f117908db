"""``/auth``: sign-up, login, refresh, logout (auth_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    PUBLIC,
    REFRESH,
    TEXT,
    Schema,
    errors,
    json_content,
    obj,
    ok,
    operation,
    ref,
)
from hubbub.http.validation import EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN

TAG = "auth"

_CREDENTIALS = obj({"username": TEXT, "password": TEXT})
#: The sign-up rules of docs/http.md (the server API's provisioning checks them too).
SIGNUP_FIELDS: dict[str, Schema] = {
    "username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,32}$"},
    "email": {"type": "string", "format": "email", "maxLength": EMAIL_MAX},
    "password": {"type": "string", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX},
}
_SIGNUP = obj(SIGNUP_FIELDS)
_LOGOUT = obj({}, {"refresh_token": TEXT})

PATHS = {
    "/auth/signup": {
        "post": operation(
            "signup",
            "Create a user",
            {
                **ok(
                    obj({"Success": TEXT, "id": ID, "username": TEXT}),
                    "The user was created",
                    status=201,
                ),
                **errors(409),
            },
            tag=TAG,
            security=PUBLIC,
            body={"required": True, "content": json_content(_SIGNUP)},
            description="The username is unique regardless of case (409 if taken, as is "
            "the email). The rules of docs/http.md apply (422 otherwise).",
        )
    },
    "/auth/login": {
        "post": operation(
            "login",
            "Tokens for a username and password",
            {**ok(ref("TokenPair")), **errors(401, 429)},
            tag=TAG,
            security=PUBLIC,
            body={
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": _CREDENTIALS},
                    "application/json": {"schema": _CREDENTIALS},
                    "multipart/form-data": {"schema": _CREDENTIALS},
                },
            },
            description="The OAuth2 password flow (a form), or the same fields as JSON. 401 "
            "never says which part was wrong. Failed logins are throttled per username and "
            "per client address: 429 with Retry-After (docs/http.md).",
        )
    },
    "/auth/refresh": {
        "post": operation(
            "refresh",
            "A new token pair for a refresh token (which is spent)",
            ok(ref("TokenPair")),
            tag=TAG,
            security=REFRESH,
            description="Refresh tokens rotate: each may be spent once. A spent one presented "
            "again is 401, and every token of its login is revoked.",
        )
    },
    "/auth/logout": {
        "post": operation(
            "logout",
            "End one login: revoke every token of its family",
            {"204": {"description": "Logged out"}},
            tag=TAG,
            security=[*REFRESH, *ACCESS, {}],
            body={
                "required": False,
                "content": {
                    "application/json": {"schema": _LOGOUT},
                    "application/x-www-form-urlencoded": {"schema": _LOGOUT},
                },
            },
            description="The refresh token in the body names the login; without one, the "
            "bearer token (access or refresh) does. Neither: 401.",
        )
    },
}
