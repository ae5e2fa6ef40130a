"""The XDG base directories of an environment (XDG Base Directory spec), importing nothing: the
first step of `mailpin run` reads its cache before anything else loads (net/early.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def home(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


def base(environ: Mapping[str, str], variable: str, default: str) -> str:
    """$VARIABLE, or DEFAULT under the home directory; relative values are invalid and ignored."""
    value = environ.get(variable, "")
    return value if os.path.isabs(value) else os.path.join(home(environ), default)
