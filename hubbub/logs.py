"""Log set-up: readable lines by default, JSON lines with ``HUBBUB_LOG_FORMAT=json``.

Structured fields travel in ``extra={"fields": {...}}`` so both formats show them:
``log.info("connection opened", extra={"fields": {"user_id": 7}})``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return getattr(record, "fields", None) or {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(fields_of(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = fields_of(record)
        if extra:
            text += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return text


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send every ``hubbub`` log line to stderr in the chosen format. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("hubbub").setLevel(level.upper())
    # Hypercorn logs every request at info; its errors still come through.
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
    # coredis logs a traceback per failed connection attempt; hubbub logs each Redis
    # outage once, when it starts and when it ends.
    logging.getLogger("coredis").setLevel(logging.CRITICAL)
