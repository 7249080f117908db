"""One load process of the group benchmark: a share of the group's members, the first
few of whom also send.

Message ``seq`` of sender ``s`` has the text ``<nonce>:<s>:<seq>:<sent at>:<filler>``
and the ``client_id`` ``<nonce>-<s>-<seq>``; the nonce keeps runs apart when the
group is reused. ``sent at`` is ``time.monotonic()`` when the message was sent (with a
rate: when it was due, so a full window shows as latency). On Linux that clock is
CLOCK_MONOTONIC, one clock for the whole machine, so a member in another load
process measures latency as its own ``time.monotonic()`` at receipt minus ``sent at``.

Receiving is the hot path (every message arrives once per member): a frame is
searched for ``"message":"<nonce>:`` and the fields are split out of the text with
bytes operations; only the rare other frames (acks, errors, presence) are parsed as
JSON. Measured here on a 317-byte frame: ~0.9 µs against ~1.6 µs for orjson plus
splitting, beside ~2.7 µs for the WebSocket framing (``websockets``) itself.
"""

from __future__ import annotations

import array
import collections
import time

import attrs
import orjson

from bench.harness.procstat import own_cpu_seconds, raise_fd_limit
from bench.harness.ready import keep_idle, open_ready
from bench.harness.window import answered
from bench.harness.wire import Connection, Loop
from bench.harness.workers import StartSignal

FILLER = b"see you at the standup in ten minutes"
MESSAGE = (
    b'{"type":"group_message","group_id":%d,"message":"%s:%d:%d:%.6f:%s","client_id":"%s-%d-%d"}'
)


@attrs.frozen
class MemberSpec:
    #: 0 .. K-1; members below the plan's ``senders`` also send.
    index: int
    url: str


@attrs.frozen
class GroupPlan:
    """One process's share of the load."""

    members: tuple[MemberSpec, ...]
    group_id: int
    #: Senders in the whole run (members 0 .. senders-1), whichever process holds them.
    senders: int
    nonce: str
    window: int
    messages: int
    #: This process's offered rate in messages/s, or None for closed loop.
    rate: float | None
    connect_timeout: float
    #: Once connected, wait until no frame arrived for this long (the members' presence
    #: frames are O(K²) and would otherwise spill into the run).
    settle: float
    run_timeout: float
    drain_timeout: float


@attrs.frozen
class GroupResult:
    sent: int
    acked: int
    #: One byte per message of the run (``sender * messages + seq``): 1 if acked here.
    acked_map: bytes
    #: ``array("I")`` per message of the run: how many of this process's members got it.
    receipts: bytes
    deliveries: int
    duplicates: int
    #: ``group_message`` frames of another run (or not ours).
    stale: int
    late_sends: int
    #: Frames other than ``group_message``, ``ack`` and ``error`` during the run, by type.
    other_frames: dict[str, int]
    errors: dict[str, int]
    closed: dict[str, int]
    unfinished: bool
    latencies: bytes
    last_receive: float
    cpu_seconds: float


class Sender:
    """A member that sends, and the state of its messages."""

    __slots__ = ("acked", "backlog", "conn", "index", "inflight", "next_seq", "resolved")

    def __init__(self, index: int, conn: Connection, messages: int) -> None:
        self.index = index
        self.conn = conn
        self.acked = bytearray(messages)
        self.next_seq = 0
        self.inflight = 0
        #: Sends answered by an ack or an error.
        self.resolved = 0
        #: Intended send times held back by a full window (rate mode).
        self.backlog: collections.deque[float] = collections.deque()


class Member:
    """One member's connection and which messages of the run it has received."""

    __slots__ = ("conn", "index", "received", "sender")

    def __init__(self, index: int, conn: Connection, total: int) -> None:
        self.index = index
        self.conn = conn
        self.received = bytearray(total)
        self.sender: Sender | None = None


