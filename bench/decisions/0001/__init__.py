"""ADR 0001 (docs/decisions/0001-websocket-transport.md), archival: WebSocket echo
candidates (``servers``), a lean echo load generator (``load``), and the script that
measures them (``python -m bench.decisions.0001.ws_transports``)."""
