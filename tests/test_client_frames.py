"""``ClientFrames``: what clients send, framed by ``websockets``' own client code, parsed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode

from hubbub.ws.client_frames import BINARY, ClientFrames, State
from hubbub.ws.frames import close_frame

LIMIT = 1000


def client(opcode: Opcode, data: bytes = b"", fin: bool = True, *, mask: bool = True) -> bytes:
    """A frame as a client sends it (masked), by websockets."""
    return Frame(opcode, data, fin).serialize(mask=mask, extensions=[])


def raw(first: int, data: bytes) -> bytes:
    """A masked frame with any first byte (websockets refuses to build a wrong one)."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    if len(data) < 126:
        length = bytes([0x80 | len(data)])
    else:
        length = bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
    return bytes([first]) + length + mask + masked


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each frame the server wrote (unmasked, short)."""
    frames = []
    while data:
        length = data[1]
        assert length < 126 and not data[1] & 0x80
        frames.append((data[0], data[2 : 2 + length]))
        data = data[2 + length :]
    return frames


def closed_with(frames: ClientFrames, code: int) -> bool:
    [(first, payload)] = server_frames(frames.data_to_send())
    return first == 0x88 and int.from_bytes(payload[:2], "big") == code


texts = st.text(max_size=300).map(str.encode)


@st.composite
def conversations(draw) -> tuple[list[bytes], list[bytes], bytes]:
    """Messages (some fragmented, pings between fragments), the pings, and the bytes."""
    messages = draw(st.lists(texts, max_size=8))
    pings: list[bytes] = []
    wire = b""
    for message in messages:
        cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=3)))
        pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
        for index, piece in enumerate(pieces):
            opcode = Opcode.TEXT if index == 0 else Opcode.CONT
            wire += client(opcode, piece, fin=index == len(pieces) - 1)
            if draw(st.booleans()):
                ping = draw(st.binary(max_size=20))
                pings.append(ping)
                wire += client(Opcode.PING, ping)
    return messages, pings, wire


@settings(max_examples=200, deadline=None)
@given(conversations(), st.lists(st.integers(1, 400), max_size=20))
def test_any_chunking_gives_the_messages_and_a_pong_per_ping(conversation, sizes) -> None:
    messages, pings, wire = conversation
    frames = ClientFrames(LIMIT)
    received = []
    position = 0
    for size in [*sizes, len(wire)]:
        chunk = wire[position : position + size]
        if chunk:  # (b"" would be the end of the stream)
            received += frames.receive_data(chunk)
        position += size
    assert received == messages
    assert server_frames(frames.data_to_send()) == [(0x8A, ping) for ping in pings]
    assert frames.state is State.OPEN


def test_a_message_over_the_limit_closes_1009_at_its_header() -> None:
    frames = ClientFrames(LIMIT)
    # The header alone says 2**40 bytes: refused before any payload arrives.
    header = client(Opcode.TEXT, b"x" * 200)[:2]
    assert frames.receive_data(bytes([header[0], 0xFF]) + (2**40).to_bytes(8, "big")) == []
    assert closed_with(frames, 1009)
    assert frames.state is State.CLOSED and frames.peer_code is None
    assert frames.receive_data(client(Opcode.TEXT, b"later")) == []


def test_fragments_count_together_against_the_limit() -> None:
    frames = ClientFrames(LIMIT)
    wire = client(Opcode.TEXT, b"x" * 600, fin=False) + client(Opcode.CONT, b"x" * 401)
    assert frames.receive_data(wire) == []
    assert closed_with(frames, 1009)
    exactly = ClientFrames(LIMIT)
    wire = client(Opcode.TEXT, b"x" * 600, fin=False) + client(Opcode.CONT, b"x" * 400)
    assert exactly.receive_data(wire) == [b"x" * 1000]


def test_breaches_of_the_protocol_close_1002() -> None:
    breaches = [
        client(Opcode.TEXT, b"hi", mask=False),
        bytes([0x81 | 0x40]) + client(Opcode.TEXT, b"hi")[1:],  # a reserved bit
        client(Opcode.CONT, b"hi"),
        client(Opcode.TEXT, b"a", fin=False) + client(Opcode.TEXT, b"b"),
        raw(0x09, b"a"),  # a ping without FIN
        raw(0x89, b"a" * 126),
        bytes([0x83]) + client(Opcode.TEXT, b"hi")[1:],  # opcode 3
        bytes([0x8B]) + client(Opcode.PING, b"hi")[1:],  # opcode 11
        client(Opcode.CLOSE, b"\x03"),  # a one-byte close payload
        client(Opcode.CLOSE, (1005).to_bytes(2, "big")),
        client(Opcode.CLOSE, (2999).to_bytes(2, "big")),
    ]
    for wire in breaches:
        frames = ClientFrames(LIMIT)
        assert frames.receive_data(client(Opcode.TEXT, b"ok") + wire) == [b"ok"], wire
        assert closed_with(frames, 1002), wire
        assert frames.state is State.CLOSED


def test_a_close_reason_that_is_not_utf8_closes_1007() -> None:
    frames = ClientFrames(LIMIT)
    frames.receive_data(client(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"\xff"))
    assert closed_with(frames, 1007)


def test_the_peer_closing_gets_its_code_back_and_nothing_after_is_read() -> None:
    frames = ClientFrames(LIMIT)
    wire = client(Opcode.CLOSE, Close(4001, "bye").serialize()) + client(Opcode.TEXT, b"late")
    assert frames.receive_data(wire) == []
    assert server_frames(frames.data_to_send()) == [(0x88, (4001).to_bytes(2, "big"))]
    assert frames.state is State.CLOSED and frames.peer_code == 4001
    silent = ClientFrames(LIMIT)
    silent.receive_data(client(Opcode.CLOSE))
    assert server_frames(silent.data_to_send()) == [(0x88, b"")]
    assert silent.peer_code == 1005


def test_our_close_is_answered_once_and_data_after_it_is_dropped() -> None:
    frames = ClientFrames(LIMIT)
    frames.send_close(1013, "try again later")
    frames.send_close(1000)  # already begun: nothing more
    assert frames.data_to_send() == close_frame(1013, "try again later")
    assert frames.state is State.CLOSING
    # A message cut short by our close is dropped, not a breach.
    wire = (
        client(Opcode.TEXT, b"la", fin=False)
        + client(Opcode.CONT, b"te")
        + client(Opcode.PING, b"p")
        + client(Opcode.CLOSE)
    )
    assert frames.receive_data(wire) == []
    assert frames.data_to_send() == b""  # no pong, no second close
    assert frames.state is State.CLOSED and frames.peer_code == 1005


def test_a_binary_message_is_reported_once_then_data_is_dropped_until_close() -> None:
    frames = ClientFrames(LIMIT)
    wire = (
        client(Opcode.BINARY, b"\x00", fin=False)
        + client(Opcode.CONT, b"\x01")
        + client(Opcode.TEXT, b"after")
        + client(Opcode.BINARY, b"again")
    )
    assert frames.receive_data(wire) == [BINARY]
    frames.send_close(1003, "binary frames are not supported")
    frames.data_to_send()
    frames.receive_data(client(Opcode.CLOSE, (1000).to_bytes(2, "big")))
    assert frames.state is State.CLOSED and frames.peer_code == 1000


def test_the_end_of_the_stream_without_a_close_is_1006() -> None:
    frames = ClientFrames(LIMIT)
    assert frames.receive_data(client(Opcode.TEXT, b"a")[:3]) == []
    assert frames.receive_data(b"") == []
    assert frames.state is State.CLOSED and frames.peer_code == 1006
    assert frames.data_to_send() == b""


def test_a_long_reason_is_cut_to_fit_a_control_frame_on_a_character() -> None:
    frame = close_frame(1000, "é" * 100)
    assert frame[1] <= 125
    assert frame[4:].decode() == "é" * 61
