"""Regenerate the generated tables of docs/SECURITY.md from a real test run.

    .venv/bin/python docs/gen_security.py            # run the tests, rewrite the tables
    .venv/bin/python docs/gen_security.py --check    # no tests: do the matrix rows match the catalogue?

The first form runs pytest on the attack matrix (tests/test_campaign.py) and the fault runs
(tests/test_faults.py, when it exists) with ``MAILPIN_CAMPAIGN_RESULTS`` naming a temporary file;
each case records what it observed there (tests/lab/report.py). Then only the text between
``<!-- generated: matrix -->`` / ``<!-- end generated: matrix -->`` and between
``<!-- generated: faults -->`` / ``<!-- end generated: faults -->`` is rewritten; the prose around
the markers is never touched. The tables are written even when pytest fails, so a failure is
visible in the document; the exit status is then non-zero.

``--check`` only compares the matrix rows of the document (scenario ids and expected outcomes)
with tests/lab/campaign.py: a scenario added or changed without regenerating fails
tests/test_security_doc.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab import campaign, report  # noqa: E402

DOC = ROOT / "docs" / "SECURITY.md"
TEST_FILES = ("tests/test_campaign.py", "tests/test_faults.py")
COMMAND = ".venv/bin/python docs/gen_security.py"
FAULT_COLUMNS = ("fault", "runs", "outcome", "figure", "passed")
_MATRIX_HEAD = (
    "scenario", "class", "protocol / mode", "server behaviour (played by)", "expected",
    *campaign.ALL_TARGETS, "credentials / mail seen",
)  # fmt: skip


# -- the document's generated sections --------------------------------------------------------------


def markers(name: str) -> tuple[str, str]:
    return f"<!-- generated: {name} -->", f"<!-- end generated: {name} -->"


def section(text: str, name: str) -> str:
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"{DOC}: expected exactly one {start} … {end} pair")
    return text[text.index(start) + len(start) : text.index(end)]


def replace_section(text: str, name: str, body: str) -> str:
    start, end = markers(name)
    section(text, name)  # the markers are there, once, in order
    before, after = text[: text.index(start) + len(start)], text[text.index(end) :]
    return before + "\n" + body.strip("\n") + "\n" + after


def cell(value: object) -> str:
    """Markdown table cell text: one line, pipes escaped."""
    return str(value).replace("\n", " ").replace("|", "\\|")


def row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(cell(value) for value in cells) + " |"


def table_rows(body: str) -> list[list[str]]:
    """The rows of the Markdown table(s) in ``body``, split at unescaped pipes."""
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", line):
            rows.append([part.strip().replace("\\|", "|") for part in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# -- the matrix ---------------------------------------------------------------------------------------


def _mode(scenario: campaign.Scenario) -> str:
    return f"{scenario.protocol.upper()} {'Implicit TLS' if scenario.mode == 'implicit' else 'STARTTLS'}"


def _target_cell(scenario: campaign.Scenario, target: str, found: dict[str, Any] | None, bugs: list[str]) -> str:
    if target not in scenario.targets:
        return "n/a" if scenario.protocol == "pop3" and target != campaign.PROBE else "—"
    if found is None:
        return "not run"
    text = f"{'✔' if found['passed'] else '✘'} {found['observed']}"
    if found.get("note"):
        text += f" ({found['note']})"
    if found.get("problems") and not found["passed"]:
        text += " — " + "; ".join(found["problems"])
    if found.get("known_bug"):
        if found["known_bug"] not in bugs:
            bugs.append(found["known_bug"])
        text += f" [bug {bugs.index(found['known_bug']) + 1}]"
    return text


def _expected(scenario: campaign.Scenario) -> str:
    """The expected outcome; a POP3 certificate row adds what the wrapped tool's run must show."""
    return f"{scenario.expected}; run: {scenario.tools}" if scenario.tools else str(scenario.expected)


def _seen_cell(scenario: campaign.Scenario, found: dict[str, dict[str, Any]]) -> str:
    seen = [target for target, item in found.items() if item.get("credentials_or_mail_seen")]
    if not seen:
        return "none" if found else "not run"
    if scenario.expected.clean:
        return "by the tool's verified session: " + ", ".join(seen)
    return "**YES**: " + ", ".join(seen) + " ✘"


