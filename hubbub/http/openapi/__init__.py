"""The OpenAPI 3.1 description of the HTTP surface, served at ``/openapi.json``.

One module per area (auth, users, messages, groups, stream, uploads, health, ops, meta)
holds that area's ``PATHS`` (and ``SCHEMAS``); document.py assembles them. How to add
an endpoint: docs/http.md, "The API description"."""
