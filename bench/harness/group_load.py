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

import attrs
import orjson

from bench.harness.load_loop import LoadLoop, LoadPlan, LoadResult, Sender, run_load
from bench.harness.procstat import raise_fd_limit
from bench.harness.ready import keep_idle, open_ready
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


@attrs.frozen(kw_only=True)
class GroupPlan(LoadPlan):
    members: tuple[MemberSpec, ...]
    group_id: int
    #: Senders in the whole run (members 0 .. senders-1), whichever process holds them.
    senders: int
    #: Once connected, wait until no frame arrived for this long (the members' presence
    #: frames are O(K²) and would otherwise spill into the run).
    settle: float


@attrs.frozen(kw_only=True)
class GroupResult(LoadResult):
    #: One byte per message of the run (``sender * messages + seq``): 1 if acked here.
    acked_map: bytes
    #: ``array("I")`` per message of the run: how many of this process's members got it.
    receipts: bytes
    deliveries: int
    duplicates: int
    #: ``group_message`` frames of another run (or not ours).
    stale: int
    #: Frames other than ``group_message``, ``ack`` and ``error`` during the run, by type.
    other_frames: dict[str, int]


class Member:
    """One member's connection and which messages of the run it has received."""

    __slots__ = ("conn", "index", "received", "sender")

    def __init__(self, index: int, conn: Connection, total: int) -> None:
        self.index = index
        self.conn = conn
        self.received = bytearray(total)
        self.sender: Sender | None = None


class GroupLoad(LoadLoop):
    """The event loop of one load process."""

    def __init__(self, plan: GroupPlan, loop: Loop, members: list[Member]) -> None:
        super().__init__(plan, loop, [m.sender for m in members if m.sender is not None])
        self.plan: GroupPlan = plan
        self.members = members
        self.nonce = plan.nonce.encode()
        self.marker = b'"message":"' + self.nonce + b":"
        self.total = plan.senders * plan.messages
        self.receipts = array.array("I", bytes(4 * self.total))
        self.others: collections.Counter[str] = collections.Counter()
        self.deliveries = 0

    def message(self, sender: Sender, seq: int, sent_at: float) -> bytes:
        nonce, index = self.nonce, sender.index
        return MESSAGE % (self.plan.group_id, nonce, index, seq, sent_at, FILLER, nonce, index, seq)

    def sender_of(self, conn: Connection) -> Sender | None:
        return conn.key.sender

    def on_frames(self, conn: Connection, frames: list[bytes], now: float) -> None:
        member: Member = conn.key
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
            self.arrived(now, fresh)

    def on_other_frame(self, member: Member, data: bytes, now: float) -> None:
        frame = orjson.loads(data)
        kind = frame.get("type")
        if kind == "ack" and member.sender is not None:
            self.on_ack(member.sender, frame, now)
        elif kind == "error":
            self.on_error(member.sender, frame, now)
        elif kind == "group_message":
            self.counts["stale"] += 1
        else:
            self.others[str(kind)] += 1

    def done(self, now: float, sending_ended: float) -> bool:
        """Every member here has every message of the run, or nothing arrived for the
        drain timeout after the sending ended (members here cannot know what other
        processes' senders got acked)."""
        quiet_since = max(sending_ended, self.last_receive)
        complete = len(self.members) * self.total
        return self.deliveries >= complete or now - quiet_since >= self.plan.drain_timeout

    def result(self, finished: bool, cpu_seconds: float) -> GroupResult:
        acked_map = bytearray(self.total)
        for sender in self.senders:
            first = sender.index * self.plan.messages
            acked_map[first : first + self.plan.messages] = sender.acked
        return GroupResult(
            **self.shared_result(finished, cpu_seconds),
            acked_map=bytes(acked_map),
            receipts=self.receipts.tobytes(),
            deliveries=self.deliveries,
            duplicates=self.counts["duplicates"],
            stale=self.counts["stale"],
            other_frames=dict(self.others),
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
    info = {
        "members": len(members),
        "senders": sum(1 for m in members if m.sender is not None),
        "failures": dict(failures),
        "early": dict(early),
    }
    run_load(start, GroupLoad(plan, loop, members), info, [m.conn for m in members])
