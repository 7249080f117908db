"""An app with no node behind it: for tests of the routes themselves, not what they do."""

from __future__ import annotations

from quart_trio import QuartTrio

from hubbub.config import load_settings
from hubbub.http.app import create_app
from hubbub.http.context import HttpContext


def bare_app() -> QuartTrio:
    """The node's Quart app with every route registered and no services: its url_map is
    the real one; a request it served would fail."""
    return create_app(
        HttpContext(
            settings=load_settings(environ={}, prepare_data_dir=False),
            storage=None,  # type: ignore[arg-type]
            tokens=None,  # type: ignore[arg-type]
            metrics=None,  # type: ignore[arg-type]
            supervisor_snapshot=dict,
            readiness=dict,  # type: ignore[arg-type]
        )
    )
