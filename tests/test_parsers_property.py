"""Parsers without a property test of their own (STYLE §9): any input parses, to the right type, or
raises the parser's own error — never another exception, never a hang. Plus the proofs behind the fixes
of the quadratic regexes (bench/results-fuzz.md): offlineimap's option regex matches exactly as
configparser's does; the lines configobj_lines lets through are read by configobj at once; and the pin
store's writer never writes a line its reader refuses."""

from __future__ import annotations

import base64
import configparser
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from configobj import ConfigObj  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpin.configs import mbsync_argv, msmtp_argv
from mailpin.configs.offlineimap_parsed import LinearConfigParser
from mailpin.errors import ConfigError
from mailpin.model import TLS_VERSIONS, Account, Level, Mode, Profile, Protocol, Tool
from mailpin.notify import desktop, notmuch
from mailpin.notify.ratelimit import RateLimit
from mailpin.state import queue as held_queue
from mailpin.state import store
from mailpin.state.audit import AuditLog
from mailpin.state.configobj_lines import _KEYWORD, _SECTION, LineError, configobj_lines
from mailpin.trust import certs, policy

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Data only: the rate limit, queue and pin records are given this time, never the wall clock.
NOW = datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc)

# --- command lines -------------------------------------------------------------------------------------

_MSMTP_OPTIONS = [f"--{name}" for name in msmtp_argv._LONG] + [f"-{c}" for c in msmtp_argv._SHORT]
_MBSYNC_OPTIONS = [f"--{name}" for name in mbsync_argv._LONG_FLAGS] + [f"-{c}" for c in "alcCRXFLHnd0fNoqVyeDTvhugs"]
_ARG = st.text(st.characters(blacklist_characters="\x00"), max_size=12)  # execve passes no NUL


def _argv(options: list[str]) -> st.SearchStrategy[list[str]]:
    option = st.sampled_from([*options, "--", "-"])
    glued = st.builds("{}{}{}".format, option, st.sampled_from(["", "=", "x", "=a,b"]), _ARG)
    return st.lists(st.one_of(option, glued, _ARG), max_size=10)


@FAST
@given(_argv(_MSMTP_OPTIONS))
def test_msmtp_argv_parses_or_raises_config_error(argv: list[str]) -> None:
    try:
        invocation = msmtp_argv.parse_argv(argv)
    except ConfigError:
        return
    assert isinstance(invocation, msmtp_argv.Invocation)
    assert invocation.account is None or invocation.account in "\n".join(argv)


@FAST
@given(_argv(_MBSYNC_OPTIONS))
def test_mbsync_argv_parses_or_raises_config_error(argv: list[str]) -> None:
    try:
        invocation = mbsync_argv.parse_argv(argv)
    except ConfigError:
        return
    assert isinstance(invocation, mbsync_argv.Invocation)


@FAST
@given(
    st.binary(max_size=400)
    | st.lists(st.sampled_from([b"From:", b"from: a@b", b"\r\n", b"\n", b" ", b"\t", b"x"])).map(b"".join)
)
def test_from_header_is_the_unfolded_value_or_none(message: bytes) -> None:
    value = msmtp_argv.from_header(message)
    # "\n" in the value marks a folding only: a blank or a tab always follows it
    assert value is None or (isinstance(value, str) and not re.search(r"\n(?![ \t])", value))
    if value is not None:
        assert b"from:" in message.lower()


# --- state files: a corrupt one is "no memory", never an error -----------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_STATE_BYTES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 5000).map(lambda depth: b"[" * depth),  # deeper than json's recursion limit
    st.integers(1, 5000).map(lambda depth: b'{"a":' * depth),
)


@FAST
@given(st.lists(_STATE_BYTES, max_size=5).map(b"\n".join))
def test_audit_log_reads_any_bytes_as_records(tmp_path: Path, data: bytes) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(data)
    events = AuditLog(log).events()
    assert isinstance(events, list) and all(isinstance(event, dict) for event in events)
    assert len(events) <= data.count(b"\n") + 1


