"""Where a server's memory goes: tracemalloc snapshots taken inside the node, on request.

``python -m bench.memnode`` runs ``hubbub serve`` with tracemalloc on and a ``SIGUSR1``
handler (``install``); each signal writes, into the directory it was given, a snapshot
(``snap-N.pickle``), the live objects counted by type (``objects-N.json``), and last a
marker (``done-N``). ``request`` sends the signal and waits for the marker; ``compare``
turns two snapshots into bytes per connection, by source line, by file and by library,
and the objects per connection, by type. For measuring only: tracemalloc slows the
server and roughly doubles its memory, so its RSS figures mean nothing.
"""

from __future__ import annotations

import collections
import gc
import os
import pickle
import signal
import time
import tracemalloc
from pathlib import Path
from types import FrameType

import orjson

#: Frames kept per allocation: enough to see which hubbub line asked for it.
FRAMES = 8


def install(directory: Path) -> None:
    """Start tracemalloc (if not started) and dump on each ``SIGUSR1``. Call before the
    event loop starts; the handler runs between bytecodes on the main thread."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*-*"):
        if stale.name.startswith(("snap-", "objects-", "done-")):
            stale.unlink()  # a marker left by an earlier run would answer for this one
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    count = 0

    def dump(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        dump_now(directory, count)

    signal.signal(signal.SIGUSR1, dump)


def dump_now(directory: Path, index: int) -> None:
    """Write snapshot ``index`` and its object counts, then its marker."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    with open(directory / f"snap-{index}.pickle", "wb") as f:
        pickle.dump(snapshot, f)
    types = collections.Counter(_type_name(o) for o in gc.get_objects())
    (directory / f"objects-{index}.json").write_bytes(orjson.dumps(dict(types)))
    (directory / f"done-{index}").touch()


def _type_name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def request(pid: int, directory: Path, index: int, timeout: float = 300.0) -> None:
    """Ask ``pid`` for dump ``index`` (its ``index``-th SIGUSR1) and wait until written."""
    marker = directory / f"done-{index}"
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"server {pid} wrote no dump {index} within {timeout}s")
        time.sleep(0.2)


def _library(filename: str) -> str:
    """A coarse owner for a source file: hubbub's package, or the library's name."""
    parts = Path(filename).parts
    if "hubbub" in parts:
        index = len(parts) - 1 - parts[::-1].index("hubbub")
        return "/".join(parts[index : min(index + 3, len(parts) - 1)]) or "hubbub"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return "stdlib:" + Path(filename).stem


def _innermost_own(trace: tracemalloc.Traceback) -> tracemalloc.Frame:
    """The innermost frame in hubbub's code (else the innermost frame): who asked."""
    for frame in reversed(trace):  # a Traceback runs from the oldest frame kept
        if "/hubbub/" in frame.filename:
            return frame
    return trace[-1]


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("hubbub", "site-packages"):
        if anchor in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(anchor) + 1 :])
    return Path(filename).name


def compare(directory: Path, before: int, after: int, count: int, top: int = 25) -> dict:
    """Bytes and objects per connection between dumps ``before`` and ``after``.

    ``by_line``: the allocating line (innermost frame); ``by_caller``: the innermost
    hubbub line of the traceback (what hubbub did that cost it), ``by_caller_file`` the
    same by file; ``by_library``: the allocating line's package; ``objects``: gc-tracked
    objects by type."""
    with open(directory / f"snap-{before}.pickle", "rb") as f:
        old = pickle.load(f)
    with open(directory / f"snap-{after}.pickle", "rb") as f:
        new = pickle.load(f)
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old, new = old.filter_traces(filters), new.filter_traces(filters)
    per = max(count, 1)

    def table(grouped: dict[str, int]) -> dict[str, float]:
        ranked = sorted(grouped.items(), key=lambda item: -abs(item[1]))[:top]
        return {key: round(size / per, 1) for key, size in ranked}

    by_line: collections.Counter[str] = collections.Counter()
    by_library: collections.Counter[str] = collections.Counter()
    by_caller: collections.Counter[str] = collections.Counter()
    by_caller_file: collections.Counter[str] = collections.Counter()
    for diff in new.compare_to(old, "traceback"):
        frame = diff.traceback[-1]  # the allocating line
        by_line[f"{_short(frame.filename)}:{frame.lineno}"] += diff.size_diff
        by_library[_library(frame.filename)] += diff.size_diff
        caller = _innermost_own(diff.traceback)
        by_caller[f"{_short(caller.filename)}:{caller.lineno}"] += diff.size_diff
        by_caller_file[_short(caller.filename)] += diff.size_diff
    total = sum(by_line.values())
    old_objects = orjson.loads((directory / f"objects-{before}.json").read_bytes())
    new_objects = orjson.loads((directory / f"objects-{after}.json").read_bytes())
    objects = {
        name: new_objects.get(name, 0) - old_objects.get(name, 0)
        for name in set(old_objects) | set(new_objects)
    }
    ranked = sorted(objects.items(), key=lambda item: -abs(item[1]))[:top]
    return {
        "bytes per connection": round(total / per, 1),
        "by_library": table(by_library),
        "by_caller_file": table(by_caller_file),
        "by_caller": table(by_caller),
        "by_line": table(by_line),
        "objects": {name: round(n / per, 3) for name, n in ranked if n},
    }


def show(title: str, breakdown: dict) -> None:
    """Print a ``compare`` result, one table per grouping."""
    print(f"{title}: {breakdown['bytes per connection']:,.0f} traced bytes")
    for name, table in breakdown.items():
        if isinstance(table, dict):
            print(f"  {name}")
            for key, value in table.items():
                print(f"    {value:>10,.1f}  {key}")