def render_matrix(records: list[dict[str, Any]], summary: str, when: str) -> str:
    by_scenario: dict[str, dict[str, dict[str, Any]]] = {}
    for item in records:
        if item.get("table") == "matrix":
            by_scenario.setdefault(item["scenario"], {})[item["target"]] = item
    bugs: list[str] = []
    lines = [row(_MATRIX_HEAD), row(["---"] * len(_MATRIX_HEAD))]
    blocked = benign = failed = not_run = known = let_through = benign_blocked = 0
    for scenario in campaign.SCENARIOS:
        found = by_scenario.get(scenario.id, {})
        cells = [
            f"`{scenario.id}`",
            scenario.attack,
            _mode(scenario),
            f"{scenario.description} ({scenario.server.played_by})",
            _expected(scenario),
            *(_target_cell(scenario, target, found.get(target), bugs) for target in campaign.ALL_TARGETS),
            _seen_cell(scenario, found),
        ]
        lines.append(row(cells))
        clean = [not item["observed_status"] and not item["observed_reasons"] for item in found.values()]
        let_through += not scenario.expected.clean and any(clean)
        benign_blocked += scenario.expected.clean and not all(clean)
        if any(target not in found for target in scenario.targets):
            not_run += 1
        elif not all(item["passed"] for item in found.values()):
            failed += 1
            known += all(item["passed"] or item.get("known_bug") for item in found.values())
        elif scenario.expected.clean:
            benign += 1
        else:
            blocked += 1
    total = len(campaign.SCENARIOS)
    totals = f"{total} scenarios, {blocked} blocked as expected, {benign} benign controls passed, {failed} failed"
    if known:
        totals += f" ({known} of them known product bugs, strict xfail: see the notes)"
    if not_run:
        totals += f", {not_run} not run (or not recorded)"
    totals += f"; {let_through} let an attack through, {benign_blocked} blocked a benign control"
    targets = sum(len(s.targets) for s in campaign.SCENARIOS)
    head = [
        f"Generated by `{COMMAND}` on {when} from a real run; do not edit by hand.",
        "",
        f"pytest: `{summary}`",
        "",
        f"**{totals}.** {targets} cases: every scenario against each target of its protocol.",
        "",
        "How to read it. Each account is first pinned against the benign behaviour of the same server on the",
        "same port (`mailpin init --yes`, through a real msmtp / mbsync / offlineimap config whose trust file is",
        "the test CA); then the server switches to the scenario. `check` is `mailpin check ACCOUNT --json`.",
        "`run TOOL` is the repository's shim running the real tool (`msmtp -t` with a message on stdin,",
        "`mbsync -a`, `offlineimap -o`), and the outcome shown is mailpin's decision: on a block the exit",
        "status and reasons, one stderr line naming both, the message held byte for byte (msmtp), and nothing",
        "reaching the server; on a benign control `0` once mailpin handed over — the real servers then really",
        "deliver or sync, while the hostile rig refuses the tool's login after the hand-over (so the tool's own",
        "exit is non-zero there). POP3 rows run against `mailpin probe`, which pins nothing and reports",
        "certificate findings with exit 0, and `run mpop` (`mpop -q lab`), `run fetchmail` and, for",
        "Implicit TLS, `run getmail` (`getmail -r lab`; getmail has no STARTTLS), which block them. Stall scenarios",
        f"run with mailpin's `timeout` at {campaign.STALL_TIMEOUT:g} s. The expected outcomes are written by hand from",
        "DESIGN §3/§4 in tests/lab/campaign.py, never taken from a run.",
        "",
        *lines,
    ]
    if bugs:
        head += ["", "Known product bugs (the expectation stays what DESIGN says; the cases are strict xfails):", ""]
        head += [f"{number}. {text}" for number, text in enumerate(bugs, start=1)]
    return "\n".join(head)


# -- the fault runs -----------------------------------------------------------------------------------