@FAST
@given(_STATE_BYTES)
def test_sent_ledger_reads_any_bytes_as_a_dict_of_times(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "sent.json").write_bytes(data)
    sent = held_queue.Queue(tmp_path)._delivered()
    assert isinstance(sent, dict) and all(isinstance(when, datetime) for when in sent.values())


def test_sent_ledger_nested_too_deep_is_no_memory(tmp_path: Path) -> None:
    """Regression (bench/fuzz_parsers.py): json's RecursionError escaped `_sent` (now `_delivered`)."""
    (tmp_path / "sent.json").write_bytes(b"[" * 100_000)
    assert held_queue.Queue(tmp_path)._delivered() == {}


@FAST
@given(_STATE_BYTES, st.text(max_size=10))
def test_rate_limit_state_of_any_bytes_means_tell(tmp_path: Path, data: bytes, account: str) -> None:
    path = tmp_path / "notified.json"
    path.write_bytes(data)
    limit = RateLimit(path)
    assert isinstance(limit.is_news(account, ["cert-changed"], "blocked", NOW, 3600.0), bool)
    limit.record(account, ["cert-changed"], "blocked", NOW)  # a corrupt file is replaced, never a crash
    assert limit.is_news(account, ["cert-changed"], "blocked", NOW + timedelta(seconds=1), 3600.0) is False


def test_rate_limit_state_nested_too_deep_means_tell(tmp_path: Path) -> None:
    """Regression (bench/fuzz_parsers.py): json's RecursionError escaped `RateLimit._read`."""
    path = tmp_path / "notified.json"
    path.write_bytes(b'{"a":' * 100_000)
    assert RateLimit(path).is_news("msmtp:work", [], "blocked", NOW, 3600.0) is True


_HELD = held_queue.Held(
    id="20261129T170500Z-0123456789ab",
    tool="msmtp",
    argv=("-t", "\udcff"),
    accounts=("msmtp:work",),
    reasons=("cert-changed",),
    detail="blocked",
    held_at=NOW,
    size=12,
    digest="0123456789ab" + "0" * 52,
    subject="hi",
    recipients=("bob@example.org",),
    state=held_queue.HELD,
    identity=("mid:" + "a" * 64, "text:" + "b" * 64),
    message_id="x@example.org",
)


@FAST
@given(st.integers(0, 400), st.binary(max_size=6), _JSON)
def test_held_metadata_decodes_or_raises_value_error(at: int, junk: bytes, value: object) -> None:
    data = held_queue._encode(_HELD)
    assert held_queue._decode(data, _HELD.id) == _HELD  # the writer's output reads back
    for damaged in (data[:at] + junk + data[at + len(junk) :], json.dumps(value).encode()):
        try:
            held = held_queue._decode(damaged, _HELD.id)
        except ValueError:
            continue
        assert isinstance(held, held_queue.Held) and held.id == _HELD.id


# --- certificates: DER from the server, PEM from trust files ---------------------------------------------


@pytest.fixture(scope="module")
def demo_der() -> bytes:
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from mailpin.demo import ca

    with tempfile.TemporaryDirectory() as directory:
        pem = ca.make(Path(directory)).good.chain_pem.read_bytes()
    return x509.load_pem_x509_certificates(pem)[0].public_bytes(Encoding.DER)


@FAST
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=4), st.binary(max_size=64))
def test_der_from_the_wire_parses_or_raises_value_error(demo_der: bytes, at: int, junk: bytes, tail: bytes) -> None:
    assert len(certs.parse_chain([demo_der])) == 1
    at %= len(demo_der)
    for damaged in (demo_der[:at] + junk + demo_der[at + len(junk) :], demo_der[:at] + tail, tail):
        try:
            chain = certs.parse_chain([damaged])
        except ValueError:
            continue
        assert len(chain) == 1


