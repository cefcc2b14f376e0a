"""Run the benchmarks: ``python -m tests.bench [names...] [--backend asyncio|trio]``.

Each ``tests/bench/bench_<name>.py`` runs in a fresh process (no warm caches or memory
from another benchmark), one after the other; ``names`` picks some (``w1 w3``), by default
all of them. Never part of the test suite: pytest collects only ``test_*.py``.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).parent


def main() -> int:
    available = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default: all): {', '.join(available)}")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    chosen = []
    for name in args.names or list(available):
        matches = [key for key in available if key == name or key.startswith(f"{name}_")]
        if not matches:
            parser.error(f"no benchmark {name!r}; available: {', '.join(available)}")
        chosen.extend(m for m in matches if m not in chosen)
    failed = []
    for name in chosen:
        print(f"== {available[name].name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(available[name]), "--backend", args.backend])
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
