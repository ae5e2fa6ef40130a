"""mailpin's small JSON files that only ever save work or a repetition: connect.json, parsed.json and
versions.json under `$XDG_CACHE_HOME/mailpin`, upgrade-told.json under `$XDG_STATE_HOME/mailpin`.
One that others could have written (the rule of the pin store, state/durable.foreign: what
parsed.json says stands in for pins.conf), or that does not read, is empty; one that cannot be
written is not written. Imports only what a run imports
anyway: it is read before the heavy modules load.
"""

from __future__ import annotations

import json
from pathlib import Path


def path(home: Path, name: str) -> Path:
    return home / "mailpin" / name


def read(home: Path, name: str) -> dict[str, object]:
    from mailpin.state.durable import foreign

    file = path(home, name)
    if foreign(file, name) is not None:
        return {}  # not the user's own: what it says is not taken (the next write replaces it)
    try:
        with open(file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write(home: Path, name: str, data: dict[str, object]) -> None:
    from mailpin.state.durable import make_private_dirs, write_atomically

    file = path(home, name)
    try:
        make_private_dirs(file.parent)
        write_atomically(file, json.dumps(data).encode("utf-8"))
    except OSError:
        pass  # the next run does the work (or says the thing) again
