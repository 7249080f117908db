"""Finding the versioned migrations shipped with the package.

Each backend has a folder ``migrations/<backend>/`` of files named ``NNNN_name.sql``. A
backend applies the pending ones in version order, each in its own transaction, and records
it in ``schema_migrations(version, applied_at)``; how it locks and runs them is the
backend's business. This module only finds, reads and checks the files. It reads files:
call it in a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import re
from importlib import resources

import attrs

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """Every migration shipped for ``backend`` (``"sqlite"`` or ``"postgres"``), ascending.

    Raises ``RuntimeError`` if the folder holds a misnamed file, two files of one version,
    or a gap in the versions: a broken package must not half-migrate a database."""
    folder = resources.files("hubbub.storage").joinpath("migrations", backend)
    migrations = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise RuntimeError(
                f"migration file {backend}/{entry.name} is misnamed: use NNNN_name.sql"
            )
        migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(
            f"{backend} migrations must be numbered 0001, 0002, ... without gaps or repeats;"
            f" found {versions}"
        )
    return migrations
