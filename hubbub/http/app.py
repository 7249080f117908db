"""The Quart-Trio application: thin handlers over the node's services."""

from __future__ import annotations

from quart_trio import QuartTrio

from hubbub.http.auth_routes import auth
from hubbub.http.context import HttpContext
from hubbub.http.errors import install_error_handlers
from hubbub.http.group_routes import groups
from hubbub.http.health_routes import health
from hubbub.http.message_routes import messages
from hubbub.http.upload_routes import uploads
from hubbub.http.user_routes import users


def create_app(ctx: HttpContext) -> QuartTrio:
    """An app bound to one node's services. Routes are registered in one place, here."""
    app = QuartTrio("hubbub")
    app.extensions["hubbub"] = ctx
    # Uploads are bounded by their own streaming limit; this caps every other body.
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_upload_bytes + 64 * 1024
    app.config["JSON_SORT_KEYS"] = False
    install_error_handlers(app)
    for blueprint in (auth, users, messages, groups, health, uploads):
        app.register_blueprint(blueprint)
    return app