@pytest.mark.parametrize(
    "version",
    [b"\xa0\x03\x02\x01\x0a", b"\xa0\x03\x02\x01\x6a"],  # v11, v107: cryptography's InvalidVersion
)
def test_a_certificate_of_an_unknown_version_is_a_value_error(demo_der: bytes, version: bytes) -> None:
    """Regression (bench/fuzz_parsers.py): cryptography's InvalidVersion escaped parse_chain."""
    assert b"\xa0\x03\x02\x01\x02" in demo_der  # [0] EXPLICIT INTEGER 2: X.509 v3
    damaged = demo_der.replace(b"\xa0\x03\x02\x01\x02", version, 1)
    with pytest.raises(ValueError, match="not a valid X509 version"):
        certs.parse_chain([damaged])
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(damaged) + b"-----END CERTIFICATE-----\n"
    with pytest.raises(ValueError, match="not a valid X509 version"):
        certs._load_pems(pem)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_pem_parses_or_raises_value_error(data: bytes) -> None:
    for text in (data, b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n"):
        try:
            found = certs._load_pems(text)
        except ValueError:
            continue
        assert isinstance(found, list)


# --- small parsers of the notification paths and of tunnel commands ----------------------------------------


@FAST
@given(
    st.text(max_size=80)
    | st.lists(st.sampled_from(["unix:", "path=", "abstract=", ";", ",", "%", "%2f", "x"])).map("".join)
)
def test_dbus_address_gives_a_socket_or_value_error(address: str) -> None:
    try:
        socket_path = desktop._unix_path(address)
    except ValueError:
        return
    assert isinstance(socket_path, (str, bytes)) and "unix:" in address


@FAST
@given(
    st.text(max_size=60)
    | st.lists(st.sampled_from(['"', "<", ">", "@", "(", ")", "\\", ",", ":", ";", "[", "a"])).map("".join)
)
def test_alert_recipient_is_always_an_address(to: str) -> None:
    address = notmuch._recipient(to)
    assert isinstance(address.addr_spec, str) and address.addr_spec


def test_alert_recipient_the_email_parser_crashes_on() -> None:
    """Regression (bench/fuzz_parsers.py): the email package raises AttributeError on `.@[`."""
    assert notmuch._recipient(".@[").addr_spec == notmuch.SENDER


_WORDS = st.sampled_from(
    ["tunnel", "mailpin", "-m", "-I", "-P", "--config", "python3", "mbsync:work", "'", '"', "\\", " "]
)


@FAST
@given(st.lists(_WORDS | st.text(max_size=8), max_size=12).map(" ".join))
def test_is_mailpin_tunnel_answers_any_transport(command: str) -> None:
    account = Account(
        Tool.MBSYNC, "work", Protocol.IMAP, None, None, Mode.IMPLICIT, "x:1", transport=f"tunnel {command}"
    )
    assert isinstance(policy.is_mailpin_tunnel(account), bool)


def test_is_mailpin_tunnel_on_a_long_word_answers_at_once() -> None:
    """Regression (bench/fuzz_parsers.py): shlex is quadratic in a word's length (256 KB: 0.9 s)."""
    account = Account(
        Tool.MBSYNC, "work", Protocol.IMAP, None, None, Mode.IMPLICIT, "x:1", transport="tunnel tunnel " + "a" * 256_000
    )
    started = time.monotonic()
    assert policy.is_mailpin_tunnel(account) is False
    assert time.monotonic() - started < 0.5


# --- offlineimap: the linear option regex matches exactly as configparser's ------------------------------

_OPTION_LINE = st.lists(
    st.sampled_from([" ", "\t", "\xa0", "=", ":", "a", "b", "#", "%", "\r", "\x0b"]), max_size=16
).map("".join)


@settings(max_examples=500, deadline=None)
@given(_OPTION_LINE | st.text(max_size=30).filter(lambda text: "\n" not in text))
def test_offlineimap_option_regex_is_configparsers(line: str) -> None:
    ours, theirs = LinearConfigParser.OPTCRE.match(line), configparser.ConfigParser.OPTCRE.match(line)
    assert (ours and (ours.span(), ours.groupdict())) == (theirs and (theirs.span(), theirs.groupdict()))


# --- configobj_lines: what it lets through, configobj reads at once and the same way ----------------------

_PIECE = st.sampled_from(["a", "b", "=", ",", "#", '"', "'", "[", "]", " ", "  ", "\t", '"""', "x y"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECE, max_size=12).map("".join))
def test_lines_let_through_are_lines_configobj_reads(line: str) -> None:
    line = line.strip()
    try:
        kept = configobj_lines(line)
    except LineError as error:
        refused: LineError | None = error
    else:
        refused = None
    if refused is not None:
        assert refused.line == 1 and refused.problem
        return
    if not line or line.startswith("#") or "'''" in line or '"""' in line:
        return  # configobj skips comments; triple quotes go to its own regexes, which are linear
    assert kept[0] == kept[0].strip() and line.startswith(kept[0])
    shape = _SECTION if line.startswith("[") else _KEYWORD
    assert shape.fullmatch(line)
    if line.startswith("["):
        assert ConfigObj._sectionmarker.match(kept[0])
    else:
        keyword = ConfigObj._keyword.match(kept[0])
        assert keyword and ConfigObj._valueexp.match(keyword.group(3))
    if "#" not in line:
        assert kept == [line]  # nothing but a comment is ever cut


_LONG = [
    "a = " + '"x", ' * 20_000 + '"y"',
    "a = " + "x,  " * 25_000 + "y",
    "a = x" + (" " * 8 + "x") * 11_000,
    "[a" + (" " * 8 + "a") * 11_000 + "]",
    "[" * 50_000 + "a" + "]" * 50_000,
    "a" + (" " * 8 + "a") * 11_000 + " = 1",
    'a = "x" # ' + '"x", ' * 20_000 + '"y" z',
]


@pytest.mark.parametrize("line", _LONG, ids=range(len(_LONG)))
def test_long_lines_let_through_are_read_at_once(line: str) -> None:
    from mailpin.state import settings as mailpin_settings

    started = time.monotonic()
    with pytest.raises(ConfigError):
        mailpin_settings.parse(line, "long")
    assert time.monotonic() - started < 0.5


# --- the pin store's writer never writes a line its reader refuses -----------------------------------------

_HASH = st.text("0123456789abcdef", min_size=64, max_size=64)
_NAME = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=300)


