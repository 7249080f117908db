"""The event loop of one load process, shared by ``bench.direct`` (pairs) and
``bench.group`` (a group's members).

Each sender keeps at most ``window`` messages unacked: closed loop, a new one as soon
as one is answered; with a rate, each message is due at its slot of the process's
offered rate, held back (and timed from its due time, so a full window shows up as
latency) while the window is full. A subclass says what a message is (``message``),
which connection sends (``sender_of``), what received frames mean (``on_frames``), when
the run is over (``done``) and what it reports (``result``).
"""

from __future__ import annotations

import array
import collections
import time
from typing import Any

import attrs

from bench.harness.procstat import own_cpu_seconds
from bench.harness.wire import Connection, Loop
from bench.harness.workers import StartSignal


@attrs.frozen(kw_only=True)
class LoadPlan:
    """One process's share of the load: what every load generator's plan has."""

    nonce: str
    #: Unacked messages per sender.
    window: int
    #: Messages per sender.
    messages: int
    #: This process's offered rate in messages/s, or None for closed loop.
    rate: float | None
    connect_timeout: float
    run_timeout: float
    drain_timeout: float


@attrs.frozen(kw_only=True)
class LoadResult:
    """What every load process reports, besides its own counts."""

    sent: int
    acked: int
    late_sends: int
    errors: dict[str, int]
    closed: dict[str, int]
    unfinished: bool
    latencies: bytes
    #: When deliveries arrived: ``array("d")`` bytes of (time, count) pairs, one pair per
    #: batch of frames read (``time.monotonic()``), for throughput over time.
    arrivals: bytes
    last_receive: float
    cpu_seconds: float


class Sender:
    """A connection that sends, and the state of its messages."""

    __slots__ = ("acked", "backlog", "conn", "index", "inflight", "next_seq", "resolved")

    def __init__(self, index: int, conn: Connection | None, messages: int) -> None:
        self.index = index
        self.conn = conn
        self.acked = bytearray(messages)
        self.next_seq = 0
        self.inflight = 0
        #: Sends answered by an ack or an error.
        self.resolved = 0
        #: Intended send times held back by a full window (rate mode).
        self.backlog: collections.deque[float] = collections.deque()


