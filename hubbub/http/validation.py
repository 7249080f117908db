"""Input checks at the HTTP boundary. Each failure is an ``ApiError(422, detail)``."""

from __future__ import annotations

import re
from typing import Any

from quart import request

from hubbub.http.errors import ApiError

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 256


def require_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"{field} is required and must be a non-empty string")
    return value


def check_username(value: str) -> str:
    if not USERNAME.fullmatch(value):
        raise ApiError(422, "username must be 1-32 characters of letters, digits, '_', '.', '-'")
    return value


def check_email(value: str) -> str:
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise ApiError(422, "email is not a valid address")
    return value


def check_password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise ApiError(422, f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return value


async def json_body() -> dict[str, Any]:
    """The request's JSON object, or 422."""
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


async def form_or_json() -> dict[str, Any]:
    """Form fields (OAuth2 password flow) or a JSON object, whichever the client sent."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return dict((await request.form).items())
    return await json_body()


def int_arg(name: str, *, default: int | None = None, minimum: int = 1) -> int | None:
    """A positive integer query argument, or 422."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"{name} must be an integer") from None
    if value < minimum:
        raise ApiError(422, f"{name} must be at least {minimum}")
    return value
