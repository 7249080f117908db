"""The Quart-Trio application: thin handlers over the node's services."""

from __future__ import annotations

from quart_trio import QuartTrio

from hubbub.http.api_chat_routes import api_chat
from hubbub.http.api_user_routes import api_users
from hubbub.http.auth_routes import auth
from hubbub.http.block_routes import blocks
from hubbub.http.boundary import install_boundary
from hubbub.http.context import HttpContext
from hubbub.http.errors import install_error_handlers
from hubbub.http.group_routes import groups
from hubbub.http.guards import install_product_tokens
from hubbub.http.health_routes import health
from hubbub.http.message_routes import messages
from hubbub.http.openapi.routes import openapi
from hubbub.http.ops_routes import ops
from hubbub.http.request_metrics import install_request_metrics
from hubbub.http.stream_routes import stream
from hubbub.http.upload_routes import MULTIPART_OVERHEAD, uploads
from hubbub.http.user_routes import users
from hubbub.http.web_routes import web


def create_app(ctx: HttpContext) -> QuartTrio:
    """An app bound to one node's services. Routes are registered in one place, here."""
    # No static folder: Quart's implicit /static route would only serve OS errors (a long
    # name was a 500). Media have a route of their own.
    app = QuartTrio("hubbub", static_folder=None)
    app.extensions["hubbub"] = ctx
    app.config["JSON_SORT_KEYS"] = False
    install_request_metrics(app, ctx.metrics)
    # Uploads stream under their own limit; every other body is capped at 64 KiB.
    install_boundary(app, stream_body_limit=ctx.settings.max_upload_bytes + MULTIPART_OVERHEAD)
    install_error_handlers(app)
    install_product_tokens(app)
    for blueprint in (
        auth,
        users,
        messages,
        groups,
        stream,
        health,
        uploads,
        ops,
        web,
        api_users,
        api_chat,
        openapi,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(blocks)
    return app
