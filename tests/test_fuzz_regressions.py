"""Inputs the long fuzz run (bench/fuzz_parsers.py → bench/results-fuzz.md) found slow: each must now
be answered at once, with a result or the parser's own error."""

from __future__ import annotations

import time

import pytest

from mailpin import settings, store
from mailpin.errors import ConfigError

BLANKS = [
    b" " * 945 + b"$" + b" " * 521,
    b" " * 1174 + b"CA" + b" " * 147,
    b" " * 3000 + b"CA" + b" " * 3000,
    b"a" + b" " * 3000 + b"b",
    b"\t " * 2000 + b"level = ca",
]


@pytest.mark.parametrize("data", BLANKS, ids=range(len(BLANKS)))
@pytest.mark.parametrize("parser", ["settings", "store"])
def test_long_runs_of_blanks_are_answered_at_once(parser: str, data: bytes) -> None:
    started = time.monotonic()
    try:
        if parser == "settings":
            settings.parse(data.decode(), "fuzz")
        else:
            store._parse(data, "fuzz")
    except ConfigError:
        pass
    assert time.monotonic() - started < 0.5
