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
import collections
import time

import attrs
import orjson

from bench.harness.procstat import own_cpu_seconds, raise_fd_limit
from bench.harness.ready import open_ready
from bench.harness.window import answered
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


@attrs.frozen
class PairPlan:
    """One process's share of the load."""

    pairs: tuple[PairSpec, ...]
    nonce: str
    window: int
    messages: int
    #: This process's offered rate in messages/s, or None for closed loop.
    rate: float | None
    connect_timeout: float
    run_timeout: float
    drain_timeout: float


@attrs.frozen
class PairResult:
    sent: int
    acked: int
    acked_delivered: int
    delivered: int
    duplicates: int
    lost: int
    stale: int
    late_sends: int
    errors: dict[str, int]
    closed: dict[str, int]
    unfinished: bool
    latencies: bytes
    last_receive: float
    cpu_seconds: float


class Pair:
    """A sender, its receiver, and the state of the messages between them."""

    __slots__ = (
        "acked",
        "backlog",
        "index",
        "inflight",
        "next_seq",
        "received",
        "receiver",
        "recipient_id",
        "resolved",
        "sender",
        "sent_at",
    )

    def __init__(self, spec: PairSpec, messages: int) -> None:
        self.index = spec.index
        self.recipient_id = spec.recipient_id
        self.sender: Connection | None = None
        self.receiver: Connection | None = None
        self.sent_at = array.array("d", bytes(8 * messages))
        self.acked = bytearray(messages)
        self.received = bytearray(messages)
        self.next_seq = 0
        self.inflight = 0
        #: Sends answered by an ack or an error.
        self.resolved = 0
        #: Intended send times held back by a full window (rate mode).
        self.backlog: collections.deque[float] = collections.deque()


