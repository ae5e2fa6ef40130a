"""A counting forwarder: how many TCP connections a real server sees for one run of a tool.

Issue 19's bar is that `mailpin run TOOL` opens no connection the bare tool would not open: the
session mailpin verified is the one the tool uses. Every connection accepted here goes to the one
real lab server (a split server whose benign and hostile sides are the same port), and is counted.
"""

from __future__ import annotations

import select
import time

from .split import SplitServer


class CountingServer(SplitServer):
    def __init__(self, upstream: int) -> None:
        super().__init__(upstream, upstream)

    def settled(self, timeout: float = 2.0) -> int:
        """The connections accepted so far, once none is left waiting in the listen queue.

        A client's connect() returns as soon as the kernel queues it, before this side's accept():
        a tool that connected and hung up at once may have exited with its connection still queued.
        """
        assert self._listener is not None
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.1)  # two accept slices: an accept() that returned has been counted
            waiting, _, _ = select.select([self._listener], [], [], 0)
            if not waiting or time.monotonic() > deadline:
                with self._lock:
                    return self.connections
