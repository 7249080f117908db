"""The HTTP API: a Quart-Trio app served by Hypercorn behind the front door."""
