"""Outcome records for the tables of docs/SECURITY.md.

The attack matrix and the fault runs call :func:`record` once per case with what they *observed*
(exit status, reason, whether anything was sent). When ``MAILPIN_CAMPAIGN_RESULTS`` names a file
(``docs/gen_security.py`` sets it and runs pytest), each call appends one JSON line to it;
otherwise :func:`record` does nothing, so a plain test run writes no files.

The tests assert the expected outcome themselves; the records only carry the evidence into the
document, so a table row exists only for a case that really ran.
"""

from __future__ import annotations

import json
import os
from typing import Any

VARIABLE = "MAILPIN_CAMPAIGN_RESULTS"


def record(table: str, **fields: Any) -> None:
    """Append ``{"table": table, **fields}`` to the results file, if one is set."""
    path = os.environ.get(VARIABLE)
    if not path:
        return
    line = json.dumps({"table": table, **fields}, sort_keys=True, default=str)
    # One write of a whole line in append mode: records of one run never interleave mid-line.
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")


def load(path: str) -> list[dict[str, Any]]:
    """Every record of a results file, in the order written."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]
