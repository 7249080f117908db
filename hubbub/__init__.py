"""hubbub: a realtime chat backend on Trio."""

__version__ = "0.1.0"
