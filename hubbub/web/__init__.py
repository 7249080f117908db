"""The web chat's files (``static/``): plain HTML, CSS and ES modules, no build step.

Served by ``hubbub.http.web_routes``; docs/webchat.md describes them."""
