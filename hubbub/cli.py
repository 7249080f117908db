"""``hubbub serve``, ``hubbub migrate`` and ``hubbub api-key`` (``cli_api_keys``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import trio

from hubbub import cli_api_keys
from hubbub.config import ConfigError, Settings, add_arguments, describe, load_settings
from hubbub.engine.cluster import ClusterUnavailable
from hubbub.logs import configure_logging
from hubbub.storage import StorageError, open_storage
from hubbub.workers import follow_parent, supervise, worker_index

log = logging.getLogger("hubbub")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "run a node: HTTP and WebSocket on one port"),
        ("migrate", "apply pending database migrations and exit"),
    ):
        add_arguments(commands.add_parser(name, help=help_text))
    cli_api_keys.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    own = ("command", "action", "name")
    flags = {key: value for key, value in vars(args).items() if key not in own}
    try:
        settings = load_settings(flags)
    except ConfigError as error:
        print(f"hubbub: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == cli_api_keys.COMMAND:
            return cli_api_keys.run(settings, args.action, getattr(args, "name", None))
        if args.command == "migrate":
            trio.run(_migrate, settings)
        elif settings.workers > 1 and worker_index() is None:
            # The parent of --workers: migrate once, then only start and watch workers.
            trio.run(_migrate, settings)
            return supervise(settings, raw[raw.index("serve") + 1 :])
        else:
            follow_parent()
            from hubbub.node import serve

            trio.run(serve, settings)
    except KeyboardInterrupt:
        log.info("stopped")
    except (StorageError, ConfigError, ClusterUnavailable, OSError) as error:
        print(f"hubbub: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


async def _migrate(settings: Settings) -> None:
    log.info("migrating", extra={"fields": describe(settings)})
    async with open_storage(settings.database_url, timeout=settings.database_timeout) as storage:
        version = await storage.migrate()
    log.info("schema is current", extra={"fields": {"version": version}})
