"""The audit log: exact lines, 0600, whole lines under 20 concurrent writers, torn lines skipped."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailpin.env import Env
from mailpin.errors import ExitStatus
from mailpin.state.audit import AuditError, AuditLog

# Data only: the log writes the time it is given and compares it with no clock.
T0 = datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc)


@pytest.fixture
def log() -> AuditLog:
    return AuditLog.for_env(Env.from_os())


def test_for_env_puts_the_log_in_the_state_dir(isolated_env: Path) -> None:
    assert AuditLog.for_env(Env.from_os()).path == isolated_env / ".local" / "state" / "mailpin" / "audit.log"


def test_one_compact_line_per_record(log: AuditLog) -> None:
    log.record("pin", "msmtp:work", T0, level="ca", reasons=[], endpoint=None, ok=True, ms=1.5)
    log.record("blocked", "mbsync:Büro", T0 + timedelta(seconds=1), reasons=["key-changed"], detail={"n": 1})
    assert log.path.read_bytes() == (
        b'{"time":"2026-11-29T17:05:00+00:00","event":"pin","account":"msmtp:work",'
        b'"level":"ca","reasons":[],"endpoint":null,"ok":true,"ms":1.5}\n'
        b'{"time":"2026-11-29T17:05:01+00:00","event":"blocked","account":"mbsync:B\xc3\xbcro",'
        b'"reasons":["key-changed"],"detail":{"n":1}}\n'
    )


def test_time_is_written_in_utc(log: AuditLog) -> None:
    log.record("verified", "msmtp:work", datetime(2026, 11, 29, 18, 5, tzinfo=timezone(timedelta(hours=1))))
    assert log.events()[0]["time"] == "2026-11-29T17:05:00+00:00"
    assert datetime.fromisoformat(log.events()[0]["time"]) == T0


def test_events_in_order_and_by_account(log: AuditLog) -> None:
    for index, account in enumerate(["msmtp:a", "msmtp:b", "msmtp:a", "mbsync:a"]):
        log.record("verified", account, T0, n=index)
    assert [event["n"] for event in log.events()] == [0, 1, 2, 3]
    assert [event["n"] for event in log.events("msmtp:a")] == [0, 2]
    assert log.events("msmtp:none") == []


def test_missing_log_is_no_events_and_creates_nothing(log: AuditLog, isolated_env: Path) -> None:
    assert log.events() == []
    assert list(isolated_env.iterdir()) == []


def test_torn_last_line_is_skipped_and_the_next_record_is_whole(log: AuditLog) -> None:
    log.record("verified", "msmtp:a", T0)
    with log.path.open("ab") as torn:
        torn.write(b'{"time":"2026-11-29T17:06:00+00:00","event":"bloc')  # the crash
    assert [event["account"] for event in log.events()] == ["msmtp:a"]
    log.record("blocked", "msmtp:b", T0)
    assert [event["account"] for event in log.events()] == ["msmtp:a", "msmtp:b"]


def test_lines_that_are_not_records_are_skipped(log: AuditLog) -> None:
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b'\n[1, 2]\n"text"\n\xff\xfe\n' + b"[" * 100_000 + b'\n{"account":"msmtp:a","event":"pin"}\n')
    assert log.events() == [{"account": "msmtp:a", "event": "pin"}]


def test_names_with_undecodable_bytes_round_trip(log: AuditLog) -> None:
    log.record("pin", "msmtp:caf\udce9", T0, detail="\udcff")  # surrogateescape, as the config readers decode
    assert log.events("msmtp:caf\udce9")[0]["detail"] == "\udcff"


def test_log_is_0600_and_its_directories_0700_even_with_umask_000(log: AuditLog, isolated_env: Path) -> None:
    old = os.umask(0)
    try:
        log.record("pin", "msmtp:a", T0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    for directory in (isolated_env / ".local", isolated_env / ".local" / "state", log.path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


@pytest.mark.parametrize("blocker", ["file-for-directory", "directory-for-log"])
def test_unwritable_log_is_an_audit_error(tmp_path: Path, blocker: str) -> None:
    if blocker == "file-for-directory":
        (tmp_path / "state").write_text("not a directory")  # root or not, nothing can be created under it
        log = AuditLog(tmp_path / "state" / "mailpin" / "audit.log")
    else:
        log = AuditLog(tmp_path / "audit.log")
        log.path.mkdir()
    with pytest.raises(AuditError) as caught:
        log.record("pin", "msmtp:a", T0)
    assert str(caught.value).startswith(f"{log.path}: cannot write the audit log: ")
    assert caught.value.exit_status == ExitStatus.CONFIG


def test_misuse_is_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="naive"):
        log.record("pin", "msmtp:a", datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="time"):
        log.record("pin", "msmtp:a", T0, time="later")
    assert not log.path.exists()


_WRITER = """
import os, sys, time
from datetime import datetime, timezone
from pathlib import Path
from mailpin.state.audit import AuditLog

path, go, index = sys.argv[1:4]
log = AuditLog(Path(path))
Path(f"{go}.{index}").touch()
while not os.path.exists(go):  # all start together, so the appends really contend
    time.sleep(0.005)
for n in range(50):
    log.record("verified", f"msmtp:w{index}", datetime.now(timezone.utc), n=n, pad=index * 5000)
"""


def test_twenty_processes_fifty_records_each_never_interleave(tmp_path: Path) -> None:
    log, go = AuditLog(tmp_path / "state" / "audit.log"), tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, "-W", "error", "-c", _WRITER, str(log.path), str(go), str(i)])
        for i in range(20)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < 20 and time.monotonic() < deadline:  # all started: contend
        time.sleep(0.01)
    go.touch()
    assert [worker.wait(60) for worker in workers] == [0] * 20
    lines = log.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1001
    records = [json.loads(line) for line in lines[:-1]]  # every line whole JSON: none torn, none interleaved
    for index in range(20):
        mine = [record for record in records if record["account"] == f"msmtp:w{index}"]
        assert [record["n"] for record in mine] == list(range(50))
        assert all(record["pad"] == str(index) * 5000 for record in mine)
    assert len(log.events()) == 1000
