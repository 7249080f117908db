"""The actor runtime (actors, supervisors, the registry) and the chat actors built on it."""

from hubbub.engine.runtime.actor import (
    Actor,
    ActorError,
    ActorStopped,
    AskTimeout,
    Envelope,
    MailboxFull,
)
from hubbub.engine.runtime.registry import Registry
from hubbub.engine.runtime.supervisor import (
    Child,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
)

__all__ = [
    "Actor",
    "ActorError",
    "ActorStopped",
    "AskTimeout",
    "Child",
    "ChildSpec",
    "Envelope",
    "MailboxFull",
    "Registry",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorGaveUp",
]
