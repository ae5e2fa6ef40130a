"""Where held messages live, and the one question every send asks of it: is anything there?

Apart from queue.py so that a send with nothing held — nearly every send — never imports the queue
(its dataclasses, the message identity and the `email` package): about 10 ms before each send.
"""

from __future__ import annotations

import os
from pathlib import Path


def directory(state_home: Path) -> Path:
    return state_home / "mailpin" / "queue"


def idle(queue: Path) -> bool:
    """Nothing held and nothing delivered lately: one directory listing, no lock (every send asks)."""
    try:
        return not any(name.endswith(".json") for name in os.listdir(queue))
    except OSError:
        return not queue.exists()  # unreadable: the caller's next step reports it
