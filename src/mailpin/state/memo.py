"""What configobj made of a file's bytes, remembered: `$XDG_CACHE_HOME/mailpin/parsed.json`.

Every run reads mailpin's settings and its pin store, and reading them with configobj costs more CPU
than anything else mailpin does on a send: configobj and validate with the regexes they compile at
import (bench/RESULTS.md). Yet the files change only when the user edits them or a pin is taken.
So after a file has been read, checked and found good, the values configobj and validate produced
for it (strings, numbers, booleans and lists: JSON) are kept under a key that covers everything
that decided them:
- the file's bytes (SHA-256);
- the spec they were checked against;
- the code that read them: size and modification time of the reading modules and of configobj's
  and validate's own files.
A later run whose key matches takes those values as they were and does everything after configobj
as always (the Profiles and Settings are built, and checked, afresh). Whatever does not match
(another byte, an edited spec or reader, an upgraded configobj) is read in full, and an error is
always an error of the full read: only good reads are kept. A memo that is not the user's own, or
does not read, is ignored; it can only ever cost the full read it saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mailpin.state import cachefile

_NAME = "parsed.json"

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R")


def key(data: bytes, spec: str, readers: Sequence[str]) -> str | None:
    """The key of DATA read against SPEC by the source files READERS (and configobj); None when one
    of them has no file to stat (then nothing is remembered)."""
    digest = hashlib.sha256(data)
    digest.update(b"\0" + spec.encode("utf-8", "surrogateescape"))
    for file in (*readers, *_configobj_files()):
        try:
            info = os.stat(file)
        except OSError:
            return None
        digest.update(f"\0{file}\0{info.st_size}\0{info.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _configobj_files() -> tuple[str, ...]:
    """configobj's and validate's own files, found where an import would find them, not imported."""
    for entry in sys.path:
        package = os.path.join(entry or ".", "configobj")
        if os.path.isfile(os.path.join(package, "__init__.py")):
            return os.path.join(package, "__init__.py"), os.path.join(package, "validate.py")
    return ("configobj",)  # not found: stat fails, nothing is remembered


def remembered(
    cache_home: Path | None,
    kind: str,
    data: bytes,
    spec: str,
    readers: Sequence[str],
    read: Callable[[], tuple[object, R]],
    rebuild: Callable[[Any], R],
) -> R:
    """What DATA reads as: REBUILD of the values configobj made of these very bytes last time, when
    they are remembered under KIND; else READ in full (configobj's values, and the result), its
    values then remembered. Without CACHE_HOME, READ only."""
    if cache_home is None:
        return read()[1]
    memo_key = key(data, spec, readers)
    values = recall(cache_home, kind, memo_key)
    if values is not None:
        try:
            return rebuild(values)
        except Exception:  # anything a remembered value gets wrong: read in full, and say its error
            pass
    values, result = read()
    keep(cache_home, kind, memo_key, values)
    return result


def recall(cache_home: Path, kind: str, memo_key: str | None) -> object | None:
    """The values kept for KIND under exactly MEMO_KEY; None when there are none."""
    entry = cachefile.read(cache_home, _NAME).get(kind) if memo_key else None
    if isinstance(entry, dict) and entry.get("key") == memo_key:
        return entry.get("values")
    return None


def keep(cache_home: Path, kind: str, memo_key: str | None, values: object) -> None:
    """Remember VALUES for KIND under MEMO_KEY. Values JSON would not give back equal are not kept."""
    if memo_key is None:
        return
    try:
        if json.loads(json.dumps(values)) != values:
            return  # a tuple, a float that does not round-trip: the next run reads in full
    except (TypeError, ValueError):
        return
    memo = cachefile.read(cache_home, _NAME)
    memo[kind] = {"key": memo_key, "values": values}
    cachefile.write(cache_home, _NAME, memo)
