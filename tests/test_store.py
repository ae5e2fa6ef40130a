"""pins.conf: the exact text written, round trips, permissions, symlinks, every way a file can be
wrong (always ConfigError, exit 78), atomic writes that fail cleanly, and the lock under 20 processes."""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import TLS_VERSIONS, Level, Mode, Profile, Protocol
from mailpin.state.store import PINS_VERSION, PinStore

# Data only: the pin store writes and reads the times it is given and compares them with no clock.
T0 = datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc)


def make_profile(account: str = "msmtp:work", **changes: object) -> Profile:
    profile = Profile(
        account=account,
        protocol=Protocol.SMTP,
        host="mail.example.org",
        port=465,
        mode=Mode.IMPLICIT,
        tls_version="TLSv1.3",
        level=Level.CA,
        cert_sha256=("0f" * 32,),
        spki_sha256=("bGVhZi1rZXk=",),
        ca_spki_sha256=("aW50ZXJtZWRpYXRl", "cm9vdA=="),
        subject="CN=mail.example.org,O=Example, Inc.",
        issuer="CN=Example CA R1,O=Example, Inc.,C=US",
        not_before=T0 - timedelta(days=30),
        not_after=T0 + timedelta(days=60),
        pinned_at=T0,
        trust="system (/etc/ssl/certs/ca-certificates.crt)",
    )
    return replace(profile, **changes)  # type: ignore[arg-type]


def store_at(directory: Path) -> PinStore:
    return PinStore(directory / "config" / "pins.conf", directory / "state" / "pins.lock")


def save(store: PinStore, *profiles: Profile) -> None:
    with store.update() as current:
        current.clear()
        current.update({profile.account: profile for profile in profiles})


@pytest.fixture
def store() -> PinStore:
    return PinStore.for_env(Env.from_os())


def test_for_env_puts_the_pins_in_config_and_the_lock_in_state(isolated_env: Path) -> None:
    store = PinStore.for_env(Env.from_os())
    assert store.path == isolated_env / ".config" / "mailpin" / "pins.conf"
    assert store.lock_path == isolated_env / ".local" / "state" / "mailpin" / "pins.lock"


def test_missing_file_is_no_profiles_and_creates_nothing(store: PinStore, isolated_env: Path) -> None:
    assert store.load() == {}
    assert list(isolated_env.iterdir()) == []


GOLDEN = """\
# mailpin pin store: the TLS profile pinned for each mail account.
# mailpin writes this file: change it with `mailpin accept ACCOUNT` / `mailpin forget ACCOUNT`.
# Keep it with your dotfiles like ~/.ssh/known_hosts. The last line marks a complete file.
version = 1

[mbsync:home]
protocol = imap
host = imap.example.net
port = 143
mode = starttls
servername = mx.example.net
certcheck = True
tls_version = TLSv1.2
level = key
cert_sha256 = ,
spki_sha256 = a2V5LTE=, a2V5LTI=
ca_spki_sha256 = ,
accepted = untrusted-chain,
subject = "CN=O'Brien %22Mail%22,O=Example, Inc."
issuer = 'CN=Self "signed"'
not_before = 2026-10-30T17:05:00+00:00
not_after = 2027-01-28T17:05:00+00:00
pinned_at = 2026-11-29T17:05:00.250000+00:00
trust = "trust file ~/certs/home ca.pem (100%25 mine)"

["msmtp:Work Mail #2 [old]"]
protocol = smtp
host = mail.example.org
port = 465
mode = implicit
certcheck = True
tls_version = TLSv1.3
level = ca
cert_sha256 = 0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f,
spki_sha256 = bGVhZi1rZXk=,
ca_spki_sha256 = aW50ZXJtZWRpYXRl, cm9vdA==
accepted = ,
subject = "CN=mail.example.org,O=Example, Inc."
issuer = "CN=Example CA R1,O=Example, Inc.,C=US"
not_before = 2026-10-30T17:05:00+00:00
not_after = 2027-01-28T17:05:00+00:00
pinned_at = 2026-11-29T17:05:00+00:00
trust = "system (/etc/ssl/certs/ca-certificates.crt)"

# end of mailpin pins
"""

