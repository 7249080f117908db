"""Process figures from ``/proc``: CPU seconds and resident memory, and fd limits.

CPU comes from ``/proc/<pid>/stat`` (utime + stime, all threads, so a server's
SQLite or hashing threads count too); RSS from ``VmRSS`` in ``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence

import attrs

_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class ProcSample:
    pid: int
    cpu_seconds: float
    rss_kb: int


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (the state is [0])."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces: split only after its ')'.
    return stat.rpartition(b")")[2].split()


def _cpu(fields: list[bytes]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICKS


def sample(pid: int) -> ProcSample:
    """CPU and RSS of ``pid`` now. Raises ProcessLookupError if it is gone."""
    try:
        cpu = _cpu(_stat_fields(pid))
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}: is the pid right?") from None
    rss = 0
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1])
            break
    return ProcSample(pid, cpu, rss)


def child_pids(pid: int) -> list[int]:
    """The live (not zombie) children of ``pid``: the workers of ``hubbub serve
    --workers N`` when ``pid`` is its parent."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = _stat_fields(int(entry.name))
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == pid and fields[0] != b"Z":
                found.append(int(entry.name))
    return sorted(found)


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant (e.g. a PostgreSQL postmaster
    and its backends). A descendant that exits takes its seconds with it, so sample
    trees whose processes live through the run. Raises ProcessLookupError if ``root``
    is gone."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = _stat_fields(int(entry.name))
            except OSError:
                continue  # exited meanwhile
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = _cpu(fields)
    if root not in cpu:
        raise ProcessLookupError(f"no process {root}: is the pid right?")
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu[pid]
        stack.extend(children.get(pid, ()))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle or waiting for I/O) since boot.

    Differences of this over a run show how much of the machine *other* processes
    took: on a shared machine, a load that saturates neither server nor harness."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    # guest time is already counted in user time.
    return (sum(fields[:8]) - idle) / _TICKS


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_files_limit(pid: int) -> int | None:
    """The soft limit on open files of ``pid`` (None if unlimited or unreadable)."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line.split()[3]
                    return None if soft == "unlimited" else int(soft)
    except OSError:
        return None
    return None


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-files soft limit towards ``wanted`` (at most the hard
    limit); return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


@attrs.frozen
class Snapshot:
    """The server processes, the database's process trees and the machine at one moment."""

    at: float
    machine_busy: float
    servers: tuple[ProcSample, ...]
    database_cpu: float


def snapshot(pids: Sequence[int], database_pids: Sequence[int] = ()) -> Snapshot:
    """Sample every pid in ``pids``, the process trees of ``database_pids``, the machine."""
    return Snapshot(
        time.monotonic(),
        machine_busy_seconds(),
        tuple(sample(p) for p in pids),
        sum(tree_cpu_seconds(p) for p in database_pids),
    )


@attrs.frozen
class Span:
    """What happened between two snapshots of the same pids."""

    before: Snapshot
    after: Snapshot

    @property
    def wall(self) -> float:
        return max(self.after.at - self.before.at, 1e-9)

    @property
    def server_cpu(self) -> float:
        """CPU seconds of all the server processes together."""
        pairs = zip(self.after.servers, self.before.servers, strict=True)
        return sum(a.cpu_seconds - b.cpu_seconds for a, b in pairs)

    @property
    def server_cpu_by_pid(self) -> dict[str, float]:
        """CPU seconds of each server process (how evenly workers shared the load)."""
        pairs = zip(self.after.servers, self.before.servers, strict=True)
        return {str(a.pid): round(a.cpu_seconds - b.cpu_seconds, 3) for a, b in pairs}

    @property
    def database_cpu(self) -> float:
        """CPU seconds of the database's process trees."""
        return self.after.database_cpu - self.before.database_cpu

    @property
    def rss_growth_kb(self) -> int:
        return sum(s.rss_kb for s in self.after.servers) - sum(
            s.rss_kb for s in self.before.servers
        )

    @property
    def machine_cores(self) -> float:
        """Cores the whole machine kept busy on average (every process, not just ours)."""
        return (self.after.machine_busy - self.before.machine_busy) / self.wall
