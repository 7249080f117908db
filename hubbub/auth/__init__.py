"""Authentication shared by the WebSocket and HTTP edges: tokens and password hashing."""
