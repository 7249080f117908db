"""The actor runtime: actors, OTP-style supervisors, the registry.

It imports nothing else of hubbub."""

from hubbub.engine.runtime.actor import (
    Actor,
    ActorError,
    ActorStopped,
    AskTimeout,
    Envelope,
    Mailbox,
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
    "Mailbox",
    "MailboxFull",
    "Registry",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorGaveUp",
]
