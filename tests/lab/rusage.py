"""Run a command and report its peak RSS as `os.wait4` sees it — from a small parent.

``python -S tests/lab/rusage.py REPORT TIMEOUT -- COMMAND…``: spawns COMMAND (stdin, stdout and
stderr inherited), writes its PID as the first line of REPORT, waits for it with ``os.wait4``
(SIGKILL after TIMEOUT seconds), then appends one JSON line: ``status`` (as subprocess reports
it), ``maxrss_mb``, ``seconds`` (wall time from spawn to exit), ``killed``. Exits with 0.

Why not wait4 straight from pytest: Linux carries the spawning process's high-water RSS over
``exec`` into the new program's ``ru_maxrss`` (exec_mmap → setmax_mm_hiwater_rss), so every child of a
60 MB pytest would report at least 60 MB. This launcher, run with ``-S``, is a few MB: below any
real figure, so ``ru_maxrss`` is the command's own peak.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    report, timeout, separator, *command = argv
    if separator != "--" or not command:
        print("usage: rusage.py REPORT TIMEOUT -- COMMAND…", file=sys.stderr)
        return 2
    started = time.monotonic()
    pid = os.posix_spawnp(command[0], command, os.environ)
    with open(report, "w", encoding="utf-8") as stream:
        stream.write(f"{pid}\n")
    deadline, killed = started + float(timeout), False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if not killed and time.monotonic() > deadline:
            os.kill(pid, 9)
            killed = True
        time.sleep(0.002)
    result = {
        "status": os.waitstatus_to_exitcode(status),
        "maxrss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        "seconds": time.monotonic() - started,
        "killed": killed,
    }
    with open(report, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
