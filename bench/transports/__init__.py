"""Candidate WebSocket servers and a lean load generator for bench/ws_transports.py."""
