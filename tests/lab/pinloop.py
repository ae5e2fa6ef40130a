"""A pin-store writer to be SIGKILLed: the fault runs of issue 9 (tests/test_faults.py).

Run as ``python -m tests.lab.pinloop PINS LOCK A B`` (from the project root). It loads the
profiles of the pin files A and B with mailpin's own reader, says ``ready``, then answers one
command per line on stdin:

* ``calibrate N`` -- save A and B alternately N times here; answers the seconds per save;
* ``writer`` -- fork a child that saves A, B, A, … into PINS for ever, each save through
  ``PinStore.update()`` (the lock, the read, the atomic write: what ``accept`` does); answers
  the child's PID. The test kills it (SIGKILL) whenever it likes, then says ``reap PID``;
* ``reap PID`` -- wait for that child; answers its wait status.

Forking an interpreter that has imported mailpin already makes a writer ready in a millisecond,
so hundreds of kills cost seconds, not minutes of interpreter start-up. This process has one
thread: forking it is safe.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mailpin.model import Profile
from mailpin.state.store import PinStore


def save(store: PinStore, profiles: dict[str, Profile]) -> None:
    with store.update() as current:
        current.clear()
        current.update(profiles)


def writer(store: PinStore, states: tuple[dict[str, Profile], dict[str, Profile]]) -> None:
    turn = 0
    while True:
        save(store, states[turn % 2])
        turn += 1


def main(argv: list[str]) -> int:
    pins, lock, a, b = (Path(arg) for arg in argv)
    scratch = pins.with_name(".pinloop-unused.lock")
    states = (PinStore(a, scratch).load(), PinStore(b, scratch).load())
    store = PinStore(pins, lock)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "calibrate":
            count = int(arg)
            started = time.perf_counter()
            for turn in range(count):
                save(store, states[turn % 2])
            print(f"{(time.perf_counter() - started) / count:.6f}", flush=True)
        elif command == "writer":
            pid = os.fork()
            if pid == 0:  # the child never returns: it is killed
                try:
                    writer(store, states)
                finally:
                    os._exit(70)
            print(pid, flush=True)
        elif command == "reap":
            _, status = os.waitpid(int(arg), 0)
            print(status, flush=True)
        else:
            print(f"unknown command {command!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
