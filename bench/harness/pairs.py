"""One load process of the direct-message benchmark: pairs of sender and receiver.

Both ends of a pair live in the same process, so the latency of a message is simply
its receipt time at the receiver minus its send time at the sender, on one clock.
The text of message ``seq`` is ``<nonce>:<seq>:<filler>`` and its ``client_id``
``<nonce>-<pair>-<seq>``: the nonce keeps runs apart when users are reused (a stale
offline message is not mistaken for a new one, and the server does not deduplicate a
new message against an old ``client_id``).
"""

from __future__ import annotations

import array

import attrs
import orjson

from bench.harness.load_loop import LoadLoop, LoadPlan, LoadResult, Sender, run_load
from bench.harness.procstat import raise_fd_limit
from bench.harness.ready import open_ready
from bench.harness.wire import Connection, Loop
from bench.harness.workers import StartSignal

FILLER = b"see you at the standup in ten minutes"
#: How the server's echo to the sender starts, as it encodes today; if that changes,
#: echoes are merely parsed and ignored.
ECHO = b'{"type":"message"'
MESSAGE = b'{"type":"message","recipient_id":%d,"message":"%s:%d:%s","client_id":"%s-%d-%d"}'


@attrs.frozen
class PairSpec:
    index: int
    sender_url: str
    receiver_url: str
    recipient_id: int


@attrs.frozen(kw_only=True)
class PairPlan(LoadPlan):
    pairs: tuple[PairSpec, ...]


@attrs.frozen(kw_only=True)
class PairResult(LoadResult):
    acked_delivered: int
    delivered: int
    duplicates: int
    lost: int
    stale: int


class Pair(Sender):
    """A sender (``conn``), its receiver, and the state of the messages between them."""

    __slots__ = ("received", "receiver", "recipient_id", "sent_at")

    def __init__(self, spec: PairSpec, messages: int) -> None:
        super().__init__(spec.index, None, messages)
        self.recipient_id = spec.recipient_id
        self.receiver: Connection | None = None
        self.sent_at = array.array("d", bytes(8 * messages))
        self.received = bytearray(messages)


class PairLoad(LoadLoop):
    """The event loop of one load process."""

    senders: list[Pair]

    def __init__(self, plan: PairPlan, loop: Loop, pairs: list[Pair]) -> None:
        super().__init__(plan, loop, pairs)
        self.prefix = plan.nonce.encode()

    def message(self, sender: Pair, seq: int, sent_at: float) -> bytes:  # type: ignore[override]
        sender.sent_at[seq] = sent_at
        prefix = self.prefix
        return MESSAGE % (sender.recipient_id, prefix, seq, FILLER, prefix, sender.index, seq)

    def sender_of(self, conn: Connection) -> Pair | None:
        pair = conn.key
        return pair if conn is pair.conn else None

    def on_frames(self, conn: Connection, frames: list[bytes], now: float) -> None:
        pair = conn.key
        if conn is pair.conn:
            self.on_sender_frames(pair, frames, now)
        else:
            self.on_receiver_frames(pair, frames, now)

    def on_sender_frames(self, pair: Pair, frames: list[bytes], now: float) -> None:
        for data in frames:
            if data.startswith(ECHO):
                continue  # the echo of our own message: skipped unparsed, as it is frequent
            frame = orjson.loads(data)
            kind = frame.get("type")
            if kind == "ack":
                self.on_ack(pair, frame, now)
            elif kind == "error":
                self.on_error(pair, frame, now)

    def on_receiver_frames(self, pair: Pair, frames: list[bytes], now: float) -> None:
        fresh = 0
        for data in frames:
            frame = orjson.loads(data)
            if frame.get("type") != "message":
                continue
            nonce, _, rest = frame["message"].partition(":")
            if nonce != self.plan.nonce:
                self.counts["stale"] += 1
                continue
            seq = int(rest.partition(":")[0])
            if pair.received[seq]:
                self.counts["duplicates"] += 1
                continue
            pair.received[seq] = 1
            self.counts["delivered"] += 1
            self.latencies.append(now - pair.sent_at[seq])
            self.last_receive = now
            fresh += 1
        if fresh:
            self.arrived(now, fresh)

    def done(self, now: float, sending_ended: float) -> bool:
        """Every send answered and every acked message received, or the drain timeout
        after the sending ended."""
        counts = self.counts
        settled = counts["answered"] >= counts["sent"] and counts["delivered"] >= counts["acked"]
        return settled or now >= sending_ended + self.plan.drain_timeout

    def result(self, finished: bool, cpu_seconds: float) -> PairResult:
        counts = self.counts
        return PairResult(
            **self.shared_result(finished, cpu_seconds),
            acked_delivered=counts["acked_delivered"],
            delivered=counts["delivered"],
            duplicates=counts["duplicates"],
            lost=sum(
                1
                for pair in self.senders
                for acked, got in zip(pair.acked, pair.received, strict=True)
                if acked and not got
            ),
            stale=counts["stale"],
        )


def run_pair_worker(plan: PairPlan, start: StartSignal) -> None:
    """A load process: connect every pair, wait for the common start, run, report (by
    ``start.finish``), then close its connections.

    Pairs whose connections cannot be made ready are left out (and counted in
    ``closed``); the ready info sent to the parent is ``{"pairs", "failures", "early"}``."""
    raise_fd_limit(2 * len(plan.pairs) + 64)
    loop = Loop()
    pairs = [Pair(spec, plan.messages) for spec in plan.pairs]
    targets: list[tuple[str, object]] = []
    for pair, spec in zip(pairs, plan.pairs, strict=True):
        targets += [(spec.sender_url, (pair, True)), (spec.receiver_url, (pair, False))]
    opened = open_ready(loop, targets, timeout=plan.connect_timeout)
    for conn in opened.connections:
        pair, is_sender = conn.key  # type: ignore[misc]
        if is_sender:
            pair.conn = conn
        else:
            pair.receiver = conn
        conn.key = pair
    complete = [pair for pair in pairs if pair.conn and pair.receiver]
    for pair in pairs:
        if pair not in complete:
            for conn in (pair.conn, pair.receiver):
                if conn is not None:
                    loop.drop(conn, "pair incomplete")
    info = {"pairs": len(complete), "failures": opened.failures, "early": opened.early_frames}
    conns = [c for p in complete for c in (p.conn, p.receiver) if c]
    run_load(start, PairLoad(plan, loop, complete), info, conns)