def render_faults(records: list[dict[str, Any]], summary: str, when: str, present: bool) -> str:
    faults = [item for item in records if item.get("table") == "faults"]
    head = [f"Generated by `{COMMAND}` on {when} from a real run; do not edit by hand.", ""]
    if not present:
        return "\n".join([*head, "tests/test_faults.py is not in this tree: no fault runs."])
    head += [f"pytest: `{summary}`", ""]
    if not faults:
        return "\n".join([*head, "No fault runs were recorded."])
    extra = sorted({key for item in faults for key in item} - {"table", *FAULT_COLUMNS})
    columns = [*FAULT_COLUMNS, *extra]
    passed = sum(1 for item in faults if item.get("passed"))
    head += [f"**{len(faults)} fault runs, {passed} passed, {len(faults) - passed} failed.**", ""]
    lines = [row(columns), row(["---"] * len(columns))]
    for item in faults:
        lines.append(row([_fault_value(column, item.get(column, "")) for column in columns]))
    return "\n".join([*head, *lines])


def _fault_value(column: str, value: object) -> str:
    if column == "passed":
        return "✔" if value else "✘"
    if isinstance(value, list | tuple):
        return ", ".join(str(part) for part in value)
    return str(value)


# -- commands ----------------------------------------------------------------------------------------


def check(doc: Path = DOC) -> list[str]:
    """Differences between the document's matrix rows and the catalogue (empty: up to date)."""
    rows = table_rows(section(doc.read_text(encoding="utf-8"), "matrix"))
    if not rows:
        return [f"{doc}: the matrix has no rows: run `{COMMAND}`"]
    header, body = rows[0], rows[1:]
    try:
        at = header.index("expected")
    except ValueError:
        return [f"{doc}: the matrix has no 'expected' column: run `{COMMAND}`"]
    listed: dict[str, str] = {}
    problems = []
    for cells in body:
        scenario = cells[0].strip("`")
        if scenario in listed:
            problems.append(f"{scenario}: listed twice")
        listed[scenario] = cells[at]
    wanted = {scenario.id: _expected(scenario) for scenario in campaign.SCENARIOS}
    problems += [f"{key}: in the catalogue, not in the document" for key in wanted if key not in listed]
    problems += [f"{key}: in the document, not in the catalogue" for key in listed if key not in wanted]
    problems += [
        f"{key}: the document expects {listed[key]!r}, the catalogue {wanted[key]!r}"
        for key in wanted
        if key in listed and listed[key] != wanted[key]
    ]
    if problems:
        problems.append(f"regenerate: `{COMMAND}`")
    return problems


def run_tests(results: Path) -> tuple[int, str]:
    """pytest on the campaign and the fault tests, streamed to stdout; (status, summary line)."""
    files = [name for name in TEST_FILES if (ROOT / name).exists()]
    env = {**os.environ, report.VARIABLE: str(results)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    print("$", " ".join(command), flush=True)
    summary = "(no summary line)"
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            text = line.strip().strip("=").strip()
            if re.search(r"\b(passed|failed|error|errors|skipped|xfailed|deselected)\b.* in [\d.]+s", text):
                summary = text
    return proc.returncode, summary


def generate(doc: Path = DOC, results_file: Path | None = None) -> int:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="mailpin-security-") as tmp:
        if results_file is None:
            results = Path(tmp) / "results.jsonl"
            results.touch()
            status, summary = run_tests(results)
        else:  # render an earlier run's results (development)
            results, status, summary = results_file, 0, f"(results of an earlier run: {results_file})"
        records = report.load(str(results))
    text = doc.read_text(encoding="utf-8")
    text = replace_section(text, "matrix", render_matrix(records, summary, when))
    present = (ROOT / "tests" / "test_faults.py").exists()
    text = replace_section(text, "faults", render_faults(records, summary, when, present))
    doc.write_text(text, encoding="utf-8")
    print(f"{doc}: tables rewritten ({len(records)} records)")
    if status != 0:
        print(f"pytest failed (exit {status}): the tables show it", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare the matrix rows with the catalogue")
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help="render these results instead of running the tests")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.doc)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    return generate(args.doc, args.results)


if __name__ == "__main__":
    sys.exit(main())