HOME = make_profile(
    "mbsync:home",
    protocol=Protocol.IMAP,
    host="imap.example.net",
    port=143,
    mode=Mode.STARTTLS,
    servername="mx.example.net",
    tls_version="TLSv1.2",
    level=Level.KEY,
    cert_sha256=(),
    spki_sha256=("a2V5LTE=", "a2V5LTI="),
    ca_spki_sha256=(),
    accepted=("untrusted-chain",),
    subject='CN=O\'Brien "Mail",O=Example, Inc.',
    issuer='CN=Self "signed"',
    pinned_at=T0 + timedelta(milliseconds=250),
    trust="trust file ~/certs/home ca.pem (100% mine)",
)
WORK = make_profile("msmtp:Work Mail #2 [old]")


def test_the_file_is_exactly_this_text(store: PinStore) -> None:
    save(store, WORK, HOME)
    assert store.path.read_text() == GOLDEN
    assert GOLDEN.startswith("#") and f"\nversion = {PINS_VERSION}\n" in GOLDEN


def test_every_profile_field_is_a_setting(store: PinStore) -> None:
    # A field added to Profile but not to the store would be dropped on the next write.
    save(store, HOME)
    written = {line.split(" = ")[0] for line in store.path.read_text().splitlines() if " = " in line}
    assert written == {field.name for field in fields(Profile)} - {"account"} | {"version"}


def test_round_trip_and_types(store: PinStore) -> None:
    save(store, WORK, HOME)
    loaded = store.load()
    assert loaded == {WORK.account: WORK, HOME.account: HOME}
    home = loaded[HOME.account]
    assert home.servername == "mx.example.net" and loaded[WORK.account].servername is None
    assert isinstance(home.port, int) and home.protocol is Protocol.IMAP and home.level is Level.KEY
    assert home.cert_sha256 == () and home.accepted == ("untrusted-chain",) and len(home.spki_sha256) == 2
    assert home.pinned_at.tzinfo is not None and home.pinned_at.utcoffset() == timedelta(0)


def test_hand_saved_with_byte_order_mark_and_crlf_still_loads(store: PinStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"\xef\xbb\xbf" + GOLDEN.replace("\n", "\r\n").encode())
    assert store.load() == {WORK.account: WORK, HOME.account: HOME}


def test_times_in_other_zones_are_written_as_utc(store: PinStore) -> None:
    paris = timezone(timedelta(hours=1))
    save(store, make_profile(not_after=datetime(2027, 1, 1, 1, 0, tzinfo=paris)))
    assert "not_after = 2027-01-01T00:00:00+00:00\n" in store.path.read_text()
    assert store.load()["msmtp:work"].not_after == datetime(2027, 1, 1, tzinfo=timezone.utc)


def test_unchanged_store_rewrites_to_identical_bytes(tmp_path: Path) -> None:
    first, second = store_at(tmp_path / "a"), store_at(tmp_path / "b")
    save(first, HOME, WORK)
    save(second, *reversed(list(first.load().values())))  # other insertion order, values read back
    assert second.path.read_bytes() == first.path.read_bytes()
    # Add then forget an account: back to the very same bytes.
    before = first.path.read_bytes()
    with first.update() as profiles:
        profiles["msmtp:other"] = make_profile("msmtp:other")
    with first.update() as profiles:
        del profiles["msmtp:other"]
    assert first.path.read_bytes() == before


def test_update_without_change_does_not_rewrite(store: PinStore) -> None:
    save(store, WORK)
    inode = store.path.stat().st_ino
    with store.update() as profiles:
        profiles[WORK.account] = replace(WORK)  # equal value
    assert store.path.stat().st_ino == inode


def _change_then_fail(store: PinStore, change: Callable[[dict[str, Profile]], object]) -> None:
    with store.update() as profiles:
        change(profiles)
        raise RuntimeError("caller failed")


