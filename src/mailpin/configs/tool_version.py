"""Which version of a tool is installed: asked once per binary, and remembered.

The config a tool takes depends on its version (isync 1.4 refuses 1.5's `TLSType`; only 1.5 reads
`$XDG_CONFIG_HOME/isyncrc`), and mailpin must take exactly what the installed tool takes. Asking
(`mbsync --version`) costs a process start on every sync, so the answer is kept in
`$XDG_CACHE_HOME/mailpin/versions.json`, keyed by the binary's path and its identity (device, inode,
size, mtime): an upgrade replaces the binary, and the new one is asked again. It is a cache, not
state: a file that cannot be read or is not mailpin's own is asked around, never trusted.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from mailpin.env import Env
from mailpin.state import cachefile

# tool -> (argv after the binary, the version in its output)
_ASK = {"mbsync": (["--version"], re.compile(r"isync (\d+)\.(\d+)"))}
_MAX_ENTRIES = 32
_NAME = "versions.json"


def installed(tool: str, env: Env) -> tuple[int, int] | None:
    """(major, minor) of the real `tool` on PATH; None when there is none or it does not say."""
    from mailpin.errors import ConfigError
    from mailpin.run.handover import find_tool

    try:
        # The real binary: through mailpin's own shim, `mbsync --version` would be `mailpin run
        # mbsync --version`, which reads the config again, and so on without end.
        binary = find_tool(tool, {"PATH": env.environ.get("PATH") or os.defpath})
    except ConfigError:
        return None
    return version_of(tool, binary, env.cache_home)


def version_of(tool: str, binary: str, cache_home: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(binary)
    except OSError:
        return None
    identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    known = cachefile.read(cache_home, _NAME)
    entry = known.get(binary)
    if isinstance(entry, dict) and entry.get("id") == identity and _is_version(entry.get("version")):
        major, minor = entry["version"]
        return major, minor
    asked = _ask(tool, binary)
    if asked is not None:
        known[binary] = {"id": identity, "version": list(asked)}
        cachefile.write(cache_home, _NAME, dict(list(known.items())[-_MAX_ENTRIES:]))
    return asked


def _ask(tool: str, binary: str) -> tuple[int, int] | None:
    args, pattern = _ASK[tool]
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = pattern.search(out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _is_version(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(part) is int for part in value)