class GroupLoad:
    """The event loop of one load process."""

    def __init__(self, plan: GroupPlan, loop: Loop, members: list[Member]) -> None:
        self.plan = plan
        self.loop = loop
        self.members = members
        self.senders = [m.sender for m in members if m.sender is not None]
        self.nonce = plan.nonce.encode()
        self.marker = b'"message":"' + self.nonce + b":"
        self.total = plan.senders * plan.messages
        self.receipts = array.array("I", bytes(4 * self.total))
        self.latencies = array.array("d")
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.others: collections.Counter[str] = collections.Counter()
        self.deliveries = 0
        self.last_receive = 0.0
        #: False once everything is sent or the run timed out.
        self.sending = True
        #: Sends still to be answered (by an ack or an error), planned ones included.
        self.unresolved = plan.messages * len(self.senders)

    # -- sending ---------------------------------------------------------

    def send(self, sender: Sender, sent_at: float) -> None:
        seq = sender.next_seq
        sender.next_seq += 1
        sender.inflight += 1
        self.counts["sent"] += 1
        nonce = self.nonce
        payload = MESSAGE % (
            self.plan.group_id,
            nonce,
            sender.index,
            seq,
            sent_at,
            FILLER,
            nonce,
            sender.index,
            seq,
        )
        self.loop.send_text(sender.conn, payload)

    def resolve(self, sender: Sender, now: float) -> None:
        """A send was answered: free its window slot and send what is due."""
        self.unresolved -= 1
        self.counts["answered"] += 1
        due = answered(
            sender,
            sending=self.sending,
            closed_loop=self.plan.rate is None,
            messages=self.plan.messages,
            now=now,
        )
        if due is not None:
            self.send(sender, due)

    def send_due(self, scheduled: int, start_at: float, interval: float, now: float) -> int:
        """Send (or backlog, if the window is full) every message due by ``now``, the
        senders taking turns; return how many are scheduled so far."""
        senders, window = self.senders, self.plan.window
        planned = len(senders) * self.plan.messages
        touched = set()
        while scheduled < planned and (intended := start_at + scheduled * interval) <= now:
            sender = senders[scheduled % len(senders)]
            scheduled += 1
            if sender.conn.closed is not None:
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

    # -- receiving -------------------------------------------------------

    def on_frames(self, member: Member, frames: list[bytes], now: float) -> None:
        marker, skip, messages = self.marker, len(self.marker), self.plan.messages
        received, receipts, latencies = member.received, self.receipts, self.latencies
        fresh = 0
        for data in frames:
            at = data.find(marker)
            if at < 0:
                self.on_other_frame(member, data, now)
                continue
            start = at + skip
            sender, seq, sent_at, _ = data[start : data.find(b'"', start)].split(b":", 3)
            msg = int(sender) * messages + int(seq)
            if received[msg]:
                self.counts["duplicates"] += 1
                continue
            received[msg] = 1
            receipts[msg] += 1
            latencies.append(now - float(sent_at))
            fresh += 1
        if fresh:
            self.deliveries += fresh
            self.last_receive = now

    def on_other_frame(self, member: Member, data: bytes, now: float) -> None:
        frame = orjson.loads(data)
        kind = frame.get("type")
        sender = member.sender
        if kind == "ack" and sender is not None:
            seq = int(str(frame.get("client_id")).rpartition("-")[2])
            if sender.acked[seq]:
                self.counts["duplicate_acks"] += 1
                return
            sender.acked[seq] = 1
            self.counts["acked"] += 1
            self.resolve(sender, now)
        elif kind == "error":
            self.errors[str(frame.get("reason"))] += 1
            client_id = frame.get("client_id")
            if sender is not None and str(client_id).startswith(self.plan.nonce):
                self.resolve(sender, now)
        elif kind == "group_message":
            self.counts["stale"] += 1
        else:
            self.others[str(kind)] += 1

    def on_closed(self, member: Member) -> None:
        self.counts[f"closed: {member.conn.closed}"] += 1
        sender = member.sender
        if sender is not None:
            # Nothing more will be answered on this connection: stop waiting for it.
            self.unresolved -= self.plan.messages - sender.resolved
            self.counts["answered"] += sender.inflight
            sender.resolved = self.plan.messages

    # -- running ---------------------------------------------------------

    def run(self, start_at: float) -> bool:
        """Send this process's share, and receive until every member here has every
        message of the run, or nothing arrived for the drain timeout after the sending
        ended (members here cannot know what other processes' senders got acked).

        Returns False if the run timeout struck before every send was answered."""
        plan = self.plan
        deadline = start_at + plan.run_timeout
        complete = len(self.members) * self.total
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
            if self.sending and plan.rate is not None and self.senders:
                scheduled = self.send_due(scheduled, start_at, interval, now)
            if sending_ended is None and (self.unresolved <= 0 or now >= deadline):
                self.sending = False
                sending_ended = now
            if sending_ended is not None:
                quiet_since = max(sending_ended, self.last_receive)
                if self.deliveries >= complete or now - quiet_since >= plan.drain_timeout:
                    return self.unresolved <= 0
            wait = 0.1
            if plan.rate is not None and self.sending and self.senders:
                wait = max(0.0, min(wait, start_at + scheduled * interval - now))
            for conn, frames in self.loop.poll(wait):
                member = conn.key
                now = time.monotonic()
                self.on_frames(member, frames, now)
                if member.sender is not None:
                    self.loop.flush(conn)
                if conn.closed is not None:
                    self.on_closed(member)

    def result(self, finished: bool, cpu_seconds: float) -> GroupResult:
        counts = self.counts
        acked_map = bytearray(self.total)
        for sender in self.senders:
            first = sender.index * self.plan.messages
            acked_map[first : first + self.plan.messages] = sender.acked
        errors = dict(self.errors)
        if counts["duplicate_acks"]:
            errors["duplicate acks"] = counts["duplicate_acks"]
        return GroupResult(
            sent=counts["sent"],
            acked=counts["acked"],
            acked_map=bytes(acked_map),
            receipts=self.receipts.tobytes(),
            deliveries=self.deliveries,
            duplicates=counts["duplicates"],
            stale=counts["stale"],
            late_sends=counts["late_sends"],
            other_frames=dict(self.others),
            errors=errors,
            closed={k[8:]: v for k, v in counts.items() if k.startswith("closed: ")},
            unfinished=not finished,
            latencies=self.latencies.tobytes(),
            last_receive=self.last_receive,
            cpu_seconds=cpu_seconds,
        )


