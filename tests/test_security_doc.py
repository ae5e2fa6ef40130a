"""docs/SECURITY.md lists exactly the scenarios of the attack matrix, with their expected outcomes:
a scenario added to tests/lab/campaign.py (or an expectation changed) without regenerating the
document (`.venv/bin/python docs/gen_security.py`) fails here. No test run is needed for this."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_security_doc_matrix_lists_the_catalogue() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_security.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_check_notices_a_missing_and_a_changed_row(tmp_path: Path) -> None:
    doc = tmp_path / "SECURITY.md"
    text = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `smtp/starttls/stripped`")]
    assert len(rows) == 1
    edited = text.replace(rows[0] + "\n", "").replace("| 69 starttls-refused |", "| 0 |", 1)
    doc.write_text(edited, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_security.py"), "--check", "--doc", str(doc)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "smtp/starttls/stripped: in the catalogue, not in the document" in done.stderr
    assert "the document expects '0', the catalogue '69 starttls-refused'" in done.stderr
