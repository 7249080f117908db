"""The web chat's files over HTTP: content types, caching, CSP, and nothing else served."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from hubbub.http.web_routes import content_security_policy, load_assets


def test_the_package_ships_every_file_the_page_loads() -> None:
    assets = load_assets(resources.files("hubbub.web") / "static")
    assert {"index.html", "app.js", "style.css", "favicon.svg"} <= set(assets)
    # Every module imported by a module is shipped too (a missing one breaks the page).
    for name, asset in assets.items():
        if name.endswith(".js"):
            for imported in re.findall(rb'from "\./([a-z_]+\.js)"', asset.body):
                assert imported.decode() in assets, f"{name} imports {imported!r}"


def test_the_policy_allows_only_this_origin() -> None:
    policy = content_security_policy("chat.example.com:8000")
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self' ws://chat.example.com:8000 wss://chat.example.com:8000" in policy
    assert "img-src 'self' blob: data:" in policy
    # A Host header that could smuggle a directive is left out, not echoed.
    hostile = content_security_policy("evil.com; script-src *")
    assert "evil" not in hostile
    assert "connect-src 'self';" in hostile


def test_the_page_and_its_files_are_served(node_url: str) -> None:
    with httpx.Client(base_url=node_url, timeout=10) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/web/app.js">' in page.text
        script = http.get("/web/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert http.get("/web/style.css").headers["content-type"] == "text/css; charset=utf-8"
        again = http.get("/web/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/web/nope.js",
        "/web/../pyproject.toml",
        "/web/..%2f..%2fpyproject.toml",
        "/web/%2e%2e/%2e%2e/pyproject.toml",
        "/web/__init__.py",
        "/web/",
        "/web/static",
    ],
)
def test_nothing_else_is_served(node_url: str, path: str) -> None:
    with httpx.Client(base_url=node_url, timeout=10) as http:
        answer = http.get(path)
    assert answer.status_code == 404
    assert "detail" in answer.json()
