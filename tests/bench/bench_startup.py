"""Start-up: ``plait --help`` with every plugin installed, in ms, next to the bare interpreter.

Target: ``plait --help`` under 200 ms (median). The help lists the plugins' commands, so it
loads every installed plugin; ``import plait`` alone loads nothing behind the flat
namespace. Each command runs in a fresh process, round-robin with the others, so load
elsewhere on the machine hits them alike; ``python -c pass`` is the floor no command can
go under.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import statistics
import subprocess
import sys
import time

from _harness import line, parse_args, verdict

PYTHON = sys.executable
PLAIT = str(pathlib.Path(PYTHON).with_name("plait"))
COMMANDS = {
    "python -c pass (the floor)": [PYTHON, "-c", "pass"],
    "import plait": [PYTHON, "-c", "import plait"],
    "import plait; plait.Pipeline, plait.Agent": [
        PYTHON, "-c", "import plait; plait.Pipeline, plait.Agent"],
    "plait --version": [PLAIT, "--version"],
    "plait --help (every plugin loaded)": [PLAIT, "--help"],
}
TARGET_S = 0.200


def main() -> None:
    args = parse_args(__doc__, rounds=20)
    import plait

    if not os.path.exists(importlib.util.cache_from_source(plait.__file__)):
        print("  note: plait has no bytecode here (`make` compiles it), so every command "
              "below also compiles it")
    env = {**os.environ, "PLAIT_STORE": "off"}
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds + 1):  # the first round warms the OS's file cache
        for name, cmd in COMMANDS.items():
            started = time.perf_counter()
            # no timeout: with one, run() polls with growing sleeps and the time is theirs
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - started)
    floor = statistics.median(samples["python -c pass (the floor)"][1:])
    print(f"\nstart-up, median of {args.rounds} fresh processes")
    for name, times in samples.items():
        took = statistics.median(times[1:])
        is_help = name.startswith("plait --help")
        line(name, f"{took * 1000:6.1f} ms  {took / floor:5.1f}x floor",
             verdict(took < TARGET_S, "< 200 ms") if is_help else "")


if __name__ == "__main__":
    main()
