"""A supervised child that is a plain task rather than an actor (a server, a loop)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

TaskFn = Callable[..., Awaitable[None]]


class TaskChild:
    """Runs ``fn(task_status=...)`` under a supervisor; it has no mailbox."""

    def __init__(self, name: str, fn: TaskFn) -> None:
        self.name = name
        self._fn = fn
        self.state = "starting"

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            self.state = "running"
            await self._fn(task_status=task_status)
            self.state = "stopped"
        except BaseException:
            self.state = "crashed"
            raise

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "restarts": 0,
            "mailbox_depth": 0,
            "children": [],
        }
