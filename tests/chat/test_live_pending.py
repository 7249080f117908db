"""The notes of messages announced pending that reached their recipient live."""

from __future__ import annotations

from hubbub.engine.chat.live_pending import LivePending


def test_take_splits_the_noted_from_the_rest_and_forgets_what_it_took() -> None:
    notes = LivePending()
    notes.note(3)
    notes.note(5)
    assert notes.take([1, 3, 5, 7]) == ([3, 5], [1, 7])
    assert notes.take([3, 5]) == ([], [3, 5])
    assert len(notes) == 0


def test_past_the_limit_the_oldest_notes_go() -> None:
    notes = LivePending(limit=3)
    for message_id in range(1, 6):
        notes.note(message_id)
    assert len(notes) == 3
    assert notes.take(range(1, 6)) == ([3, 4, 5], [1, 2])
