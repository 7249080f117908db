"""The WebSocket path: handshake, connection driver and per-connection session.

``front_door`` (one level up) hands ``/ws/chat`` upgrades here; everything else goes to
the HTTP app.
"""