def _profile(name: str, hashes: list[str], subject: str) -> Profile:
    return Profile(
        account=f"mbsync:{name}",
        protocol=Protocol.IMAP,
        host=name,
        port=993,
        mode=Mode.IMPLICIT,
        tls_version=TLS_VERSIONS[-1],
        level=Level.KEY,
        cert_sha256=tuple(hashes[:3]),
        spki_sha256=tuple(hashes),
        ca_spki_sha256=tuple(hashes[:20]),
        accepted=("untrusted-chain", "hostname-mismatch"),
        subject=subject,
        issuer=subject[::-1],
        not_before=NOW,
        not_after=NOW + timedelta(days=90),
        pinned_at=NOW,
        trust=f"trust file /home/{name}/ca.pem",
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(_NAME, min_size=1, max_size=4, unique=True),
    st.lists(_HASH, min_size=1, max_size=500),
    _NAME | st.builds("{}{}{}".format, _NAME, st.text(" \t", min_size=2, max_size=3000), _NAME),
)
def test_the_writer_never_writes_what_the_reader_refuses(names: list[str], hashes: list[str], subject: str) -> None:
    """Maximal realistic stores: 500 pinned SPKI hashes (`accept --add`), long names, subjects with runs
    of blanks (a hostile certificate's): they read back, and no line is one configobj_lines refuses."""
    profiles = {f"mbsync:{name}": _profile(name, hashes, subject) for name in names}
    text = store._render(profiles)
    assert not re.search(r"\S\s\s+\S", text.replace("\n", "\0"))  # no run of blanks inside a line
    started = time.monotonic()
    assert store._parse(text.encode(), "written") == profiles
    assert time.monotonic() - started < 1.0