def test_update_that_raises_writes_nothing(store: PinStore) -> None:
    with pytest.raises(RuntimeError, match="caller failed"):
        _change_then_fail(store, lambda profiles: profiles.update({"msmtp:new": make_profile("msmtp:new")}))
    assert not store.path.exists()
    save(store, WORK)
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError, match="caller failed"):
        _change_then_fail(store, dict.clear)
    assert store.path.read_bytes() == before


def test_profile_filed_under_another_name_is_refused(store: PinStore) -> None:
    with pytest.raises(ValueError, match="filed under"), store.update() as profiles:
        profiles["msmtp:a"] = make_profile("msmtp:b")
    assert not store.path.exists()


# --- names and values that configobj cannot hold as they are -----------------------------------------

_text = st.text(st.characters(codec="utf-8") | st.sampled_from("\"'%#=,[] \t\n\\\x00\u2028\ufeff"), max_size=20)
_offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.builds(timezone, _offsets)
)
_hashes = st.lists(_text, max_size=3).map(tuple)
_profiles = st.builds(
    Profile,
    account=st.builds("{}:{}".format, st.sampled_from(["msmtp", "mbsync", "offlineimap"]), _text),
    protocol=st.sampled_from(Protocol),
    host=_text.filter(bool),
    port=st.integers(1, 65535),
    mode=st.sampled_from([Mode.IMPLICIT, Mode.STARTTLS]),  # a profile is always TLS
    tls_version=st.sampled_from(TLS_VERSIONS),
    level=st.sampled_from(Level),
    cert_sha256=_hashes,
    spki_sha256=_hashes,
    ca_spki_sha256=_hashes,
    subject=_text,
    issuer=_text,
    not_before=_times,
    not_after=_times,
    pinned_at=_times,
    trust=_text,
    servername=st.none() | _text,
    accepted=_hashes,
    certcheck=st.booleans(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_profiles, min_size=1, max_size=4, unique_by=lambda profile: profile.account))