class PairLoad:
    """The event loop of one load process."""

    def __init__(self, plan: PairPlan, loop: Loop, pairs: list[Pair]) -> None:
        self.plan = plan
        self.loop = loop
        self.pairs = pairs
        self.prefix = plan.nonce.encode()
        self.latencies = array.array("d")
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.last_receive = 0.0
        #: False once everything is sent or the run timed out.
        self.sending = True
        #: Sends still to be answered (by an ack or an error), planned ones included.
        self.unresolved = plan.messages * len(pairs)

    # -- sending ---------------------------------------------------------

    def send(self, pair: Pair, sent_at: float) -> None:
        seq = pair.next_seq
        pair.next_seq += 1
        pair.inflight += 1
        pair.sent_at[seq] = sent_at
        self.counts["sent"] += 1
        payload = MESSAGE % (
            pair.recipient_id,
            self.prefix,
            seq,
            FILLER,
            self.prefix,
            pair.index,
            seq,
        )
        assert pair.sender is not None
        self.loop.send_text(pair.sender, payload)

    def resolve(self, pair: Pair, now: float) -> None:
        """A send was answered: free its window slot and send what is due."""
        self.unresolved -= 1
        self.counts["answered"] += 1
        due = answered(
            pair,
            sending=self.sending,
            closed_loop=self.plan.rate is None,
            messages=self.plan.messages,
            now=now,
        )
        if due is not None:
            self.send(pair, due)

    # -- receiving -------------------------------------------------------

    def on_sender_frames(self, pair: Pair, frames: list[bytes], now: float) -> None:
        for data in frames:
            if data.startswith(ECHO):
                continue  # the echo of our own message: skipped unparsed, as it is frequent
            frame = orjson.loads(data)
            kind = frame.get("type")
            if kind == "ack":
                seq = int(frame["client_id"].rpartition("-")[2])
                if pair.acked[seq]:
                    self.counts["duplicate_acks"] += 1
                    continue
                pair.acked[seq] = 1
                self.counts["acked"] += 1
                if frame.get("status") == "delivered":
                    self.counts["acked_delivered"] += 1
                self.resolve(pair, now)
            elif kind == "error":
                self.errors[str(frame.get("reason"))] += 1
                client_id = frame.get("client_id")
                if isinstance(client_id, str) and client_id.startswith(self.plan.nonce):
                    self.resolve(pair, now)

    def on_receiver_frames(self, pair: Pair, frames: list[bytes], now: float) -> None:
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

    # -- running ---------------------------------------------------------

    def run(self, start_at: float) -> bool:
        """Send everything, then wait (at most the drain timeout) for the deliveries.

        Returns False if the run timeout struck first: sending stopped there, and what
        was in flight still had the drain timeout to arrive."""
        plan = self.plan
        total = plan.messages * len(self.pairs)
        deadline = start_at + plan.run_timeout
        if plan.rate is None:
            for pair in self.pairs:
                for _ in range(min(plan.window, plan.messages)):
                    self.send(pair, start_at)
                self.loop.flush(pair.sender)
        interval = 1.0 / plan.rate if plan.rate else 0.0
        scheduled = 0
        drain_until = None
        while True:
            now = time.monotonic()
            if self.sending and plan.rate is not None:
                scheduled = self.send_due(scheduled, total, start_at, interval, now)
            if drain_until is None and (self.unresolved <= 0 or now >= deadline):
                self.sending = False
                drain_until = now + plan.drain_timeout
            if drain_until is not None and (self.settled() or now >= drain_until):
                return self.unresolved <= 0
            wait = 0.1
            if plan.rate is not None and self.sending and scheduled < total:
                wait = max(0.0, min(wait, start_at + scheduled * interval - now))
            for conn, frames in self.loop.poll(wait):
                pair = conn.key
                now = time.monotonic()
                if conn is pair.sender:
                    self.on_sender_frames(pair, frames, now)
                    self.loop.flush(conn)
                else:
                    self.on_receiver_frames(pair, frames, now)
                if conn.closed is not None:
                    self.counts[f"closed: {conn.closed}"] += 1
                    if conn is pair.sender:
                        # Nothing more will be answered on this pair: stop waiting for it.
                        self.unresolved -= plan.messages - pair.resolved
                        self.counts["answered"] += pair.inflight
                        pair.resolved = plan.messages

    def settled(self) -> bool:
        """Every send answered, every acked message received."""
        counts = self.counts
        return counts["answered"] >= counts["sent"] and counts["delivered"] >= counts["acked"]

    def send_due(self, scheduled: int, total: int, start_at: float, interval: float, now: float):
        """Send (or backlog, if the window is full) every message due by ``now``."""
        pairs, window = self.pairs, self.plan.window
        touched = set()
        while scheduled < total and start_at + scheduled * interval <= now:
            pair = pairs[scheduled % len(pairs)]
            intended = start_at + scheduled * interval
            scheduled += 1
            if pair.sender is None or pair.sender.closed is not None:
                continue
            if pair.inflight < window and not pair.backlog:
                self.send(pair, intended)
                touched.add(pair)
            else:
                pair.backlog.append(intended)
                self.counts["late_sends"] += 1
        for pair in touched:
            self.loop.flush(pair.sender)
        return scheduled


def _lost(pairs: list[Pair]) -> int:
    return sum(
        1
        for pair in pairs
        for acked, got in zip(pair.acked, pair.received, strict=True)
        if acked and not got
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
            pair.sender = conn
        else:
            pair.receiver = conn
        conn.key = pair
    complete = [pair for pair in pairs if pair.sender and pair.receiver]
    for pair in pairs:
        if pair not in complete:
            for conn in (pair.sender, pair.receiver):
                if conn is not None:
                    loop.drop(conn, "pair incomplete")
    start_at = start.ready(
        {"pairs": len(complete), "failures": opened.failures, "early": opened.early_frames}
    )
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = own_cpu_seconds()
    load = PairLoad(plan, loop, complete)
    finished = load.run(start_at)
    cpu = own_cpu_seconds() - cpu_before
    counts = load.counts
    result = PairResult(
        sent=counts["sent"],
        acked=counts["acked"],
        acked_delivered=counts["acked_delivered"],
        delivered=counts["delivered"],
        duplicates=counts["duplicates"],
        lost=_lost(complete),
        stale=counts["stale"],
        late_sends=counts["late_sends"],
        errors={
            **load.errors,
            **({"duplicate acks": n} if (n := counts["duplicate_acks"]) else {}),
        },
        closed={k[8:]: v for k, v in counts.items() if k.startswith("closed: ")},
        unfinished=not finished,
        latencies=load.latencies.tobytes(),
        last_receive=load.last_receive,
        cpu_seconds=cpu,
    )
    start.finish(result)
    loop.close_all([c for p in complete for c in (p.sender, p.receiver) if c], timeout=2.0)
