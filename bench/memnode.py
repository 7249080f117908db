"""``hubbub serve`` with tracemalloc on, dumping its heap on ``SIGUSR1`` (for measuring).

    HUBBUB_... .venv/bin/python -m bench.memnode --dumps /tmp/heap serve --port 8321

Then ``python -m bench.idle ... --tracemalloc /tmp/heap`` asks for a dump at each step
and prints where the bytes per connection went (``bench.harness.heap``). Everything
after ``--dumps DIR`` is ``hubbub``'s own command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.harness import heap


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "--dumps":
        print("usage: python -m bench.memnode --dumps DIR serve [hubbub options]", file=sys.stderr)
        return 2
    heap.install(Path(args[1]))
    from hubbub.cli import main as hubbub_main  # traced from its first import

    return hubbub_main(args[2:])


if __name__ == "__main__":
    sys.exit(main())