def test_any_profiles_round_trip_byte_for_byte(profiles: list[Profile]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        first, second = store_at(Path(directory) / "a"), store_at(Path(directory) / "b")
        save(first, *profiles)
        loaded = first.load()
        assert loaded == {profile.account: profile for profile in profiles}
        save(second, *loaded.values())
        assert second.path.read_bytes() == first.path.read_bytes()


def test_names_from_undecodable_config_bytes_round_trip(store: PinStore) -> None:
    odd = make_profile("msmtp:caf\udce9", subject="CN=\udcff")  # surrogateescape, as the config readers decode
    save(store, odd)
    assert store.load() == {odd.account: odd}


# --- permissions, symlinks, read-only --------------------------------------------------------------


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("no_umask")
def test_file_is_0600_and_new_directories_0700_even_with_umask_000(store: PinStore, isolated_env: Path) -> None:
    save(store, WORK)
    assert _mode(store.path) == 0o600
    for directory in (isolated_env / ".config", store.path.parent, isolated_env / ".local", store.lock_path.parent):
        assert _mode(directory) == 0o700, directory
    assert _mode(store.lock_path) == 0o600


def test_readable_file_loads_and_the_next_write_makes_it_0600(store: PinStore) -> None:
    save(store, WORK)
    store.path.chmod(0o644)
    assert store.load() == {WORK.account: WORK}
    save(store, WORK, HOME)
    assert _mode(store.path) == 0o600


def test_symlinked_store_stays_a_link_and_its_target_is_updated(store: PinStore, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "mailpin"
    dotfiles.mkdir(parents=True)
    save(store_at(tmp_path / "seed"), WORK)
    (dotfiles / "pins.conf").write_bytes((tmp_path / "seed" / "config" / "pins.conf").read_bytes())
    store.path.parent.mkdir(parents=True)
    store.path.symlink_to(dotfiles / "pins.conf")  # GNU stow's doing
    assert store.load() == {WORK.account: WORK}
    save(store, WORK, HOME)
    assert store.path.is_symlink() and os.readlink(store.path) == str(dotfiles / "pins.conf")
    assert PinStore(dotfiles / "pins.conf", store.lock_path).load() == {WORK.account: WORK, HOME.account: HOME}
    assert sorted(p.name for p in dotfiles.iterdir()) == ["pins.conf"]  # no temp file left there
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["pins.conf"]


def test_read_only_target_is_a_config_error(store: PinStore, tmp_path: Path) -> None:
    nix = tmp_path / "nix" / "store"
    nix.mkdir(parents=True)
    seed = store_at(tmp_path / "seed")
    save(seed, WORK)
    (nix / "pins.conf").write_bytes(seed.path.read_bytes())
    (nix / "pins.conf").chmod(0o444)  # home-manager's store; the no-write-bit check holds even for root
    store.path.parent.mkdir(parents=True)
    store.path.symlink_to(nix / "pins.conf")
    with pytest.raises(ConfigError, match="read-only") as caught:
        save(store, WORK, HOME)
    assert str(store.path) in str(caught.value) and caught.value.exit_status == ExitStatus.CONFIG
    assert (nix / "pins.conf").read_bytes() == seed.path.read_bytes()


def test_read_only_directory_is_a_config_error(store: PinStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only_filesystem(path: str | Path, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if flags & os.O_CREAT and str(path).endswith(".tmp"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", read_only_filesystem)
    with pytest.raises(ConfigError, match="read-only") as caught:
        save(store, WORK)
    assert str(store.path) in str(caught.value)


def test_dangling_symlink_is_an_error_not_an_empty_store(store: PinStore, tmp_path: Path) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.symlink_to(tmp_path / "unmounted" / "pins.conf")
    with pytest.raises(ConfigError, match="does not exist") as caught:
        store.load()
    assert str(store.path) in str(caught.value)


# --- failed writes: no temp file, the old file intact ------------------------------------------------


@pytest.mark.parametrize("call", ["fsync", "replace", "write"])
def test_failed_write_leaves_no_temp_file_and_the_old_store(
    store: PinStore, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    save(store, WORK)
    before = store.path.read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, call, disk_full)
    with pytest.raises(ConfigError) as caught:
        save(store, WORK, HOME)
    monkeypatch.undo()
    assert str(store.path) in str(caught.value) and "No space left on device" in str(caught.value)
    assert caught.value.exit_status == ExitStatus.CONFIG
    assert os.listdir(store.path.parent) == ["pins.conf"]
    assert store.path.read_bytes() == before


# --- every way the file can be wrong: ConfigError, exit 78, the file named -------------------------------


CORRUPT: list[tuple[str, Callable[[str], str], str, int | None]] = [
    ("empty", lambda text: "", "empty", None),
    ("unparsable", lambda text: text.replace("[mbsync:home]", "[mbsync:home"), "Invalid line", 6),
    ("unclosed-quote", lambda text: text.replace('mine)"', "mine)"), "Parse error", 24),
    ("no-version", lambda text: text.replace("version = 1\n", ""), "no `version`", None),
    ("version-word", lambda text: text.replace("version = 1", "version = one"), "not a version number", None),
    ("version-zero", lambda text: text.replace("version = 1", "version = 0"), "not a version number", None),
    ("version-list", lambda text: text.replace("version = 1", "version = 1, 2"), "not a version number", None),
    ("newer", lambda text: text.replace("version = 1", "version = 2"), "newer mailpin", None),
    ("no-end", lambda text: text.replace("# end of mailpin pins\n", ""), "cut short", None),
    ("missing-field", lambda text: text.replace("port = 143\n", ""), "[mbsync:home] no `port`", 6),
    ("protocol", lambda text: text.replace("protocol = imap", "protocol = nntp"), "protocol", 6),
    ("mode", lambda text: text.replace("mode = implicit", "mode = tls"), "mode", 26),
    ("level", lambda text: text.replace("level = key", "level = pin"), "level", 6),
    ("port-zero", lambda text: text.replace("port = 465", "port = 0"), "port", 26),
    ("port-big", lambda text: text.replace("port = 465", "port = 65536"), "port", 26),
    ("port-word", lambda text: text.replace("port = 465", "port = smtps"), "port", 26),
    ("time-word", lambda text: text.replace("not_after = 2027-01-28T17:05:00", "not_after = soon"), "not_after", 6),
    ("time-naive", lambda text: text.replace("T17:05:00+00:00\nnot_after", "T17:05:00\nnot_after"), "not_before", 6),
    ("unknown-key", lambda text: text.replace("port = 143", "port = 143\nprot = 143"), "unknown setting `prot`", 6),
    ("typo", lambda text: text.replace("servername =", "server_name ="), "unknown setting `server_name`", 6),
    ("top-level-key", lambda text: text.replace("version = 1", "version = 1\ncolor = on"), "`color`", None),
    ("subsection", lambda text: text.replace("port = 143\n", "port = 143\n[[x]]\na = 1\n"), "unknown", 6),
    ("scalar-for-list", lambda text: text.replace("accepted = untrusted-chain,", "accepted = x"), "accepted", 6),
    ("list-for-string", lambda text: text.replace("host = imap.example.net", "host = a, b"), "host", 6),
    ("duplicate", lambda text: text.replace('["msmtp:Work', '[mbsync:home]\n["msmtp:Work'), "Duplicate", 26),
    ("same-after-unescape", lambda text: text.replace("[mbsync:home]", '["msmtp:Work Mail #2 [old%5D"]'), "twice", 26),
    ("bad-escape", lambda text: text.replace("100%25", "100%"), "% not followed", 6),
    ("bad-utf8-escape", lambda text: text.replace("100%25", "100%FF"), "trust", 6),
    ("not-utf8", lambda text: text.replace("Inc.", "Inc.\udcff"), "not UTF-8", 19),
    # An unknown version would rank below every floor; `none` is never pinned; names are TOOL:NAME.
    ("tls-version", lambda text: text.replace("tls_version = TLSv1.3", "tls_version = TLSv9"), "tls_version", 26),
    ("mode-none", lambda text: text.replace("mode = implicit", "mode = none"), "mode", 26),
    ("not-an-account", lambda text: text.replace("[mbsync:home]", "[mbsink:home]"), "TOOL:NAME", 6),
    ("certcheck-word", lambda text: text.replace("certcheck = True", "certcheck = maybe", 1), "certcheck", 6),
]


@pytest.mark.parametrize(("mangle", "expected", "line"), [case[1:] for case in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupt_store_is_a_config_error(
    store: PinStore, mangle: Callable[[str], str], expected: str, line: int | None
) -> None:
    text = mangle(GOLDEN)
    assert text != GOLDEN
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as caught:
        store.load()
    error = caught.value
    assert error.exit_status == ExitStatus.CONFIG == 78
    assert error.source == str(store.path) and str(error).startswith(f"{store.path}")
    assert expected in error.problem, error.problem
    assert error.line == line, str(error)
    # Never "start over": update() refuses too, runs nothing, writes nothing.
    with pytest.raises(ConfigError), store.update():
        pytest.fail("update() yielded from a corrupt store")
    assert store.path.read_bytes() == text.encode("utf-8", "surrogateescape")


def test_corrupt_message_says_how_to_fix(store: PinStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(GOLDEN.replace("port = 143\n", ""))
    with pytest.raises(ConfigError) as caught:
        store.load()
    assert "truncated or corrupt pin store" in str(caught.value)
    assert "restore it from your dotfiles or a backup" in str(caught.value) and "mailpin init" in str(caught.value)


def test_newer_version_says_upgrade_and_keeps_the_file(store: PinStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(GOLDEN.replace("version = 1", "version = 7").replace("port = 143", "port = 143\nnew = 1"))
    with pytest.raises(ConfigError, match=r"newer mailpin \(pin store version 7.*upgrade mailpin"):
        store.load()


def test_every_truncation_is_an_error_or_the_complete_store(store: PinStore) -> None:
    work = replace(WORK, issuer="CN=Exämple CA ✓")  # a cut may split a UTF-8 character
    save(store, work, HOME)
    data = store.path.read_bytes()
    for size in range(len(data)):
        store.path.write_bytes(data[:size])
        try:
            loaded = store.load()
        except ConfigError:
            continue
        # Stronger than "only complete profiles": the end line makes any cut but the last newline an error.
        assert loaded == {work.account: work, HOME.account: HOME} and size == len(data) - 1, size


@settings(max_examples=100, deadline=None)
@given(st.lists(_profiles, min_size=1, max_size=3, unique_by=lambda profile: profile.account), st.data())
def test_truncating_any_store_anywhere_is_an_error_or_complete(profiles: list[Profile], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = store_at(Path(directory))
        save(store, *profiles)
        text = store.path.read_bytes()
        for size in data.draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=20)):
            store.path.write_bytes(text[:size])
            try:
                loaded = store.load()
            except ConfigError:
                continue
            assert loaded.items() <= {profile.account: profile for profile in profiles}.items()


def _loads_or_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pins.conf"
        path.write_bytes(data)
        error = None
        try:
            PinStore(path, Path(directory) / "lock").load()
        except ConfigError as exc:  # anything else fails the test
            error = exc
        assert error is None or (error.exit_status == ExitStatus.CONFIG and error.source == str(path))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_load_or_raise_config_error(data: bytes) -> None:
    _loads_or_config_error(data)
    _loads_or_config_error(b"version = 1\n" + data + b"\n# end of mailpin pins\n")


_LINES = GOLDEN.splitlines()
_line = st.sampled_from(_LINES) | st.builds(
    "{} = {}".format, st.sampled_from([line.split(" = ")[0] for line in _LINES if " = " in line]), _text
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line | _text, max_size=40))
def test_shuffled_and_mangled_settings_load_or_raise_config_error(lines: list[str]) -> None:
    _loads_or_config_error("\n".join(["version = 1", *lines, "# end of mailpin pins", ""]).encode())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOLDEN) - 1), st.binary(min_size=1, max_size=4))
def test_damaged_store_loads_or_raises_config_error(at: int, junk: bytes) -> None:
    data = GOLDEN.encode()
    _loads_or_config_error(data[:at] + junk + data[at + len(junk) :])


# --- the lock ---------------------------------------------------------------------------------------


def test_update_waits_for_the_lock(store: PinStore) -> None:
    store.lock_path.parent.mkdir(parents=True)
    holder = os.open(store.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another mailpin in the middle of an update
    done = threading.Event()

    def writer() -> None:
        save(store, WORK)
        done.set()

    thread = threading.Thread(target=writer)
    try:
        thread.start()
        assert not done.wait(0.5)
        assert not store.path.exists()
    finally:
        os.close(holder)
        thread.join(10)
    assert done.is_set() and store.load() == {WORK.account: WORK}


_WORKER = """
import os, pickle, sys, time
from dataclasses import replace
from pathlib import Path
from mailpin.state.store import PinStore

path, lock, go, index = sys.argv[1:5]
profile = pickle.load(sys.stdin.buffer)
store = PinStore(Path(path), Path(lock))
Path(f"{go}.{index}").touch()
while not os.path.exists(go):  # all start together, so the updates really contend
    time.sleep(0.005)
for round in range(5):
    key = f"msmtp:a{index}-{round}"
    with store.update() as profiles:
        profiles[key] = replace(profile, account=key)
"""


def _start_together(go: Path, count: int) -> None:
    """Wait until COUNT workers are ready (each touched GO.INDEX), then let them all go."""
    deadline = time.monotonic() + 60
    while len(list(go.parent.glob(f"{go.name}.*"))) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()


def test_twenty_processes_updating_at_once_lose_nothing(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    save(store, WORK)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", _WORKER, str(store.path), str(store.lock_path), str(go), str(i)],
            stdin=subprocess.PIPE,
        )
        for i in range(20)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(pickle.dumps(HOME))
        worker.stdin.close()
    _start_together(go, 20)
    assert [worker.wait(60) for worker in workers] == [0] * 20
    loaded = store.load()
    expected = {f"msmtp:a{i}-{r}" for i in range(20) for r in range(5)} | {WORK.account}
    assert set(loaded) == expected
    assert all(replace(profile, account=HOME.account) == HOME for key, profile in loaded.items() if key != WORK.account)
    assert sorted(os.listdir(store.path.parent)) == ["pins.conf"]