class LoadLoop:
    """Sending, answers, the run loop and the bookkeeping both load generators share."""

    def __init__(self, plan: LoadPlan, loop: Loop, senders: list[Any]) -> None:
        self.plan = plan
        self.loop = loop
        self.senders: list[Sender] = senders
        self.latencies = array.array("d")
        self.arrivals = array.array("d")
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.last_receive = 0.0
        #: False once everything is sent or the run timed out.
        self.sending = True
        #: Sends still to be answered (by an ack or an error), planned ones included.
        self.unresolved = plan.messages * len(senders)

    def arrived(self, now: float, count: int) -> None:
        """Record ``count`` deliveries read at ``now``: once per batch of frames."""
        self.arrivals.append(now)
        self.arrivals.append(count)

    # -- hooks -----------------------------------------------------------

    def message(self, sender: Sender, seq: int, sent_at: float) -> bytes:
        """The text frame of ``sender``'s message ``seq`` (called once, as it is sent)."""
        raise NotImplementedError

    def sender_of(self, conn: Connection) -> Sender | None:
        """The sender whose connection ``conn`` is, if it is one."""
        raise NotImplementedError

    def on_frames(self, conn: Connection, frames: list[bytes], now: float) -> None:
        """Text frames received on ``conn``; answers go to ``on_ack`` / ``on_error``."""
        raise NotImplementedError

    def done(self, now: float, sending_ended: float) -> bool:
        """Whether to stop receiving, the sending having ended at ``sending_ended``."""
        raise NotImplementedError

    def result(self, finished: bool, cpu_seconds: float) -> LoadResult:
        raise NotImplementedError

    # -- sending ---------------------------------------------------------

    def send(self, sender: Sender, sent_at: float) -> None:
        seq = sender.next_seq
        sender.next_seq += 1
        sender.inflight += 1
        self.counts["sent"] += 1
        assert sender.conn is not None
        self.loop.send_text(sender.conn, self.message(sender, seq, sent_at))

    def resolve(self, sender: Sender, now: float) -> None:
        """A send was answered: free its window slot and send what is due in it (a
        held-back message first)."""
        self.unresolved -= 1
        self.counts["answered"] += 1
        sender.inflight -= 1
        sender.resolved += 1
        if not self.sending:
            return
        if sender.backlog:
            self.send(sender, sender.backlog.popleft())
        elif self.plan.rate is None and sender.next_seq < self.plan.messages:
            self.send(sender, now)

    def send_due(self, scheduled: int, start_at: float, interval: float, now: float) -> int:
        """Send (or backlog, if the window is full) every message due by ``now``, the
        senders taking turns; return how many are scheduled so far."""
        senders, window = self.senders, self.plan.window
        planned = len(senders) * self.plan.messages
        touched = set()
        while scheduled < planned and (intended := start_at + scheduled * interval) <= now:
            sender = senders[scheduled % len(senders)]
            scheduled += 1
            if sender.conn is None or sender.conn.closed is not None:
                continue
            if sender.inflight < window and not sender.backlog:
                self.send(sender, intended)
                touched.add(sender)
            else:
                sender.backlog.append(intended)
                self.counts["late_sends"] += 1
        for sender in touched:
            self.loop.flush(sender.conn)
        return scheduled

    # -- answers ---------------------------------------------------------

    def on_ack(self, sender: Sender, frame: dict[str, Any], now: float) -> None:
        seq = int(str(frame.get("client_id")).rpartition("-")[2])
        if sender.acked[seq]:
            self.counts["duplicate_acks"] += 1
            return
        sender.acked[seq] = 1
        self.counts["acked"] += 1
        if frame.get("status") == "delivered":
            self.counts["acked_delivered"] += 1
        self.resolve(sender, now)

    def on_error(self, sender: Sender | None, frame: dict[str, Any], now: float) -> None:
        """An error frame; it answers a send of ours if it carries one of our client_ids."""
        self.errors[str(frame.get("reason"))] += 1
        client_id = frame.get("client_id")
        if sender is not None and str(client_id).startswith(self.plan.nonce):
            self.resolve(sender, now)

    def on_closed(self, conn: Connection, sender: Sender | None) -> None:
        self.counts[f"closed: {conn.closed}"] += 1
        if sender is not None:
            # Nothing more will be answered on this connection: stop waiting for it.
            self.unresolved -= self.plan.messages - sender.resolved
            self.counts["answered"] += sender.inflight
            sender.resolved = self.plan.messages

    # -- running ---------------------------------------------------------

    def run(self, start_at: float) -> bool:
        """Send this process's share, then receive until ``done``.

        Returns False if the run timeout struck before every send was answered: sending
        stopped there, and ``done`` still decides how long to wait for what was in flight."""
        plan = self.plan
        deadline = start_at + plan.run_timeout
        planned = plan.messages * len(self.senders)
        if plan.rate is None:
            for sender in self.senders:
                for _ in range(min(plan.window, plan.messages)):
                    self.send(sender, start_at)
                self.loop.flush(sender.conn)
        interval = 1.0 / plan.rate if plan.rate else 0.0
        scheduled = 0
        sending_ended = None
        while True:
            now = time.monotonic()
            if self.sending and plan.rate is not None:
                scheduled = self.send_due(scheduled, start_at, interval, now)
            if sending_ended is None and (self.unresolved <= 0 or now >= deadline):
                self.sending = False
                sending_ended = now
            if sending_ended is not None and self.done(now, sending_ended):
                return self.unresolved <= 0
            wait = 0.1
            if plan.rate is not None and self.sending and scheduled < planned:
                wait = max(0.0, min(wait, start_at + scheduled * interval - now))
            for conn, frames in self.loop.poll(wait):
                now = time.monotonic()
                sender = self.sender_of(conn)
                self.on_frames(conn, frames, now)
                if sender is not None:
                    self.loop.flush(conn)
                if conn.closed is not None:
                    self.on_closed(conn, sender)

    # -- reporting -------------------------------------------------------

    def shared_result(self, finished: bool, cpu_seconds: float) -> dict[str, Any]:
        """The ``LoadResult`` fields, for a subclass's ``result``."""
        counts = self.counts
        errors = dict(self.errors)
        if counts["duplicate_acks"]:
            errors["duplicate acks"] = counts["duplicate_acks"]
        return {
            "sent": counts["sent"],
            "acked": counts["acked"],
            "late_sends": counts["late_sends"],
            "errors": errors,
            "closed": {k[8:]: v for k, v in counts.items() if k.startswith("closed: ")},
            "unfinished": not finished,
            "latencies": self.latencies.tobytes(),
            "arrivals": self.arrivals.tobytes(),
            "last_receive": self.last_receive,
            "cpu_seconds": cpu_seconds,
        }


def run_load(
    start: StartSignal, load: LoadLoop, info: dict[str, Any], conns: list[Connection]
) -> None:
    """The measured part of a load process, its connections ready: report ready with
    ``info``, wait for the common start, run, report the result (by ``start.finish``),
    then close ``conns`` outside the measured span."""
    start_at = start.ready(info)
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = own_cpu_seconds()
    finished = load.run(start_at)
    start.finish(load.result(finished, own_cpu_seconds() - cpu_before))
    load.loop.close_all(conns, timeout=2.0)