def run_group_worker(plan: GroupPlan, start: StartSignal) -> None:
    """A load process: connect every member of the plan, wait for the common start,
    run, report (by ``start.finish``), then close its connections.

    Members whose connection cannot be made ready are left out (senders among them
    send nothing); the ready info sent to the parent is ``{"members", "senders",
    "failures", "early"}``."""
    raise_fd_limit(len(plan.members) + 64)
    loop = Loop()
    opened = open_ready(
        loop, [(spec.url, spec.index) for spec in plan.members], timeout=plan.connect_timeout
    )
    early = collections.Counter(opened.early_frames)
    failures = collections.Counter(opened.failures)
    for what, count in keep_idle(loop, plan.connect_timeout, until_quiet=plan.settle).items():
        kind, _, detail = what.partition(" ")
        (early if kind == "frame" else failures)[detail] += count
    total = plan.senders * plan.messages
    members = []
    for conn in opened.connections:
        if conn.closed is not None:
            continue  # closed while settling: counted in failures
        member = Member(conn.key, conn, total)  # type: ignore[arg-type]
        if member.index < plan.senders:
            member.sender = Sender(member.index, conn, plan.messages)
        conn.key = member
        members.append(member)
    senders = sum(1 for m in members if m.sender is not None)
    start_at = start.ready(
        {
            "members": len(members),
            "senders": senders,
            "failures": dict(failures),
            "early": dict(early),
        }
    )
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = own_cpu_seconds()
    load = GroupLoad(plan, loop, members)
    finished = load.run(start_at)
    start.finish(load.result(finished, own_cpu_seconds() - cpu_before))
    loop.close_all([m.conn for m in members], timeout=2.0)
