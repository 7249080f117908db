"""The local bus: one subscriber per channel, bound methods included."""

from __future__ import annotations

from hubbub.engine.chat.ports import Event
from hubbub.engine.cluster.local import LocalBus


class Owner:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.seen.append(event)


async def test_a_bound_method_unsubscribes_though_each_access_is_a_new_object() -> None:
    bus, owner = LocalBus(), Owner()
    await bus.subscribe("user:1", owner.on_event)
    bus.publish("user:1", Event("direct", b"1"))
    bus.unsubscribe("user:1", owner.on_event)
    bus.publish("user:1", Event("direct", b"2"))
    assert [event.frame for event in owner.seen] == [b"1"]
    assert bus.channels() == []


async def test_an_old_owner_cannot_unsubscribe_its_successor() -> None:
    bus, old, new = LocalBus(), Owner(), Owner()
    await bus.subscribe("group:2", old.on_event)
    await bus.subscribe("group:2", new.on_event)
    bus.unsubscribe("group:2", old.on_event)
    bus.publish("group:2", Event("group", b"x"))
    assert [event.frame for event in new.seen] == [b"x"] and old.seen == []
