"""Fuzz run: mailpin's config readers, argv parsers, settings, pin store and server-reply parsers.

The contract (STYLE §9): any input either parses or raises the parser's own error — `ConfigError`
for configs, command lines, settings and the pin store, `ReplyError` for server replies;
`envelope_from` returns `str | None`. Anything else is a crash: another exception, a hang (more than
`--hang` seconds on one input), a memory blow-up (MemoryError under an address-space limit), or the
worker dying. Each distinct crash (exception type + raising line) is kept with a minimized reproducer.

Inputs are mutations of real seeds (tests/data/ configs, typical server replies, real messages and
command lines): byte flips, insertions of interesting tokens, truncation, splicing, repeated lines,
deep nesting and very long lines, stacked a few at a time; plus pure random bytes and token soup.
Each target runs in a forked worker for a fixed time; the parent kills a worker stuck in C code.

    .venv/bin/python bench/fuzz_parsers.py [--seconds 60] [--seed 20261129] [--only msmtp,imap]
"""

from __future__ import annotations

import argparse
import ast
import mmap
import multiprocessing as mp
import os
import pickle
import platform
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailpin.configs import mbsync, mbsync_argv, msmtp, msmtp_argv  # noqa: E402
from mailpin.configs import offlineimap as oi  # noqa: E402
from mailpin.configs.mbsync_model import MbsyncConfig  # noqa: E402
from mailpin.errors import ConfigError  # noqa: E402
from mailpin.model import Account, Mode, Protocol, Tool  # noqa: E402
from mailpin.net import replies  # noqa: E402
from mailpin.net.replies import ReplyError  # noqa: E402
from mailpin.notify import desktop, notmuch  # noqa: E402
from mailpin.notify.ratelimit import RateLimit  # noqa: E402
from mailpin.state import audit, settings  # noqa: E402
from mailpin.state import queue as held_queue  # noqa: E402
from mailpin.state import store as pin_store  # noqa: E402
from mailpin.trust import certs, policy  # noqa: E402

DATA = ROOT / "tests" / "data"
HOME = "/home/u"
MAX_LEN = 256 * 1024  # inputs are cut to this (linear work on them stays far below the hang limit)
MEMORY_LIMIT = 3 * 1024**3  # RLIMIT_AS of a worker: a blow-up becomes a MemoryError, not an OOM kill
STUCK = 10.0  # the parent kills a worker whose current input has run this long (a hang in C code)
MINIMIZE_SECONDS = 30.0  # per distinct crash
HANG_TIMING_CAP = 30.0  # a hang's unminimized input is timed up to this
SHM_SIZE = 4 * 1024 * 1024

# --- interesting tokens ------------------------------------------------------------------------------------

TOKENS = [
    *(b'"', b"'", b"\\", b'\\"', b"%(", b"%(x)s", b"%(%(", b"%%", b"%", b"%2", b"%ZZ", b"%C3%28", b"[", b"]"),
    *(b"[[", b"]]", b"[[[", b"#", b";", b"=", b" = ", b":", b",", b", ,", b"<", b">", b"(", b")", b"\\(", b"{"),
    *(b"}", b"*", b"?", b"+", b"-", b"--", b"-=", b'"""', b"'''", b"~", b"~/", b"$HOME", b"${", b"$", b"@"),
    *(b"\x00", b"\r", b"\n", b"\r\n", b"\n\r", b"\r\r\n", b"\n\n", b"\x0b", b"\x0c", b"\x1c", b"\x1e", b"\x7f"),
    *(b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xef\xbb\xbf", b"\xff", b"\xfe", b"\xc3", b"\xc0\x80"),
    *(b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3\xa9", b"\xf0\x9f\x93\xa7", b"\xe2\x80\xae", b" ", b"\t"),
    *(b"\t\t", b"   ", b"0", b"-1", b"00", b"65535", b"65536", b"99999999999999999999", b"1e400", b"nan"),
    *(b"inf", b"0x10", b"on", b"off", b"yes", b"no", b"True", b"None", b"\\n", b"\\x", b"\\\\", b"..", b"."),
]
REPEATED = [b"A", b"[", b"]", b"%(", b"(", b"<", b"\\", b'"', b"\n", b"\r", b"#", b" ", b"=", b",", b"\xff", b"a\n"]


def _words(blobs: list[bytes]) -> list[bytes]:
    """The words and punctuation runs of the seeds: a dictionary of the format's own keywords."""
    found = {w for blob in blobs for w in re.findall(rb"[A-Za-z_][A-Za-z0-9_.-]*|[^\sA-Za-z0-9]+", blob)}
    return sorted(w for w in found if len(w) <= 40)


# --- mutation ------------------------------------------------------------------------------------------------


class Mutator:
    def __init__(self, rng: random.Random, seeds: list[bytes], extra_tokens: list[bytes]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.tokens = TOKENS + extra_tokens + _words(seeds)
        self.lines = sorted({line for seed in seeds for line in seed.split(b"\n")})

    def token(self) -> bytes:
        return self.rng.choice(self.tokens)

    def big(self) -> bytes:
        """A very long line, a deep nesting or a long chain: the shapes that find recursion and blow-ups."""
        rng = self.rng
        n = rng.choice([50, 300, 1100, 5000, 20000, 100000])
        kind = rng.randrange(5)
        if kind == 0:
            return rng.choice(REPEATED) * n
        if kind == 1:  # configobj nests sections one level at a time: [a] [[b]] [[[c]]] ... (480: 230 KB)
            n = min(n, 480)
            return b"\n".join(b"[" * i + b"s%d" % i + b"]" * i for i in range(1, n + 1)) + b"\n"
        if kind == 2:  # interpolation chain (configparser) and self reference
            n = min(n, 3000)
            return b"".join(b"o%d = %%(o%d)s\n" % (i, i + 1) for i in range(n)) + b"o%d = %%(o0)s\n" % n
        if kind == 3:  # inheritance chain (msmtp `account b : a`)
            n = min(n, 5000)
            return b"account a0\n" + b"".join(b"account a%d : a%d\n" % (i, i - 1) for i in range(1, n))
        line = rng.choice(self.lines) if self.lines else b"x"
        return (line + rng.choice([b"\n", b"\r\n", b""])) * min(n, max(1, MAX_LEN // (len(line) + 2)))

    def mutate(self, data: bytes, rounds: int | None = None) -> bytes:
        rng = self.rng
        for _ in range(rounds if rounds is not None else rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8, 16])):
            size = len(data)
            at = rng.randint(0, size)
            op = rng.randrange(100)
            if op < 12 and size:  # flip one bit
                i = rng.randrange(size)
                data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
            elif op < 20 and size:  # one random byte
                i = rng.randrange(size)
                data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
            elif op < 42:  # an interesting token or a keyword of the format
                data = data[:at] + self.token() + data[at:]
            elif op < 47:
                data = data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
            elif op < 57 and size:  # delete a chunk
                end = min(size, at + rng.choice([1, 1, 2, 4, 16, 64, 1024]))
                data = data[:at] + data[end:]
            elif op < 62 and size:  # duplicate a chunk
                end = min(size, at + rng.choice([1, 4, 16, 64, 256]))
                data = data[:end] + data[at:end] + data[end:]
            elif op < 67:  # truncate
                data = data[:at] if rng.random() < 0.7 else data[at:]
            elif op < 75:  # splice with another seed
                other = rng.choice(self.seeds)
                data = data[:at] + other[rng.randint(0, len(other)) :]
            elif op < 83:  # a line of another seed, at a line start
                lines = data.split(b"\n")
                lines.insert(rng.randint(0, len(lines)), rng.choice(self.lines) if self.lines else b"")
                data = b"\n".join(lines)
            elif op < 87:  # swap or drop lines
                lines = data.split(b"\n")
                if len(lines) > 1:
                    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                    lines[i], lines[j] = lines[j], lines[i]
                    if rng.random() < 0.5:
                        del lines[i]
                data = b"\n".join(lines)
            elif op < 91:  # line ends: CRLF, CR, LF CR, NEL, U+2028
                data = data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\n\n"]))
            elif op < 95:  # replace a word by a token
                words = list(re.finditer(rb"\S+", data))
                if words:
                    word = rng.choice(words)
                    data = data[: word.start()] + self.token() + data[word.end() :]
            elif op < 97:
                data = data[:at] + self.big() + data[at:]
            else:  # a token repeated
                data = data[:at] + self.token() * rng.choice([2, 3, 10, 100, 1000]) + data[at:]
        return data[:MAX_LEN]

    def random_input(self) -> bytes:
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            return rng.randbytes(rng.choice([0, 1, 2, 8, 64, 512, 4096]))
        if kind == 1:
            alphabet = "abcAZ09 \t\n\r[]=#;:,\"'\\%()<>@.-_~$"
            return "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 8, 64, 512]))).encode()
        if kind == 2:
            return b"".join(self.token() + rng.choice([b"", b" ", b"\n"]) for _ in range(rng.randint(1, 60)))
        return self.big()

    def next(self, previous: bytes | None) -> bytes:
        roll = self.rng.random()
        if roll < 0.08:
            return self.random_input()[:MAX_LEN]
        if roll < 0.28 and previous is not None and len(previous) < 65536:
            return self.mutate(previous)  # a chain of mutations: further from the seeds
        return self.mutate(self.rng.choice(self.seeds))


class ArgvMutator:
    """Command lines: lists of str (no NUL, as execve allows), mutated element-wise and byte-wise."""

    def __init__(self, rng: random.Random, seeds: list[list[str]], options: list[str]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.options = options
        self.bytes = Mutator(rng, [a.encode() for s in seeds for a in s] + [b""], [o.encode() for o in options])

    def element(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return rng.choice(self.options)
        if roll < 0.8:
            return rng.choice(self.options) + rng.choice(["", "=", "=x", "x", "="]) + rng.choice(["", "on", "a,b"])
        return self.bytes.next(None).decode("utf-8", "surrogateescape")

    def next(self, previous: list[str] | None) -> list[str]:
        rng = self.rng
        if rng.random() < 0.05:
            argv = [self.element() for _ in range(rng.randint(0, 12))]
        else:
            base = previous if previous is not None and rng.random() < 0.25 else rng.choice(self.seeds)
            argv = list(base)
            for _ in range(rng.choice([1, 1, 2, 3, 5])):
                op = rng.randrange(8)
                at = rng.randint(0, len(argv))
                if op <= 1:
                    argv.insert(at, self.element())
                elif op == 2 and argv:
                    del argv[min(at, len(argv) - 1)]
                elif op == 3 and argv:
                    argv.insert(at, argv[min(at, len(argv) - 1)])
                elif op == 4 and argv:  # mutate one element's bytes
                    i = min(at, len(argv) - 1)
                    raw = argv[i].encode("utf-8", "surrogateescape")
                    argv[i] = self.bytes.mutate(raw, rng.choice([1, 2, 3]))[:4096].decode("utf-8", "surrogateescape")
                elif op == 5 and len(argv) > 1:  # glue two elements
                    i = min(at, len(argv) - 2)
                    argv[i : i + 2] = [argv[i] + rng.choice(["", "=", ","]) + argv[i + 1]]
                elif op == 6:
                    other = rng.choice(self.seeds)
                    argv = argv[:at] + other[rng.randint(0, len(other)) :]
                else:
                    rng.shuffle(argv)
        return [a.replace("\x00", "") for a in argv][:200]


# --- the targets ---------------------------------------------------------------------------------------------


class ContractViolation(Exception):
    """A parser returned something its signature does not allow."""


def _decode_like_loader(data: bytes, strict: bool) -> str:
    # msmtp and mbsync loaders decode with surrogateescape; offlineimap and settings decode strictly
    # and turn a decode error into a ConfigError, so for them an undecodable input is decoded with
    # U+FFFD (a text the loader could hand to parse) to keep exercising the parser.
    if not strict:
        return data.decode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _expect(value: Any, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, kind):
        raise ContractViolation(f"returned {type(value).__name__}, expected {kind}")


def run_msmtp(data: bytes) -> None:
    _expect(msmtp.parse(_decode_like_loader(data, False), "fuzz.msmtprc", HOME), msmtp.MsmtpConfig)


def run_mbsync(data: bytes) -> None:
    _expect(mbsync.parse(_decode_like_loader(data, False), "fuzz.mbsyncrc", HOME), MbsyncConfig)


def run_offlineimap(data: bytes) -> None:
    text = _decode_like_loader(data, True)
    config = oi.parse(text, "fuzz.offlineimaprc", HOME, environ={"HOME": HOME, "USER": "u"}, cwd=HOME)
    _expect(config, oi.OfflineimapConfig)
    for _, problem in config.problems:
        _expect(problem, ConfigError)


def run_settings(data: bytes) -> None:
    _expect(settings.parse(_decode_like_loader(data, True), "fuzz-config"), settings.Settings)


def run_store(data: bytes) -> None:
    _expect(pin_store._parse(data, "fuzz-pins"), dict)


def run_msmtp_argv(argv: list[str]) -> None:
    _expect(msmtp_argv.parse_argv(argv), msmtp_argv.Invocation)


def run_mbsync_argv(argv: list[str]) -> None:
    _expect(mbsync_argv.parse_argv(argv), mbsync_argv.Invocation)


_OI_CONFIG: list[Any] = []


def run_offlineimap_argv(argv: list[str]) -> None:
    # offlineimap's option parser (_options) is private; `select` is its public consumer: it parses
    # argv with optparse, replays `-k` edits on the config and resolves `-a`, raising ConfigError.
    if not _OI_CONFIG:
        text = (DATA / "offlineimap" / "several-accounts.conf").read_text()
        _OI_CONFIG.append(oi.parse(text, "several-accounts.conf", HOME, environ={"HOME": HOME}, cwd=HOME))
    _expect(oi.select(_OI_CONFIG[0], argv), list)


def _lines(data: bytes) -> list[bytes]:
    # net.channel hands the parsers one line at a time without its line end.
    return [line.removesuffix(b"\r") for line in data.split(b"\n")]


def run_smtp(data: bytes) -> None:
    parsed = []
    for line in _lines(data):
        try:
            parsed.append(replies.parse_smtp_line(line))
        except ReplyError:
            continue
    for line in parsed:
        _expect(line, replies.SmtpLine)
    try:
        reply = replies.join_smtp_reply(parsed)
    except ReplyError:
        return
    _expect(reply.keywords, frozenset)
    _expect(reply.summary(), str)


def run_imap(data: bytes) -> None:
    for line in _lines(data):
        try:
            parsed = replies.parse_imap_line(line)
        except ReplyError:
            continue
        _expect(parsed.capabilities, (frozenset, type(None)))
        _expect(parsed.summary(), str)


def run_pop3(data: bytes) -> None:
    lines = _lines(data)
    try:
        _expect(replies.parse_pop3_status(lines[0]).summary(), str)
    except ReplyError:
        pass
    for line in lines[1:]:
        try:
            item = replies.pop3_capa_item(line)
        except ReplyError:
            continue
        _expect(item, (str, type(None)))
        if item is None:
            break


def run_envelope_from(data: bytes) -> None:
    address = msmtp_argv.envelope_from(data)
    _expect(address, (str, type(None)))


# State files and the other small parsers: the audit log (JSON lines), a held message's metadata and
# the sent ledger of the queue, the notification rate-limit state, certificates (DER from the wire,
# PEM from trust files), the D-Bus address, the notmuch alert's recipient, `mailpin tunnel` commands.
# The state files are read from a scratch directory of the worker, as their readers do.

_SCRATCH: list[Path] = []


def _scratch(name: str, data: bytes) -> Path:
    if not _SCRATCH:
        import tempfile

        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="mailpin-fuzz-")))
    path = _SCRATCH[0] / name
    path.write_bytes(data)
    return path


def run_audit(data: bytes) -> None:
    events = audit.AuditLog(_scratch("audit.log", data)).events()
    _expect(events, list)
    for event in events:
        _expect(event, dict)


def run_queue_meta(data: bytes) -> None:
    _expect(held_queue._decode(data, "20261129T170500Z-0123456789ab"), held_queue.Held)


def run_queue_sent(data: bytes) -> None:
    queue = held_queue.Queue(_scratch("sent.json", data).parent)
    sent = queue._delivered()
    _expect(sent, dict)
    for when in sent.values():
        _expect(when, datetime)


def run_ratelimit(data: bytes) -> None:
    limit = RateLimit(_scratch("notified.json", data))
    now = datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc)
    for account in ("msmtp:work", "mbsync:home", ""):
        _expect(limit.is_news(account, ["cert-changed"], "blocked", now, 3600.0), bool)


def run_der(data: bytes) -> None:
    _expect(certs.parse_chain([data]), list)


def run_pem(data: bytes) -> None:
    _expect(certs._load_pems(data), list)


def run_dbus_address(data: bytes) -> None:
    _expect(desktop._unix_path(data.decode("utf-8", "surrogateescape")), (str, bytes))


def run_notmuch_recipient(data: bytes) -> None:
    _expect(notmuch._recipient(data.decode("utf-8", "surrogateescape")).addr_spec, str)


def run_mailpin_tunnel(data: bytes) -> None:
    transport = data.decode("utf-8", "surrogateescape")
    account = Account(Tool.MBSYNC, "work", Protocol.IMAP, None, None, Mode.IMPLICIT, "x:1", transport=transport)
    _expect(policy.is_mailpin_tunnel(account), bool)


def _files(kind: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((DATA / kind).iterdir()) if path.is_file()]


def _literal(path: Path, name: str) -> str:
    """A string constant of a test module (the pin store's golden file, a full settings file)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise LookupError(f"{name} not in {path}")


def _store_seeds() -> list[bytes]:
    golden = _literal(ROOT / "tests" / "test_store.py", "GOLDEN")
    return [golden.encode(), b"\xef\xbb\xbf" + golden.replace("\n", "\r\n").encode(), golden.split("\n[")[0].encode()]


def _settings_seeds() -> list[bytes]:
    full = _literal(ROOT / "tests" / "test_settings.py", "FULL")
    doc = "\n".join(line.split("#")[0][4:] for line in (settings.__doc__ or "").splitlines()[3:16])
    small = b"level = key\n[accounts]\n[[msmtp:w]]\nenforce=no\n"
    return [settings.SAMPLE.encode(), full.encode(), doc.encode(), small]


SMTP = [
    b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n",
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n"
    b"250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n",
    b"220 2.0.0 Ready to start TLS\r\n",
    b"454 4.7.0 TLS not available due to local problem\r\n",
    b"220-mx.example.org ESMTP\r\n220-multi-line greeting\r\n220 ready\r\n",
    b"421 4.3.2 Service not available, closing transmission channel\r\n",
    b"502 5.5.1 Unrecognized command\r\n", b"250 OK\r\n", b"220\r\n",
    b"535 5.7.8 Authentication credentials invalid\r\n",
    b"250-mx\r\n250-starttls\r\n250 auth=login\r\n",
]  # fmt: skip
IMAP = [
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.",
    b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK Pre-login capabilities listed.",
    b"a2 OK Begin TLS negotiation now.", b"a2 BAD STARTTLS not supported", b"a2 NO [ALERT] TLS unavailable",
    b"* PREAUTH [CAPABILITY IMAP4rev1] logged in as u", b"* BYE server shutting down",
    b"+ Ready for additional command text", b"+", b"* 23 EXISTS\r\n* 1 RECENT",
    b"* OK [ALERT] System shutdown in 10 minutes", b"A0001 OK [READ-WRITE] SELECT completed",
    b"* OK IMAP4rev1 Service Ready\r\n", b"* ok [capability imap4rev2 starttls] hi",
]  # fmt: skip
POP3 = [
    b"+OK Dovecot ready.", b"+OK <1896.697170952@dbc.mtview.ca.us>", b"-ERR [SYS/TEMP] unavailable",
    b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\n"
    b"UIDL\r\nIMPLEMENTATION Dovecot\r\n..stuffed\r\n.\r\n",
    b"+OK Begin TLS negotiation", b"-ERR Command not permitted when TLS active", b"+OK", b"-ERR",
    b"+OK\r\nstls\r\n.\r\n",
]  # fmt: skip
MESSAGES = [
    b"From: Joe Q. Public <john.q.public@example.com>\r\nTo: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
    b'From: "Doe, John" <john.doe@example.com>, other@example.org\n\nbody\n',
    b"From: (comment (nested) \\) here) joe@example.com (Joe)\n\n",
    b"From: group: a@example.com, b@example.com;\nTo: c@example.net\n\n",
    b"Received: from x\nFrom: Joe\n <joe@ex\n ample.com>\nSubject: folded\n\n",
    b'from: <"quoted\\"local"@example.com>\n\n',
    b"Subject: no from\n\nFrom: body@example.com\n",
    b"From: =?UTF-8?B?w6l0w6k=?= <ete@example.com>\nFrom: second@example.com\n\n",
    b"From: user+tag@example.com\n\n",
    b"From:\n\tjoe@example.com\r\n\r\n",
    b"From: Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example\n\n",
]
AUDIT = [
    b'{"time":"2026-11-29T17:05:00+00:00","event":"blocked","account":"msmtp:work","reasons":["cert-changed"]}\n'
    b'{"time":"2026-11-29T17:06:00+00:00","event":"verified","account":"mbsync:home"}\n{"time":"2026-11-',
    b'{"time":"2026-11-29T17:05:00+00:00","event":"pinned","account":"offlineimap:w","level":"ca","n":[1,2.5,null]}\n',
]
SENT = [
    b'{\n "mid:' + b"0" * 64 + b'": "2026-11-29T17:05:00+00:00",\n "ffff": "2026-11-28T01:02:03.456789+01:00"\n}',
    b"{}",
]
NOTIFIED = [
    b'{"msmtp:work": {"at": "2026-11-29T16:30:00+00:00", "kind": "blocked", "reasons": ["cert-changed"]},'
    b' "mbsync:home": {"at": "2026-11-29T17:00:00", "kind": "unverified", "reasons": []}}',
]
DBUS = [
    b"unix:path=/run/user/1000/bus", b"unix:abstract=/tmp/dbus-XXXX,guid=0123456789abcdef",
    b"tcp:host=localhost,port=1234;unix:path=/run/user/1000/bu%73", b"unix:tmpdir=/tmp;unix:path=%2Frun%2Fbus",
]  # fmt: skip
RECIPIENTS = [b"alice@example.org", b"Alice <alice@example.org>", b'"a b"@example.org', b"a@[127.0.0.1]", b"\xc3\xa9@x"]
TUNNELS = [
    b"tunnel mailpin tunnel mbsync:work", b"tunnel /usr/bin/python3 -I -m mailpin tunnel --config /x mbsync:work",
    b"tunnel '/home/u/.local/bin/mailpin' tunnel 'mbsync:work'", b"tunnel ssh host nc imap 143", b"socket /run/s",
    b'tunnel "python3" -P -m mailpin tunnel mbsync:other', b"tunnel mailpin tunnel",
]  # fmt: skip


def _queue_seeds() -> list[bytes]:
    held = held_queue.Held(
        id="20261129T170500Z-0123456789ab", tool="msmtp", argv=("-t", "-a", "work", "\udcff"),
        accounts=("msmtp:work",), reasons=("cert-changed",), detail="msmtp:work: the key changed [key-changed]",
        held_at=datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc), size=1234, digest="0123456789ab" + "0" * 52,
        subject="hi \\x07 there", recipients=("bob@example.org",), state=held_queue.HELD,
        message_id="x@example.org", identity=("mid:" + "a" * 64, "text:" + "b" * 64),
    )  # fmt: skip
    return [held_queue._encode(held)]


def _cert_seeds(pem: bool) -> list[bytes]:
    """The demo PKI's certificates (a root, an intermediate, leaves) as DER, or as PEM files."""
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from mailpin.demo import ca

    with tempfile.TemporaryDirectory() as directory:
        pki = ca.make(Path(directory))
        files = [pki.trust_file.read_bytes(), pki.good.chain_pem.read_bytes(), pki.foreign.chain_pem.read_bytes()]
    if pem:
        return files
    return [cert.public_bytes(Encoding.DER) for data in files for cert in x509.load_pem_x509_certificates(data)]


MSMTP_ARGV = [
    ["-a", "work", "-t"], ["--read-envelope-from", "-t", "-oi"], ["-oi", "-f", "me@example.org", "--", "you@x"],
    ["--host=smtp.example.org", "--port=465", "--tls=on", "--tls-starttls=off", "x@y"], ["-C", "rc", "-a", "default"],
    ["--serverinfo", "-a", "work"], ["-S"], ["--tls-trust-file=/etc/ssl/certs/ca.pem", "--tls-certcheck"],
    ["-bm", "x@y"], ["-Xlog", "-N", "failure", "-R", "hdrs"], ["--acc", "w", "--tls"], ["--rmqs=host"],
    ["--version"], ["-tif", "a@b"], ["--from", "a@b", "--protocol=lmtp", "--socket=/run/s"],
]  # fmt: skip
MBSYNC_ARGV = [
    ["-a"], ["work"], ["-c", "/tmp/rc", "inbox"], ["-V", "-a"], ["--list-stores"], ["-ls", "store"], ["-Dmn"],
    ["-CfRn", "ch:box"], ["--config=/x", "--pull", "chan"], ["-h"], ["--", "-weird"], ["-LHnd", "g"], ["-Tz"],
    ["--config", "rc", "-l", "ch:INBOX,Sent"], ["-qV", "--dry-run", "group:g"], ["--create-far", "--push-new"],
]  # fmt: skip
OFFLINEIMAP_ARGV = [
    ["-o"], ["-a", "home,work"], ["-k", "general:accounts=home"], ["-k", "Repository_remote:ssl=no", "-o"],
    ["-c", "~/.offlineimaprc", "-o", "-u", "quiet"], ["--info"], ["-V"], ["--dry-run", "-f", "INBOX"],
    ["--delete-folder", "x", "-a", "home"], ["-q", "-1", "-s"], ["--migrate-fmd5-using-nametrans"],
    ["-kRepository_work-remote:remotehost=x", "-a", "work"], ["-d", "imap", "-l", "/tmp/log"], ["--mbnames-prune"],
    ["-k", "Account_home:remoterepository=nope", "-ahome"], ["--", "-a"],
]  # fmt: skip


def _options_msmtp() -> list[str]:
    long = [f"--{name}" for name in msmtp_argv._LONG]
    return long + [f"-{c}" for c in msmtp_argv._SHORT] + ["--", "-", "--tl", "--t", "-oi", "-bm", "-bp", "-oem"]


def _options_mbsync() -> list[str]:
    long = [f"--{name}" for name in mbsync_argv._LONG_FLAGS] + ["--config", "--config=", "--", "-"]
    return long + [f"-{c}" for c in "alcCRXFLHnd0fNoqVyeDTvhugs"] + ["-ls", "-Cf", "-Dm", "-Tj", "ch:", "ch:a,b"]


def _options_offlineimap() -> list[str]:
    flags = "-V --dry-run --info -1 -s -o -q --migrate-fmd5-using-nametrans --mbnames-prune -P -a -c -d -l -f -u -k"
    extra = "--delete-folder --version --help -h --dry --in --mbnames --migrate --profile -- - general:accounts=x"
    return [*flags.split(), *extra.split(), "Account_home:remoterepository=x", "Repository_r:ssl=no", "x:y=%(z)s"]


@dataclass(frozen=True)
class Target:
    name: str
    call: str  # what is fuzzed, for the table
    run: Callable[[Any], None]
    expected: type[BaseException] | tuple[type[BaseException], ...]
    seeds: Callable[[], list[Any]]
    argv_options: Callable[[], list[str]] | None = None  # argv targets only


TARGETS = [
    Target("msmtp", "configs.msmtp.parse", run_msmtp, ConfigError, lambda: _files("msmtp")),
    Target("mbsync", "configs.mbsync.parse", run_mbsync, ConfigError, lambda: _files("mbsync")),
    Target("offlineimap", "configs.offlineimap.parse", run_offlineimap, ConfigError, lambda: _files("offlineimap")),
    Target("settings", "settings.parse", run_settings, ConfigError, _settings_seeds),
    Target("store", "store._parse", run_store, ConfigError, _store_seeds),
    Target("msmtp-argv", "msmtp_argv.parse_argv", run_msmtp_argv, ConfigError, lambda: MSMTP_ARGV, _options_msmtp),
    Target("mbsync-argv", "mbsync_argv.parse_argv", run_mbsync_argv, ConfigError, lambda: MBSYNC_ARGV, _options_mbsync),
    Target(
        "offlineimap-argv",
        "offlineimap.select (optparse argv, -k replay, -a)",
        run_offlineimap_argv,
        ConfigError,
        lambda: OFFLINEIMAP_ARGV,
        _options_offlineimap,
    ),
    Target("smtp", "replies.parse_smtp_line + join_smtp_reply", run_smtp, ReplyError, lambda: SMTP),
    Target("imap", "replies.parse_imap_line (+ capabilities)", run_imap, ReplyError, lambda: IMAP),
    Target("pop3", "replies.parse_pop3_status + pop3_capa_item", run_pop3, ReplyError, lambda: POP3),
    Target("envelope-from", "msmtp_argv.envelope_from", run_envelope_from, (), lambda: MESSAGES),
    Target("audit", "audit.AuditLog.events (JSON lines)", run_audit, (), lambda: AUDIT),
    Target("queue-meta", "queue._decode (a held message's metadata)", run_queue_meta, ValueError, _queue_seeds),
    Target("queue-sent", "queue.Queue._delivered (sent.json)", run_queue_sent, (), lambda: SENT),
    Target("ratelimit", "ratelimit.RateLimit.is_news (notified.json)", run_ratelimit, (), lambda: NOTIFIED),
    Target("der", "certs.parse_chain (DER from the wire)", run_der, ValueError, lambda: _cert_seeds(False)),
    Target("pem", "certs._load_pems (trust files)", run_pem, ValueError, lambda: _cert_seeds(True)),
    Target("dbus-address", "desktop._unix_path", run_dbus_address, ValueError, lambda: DBUS),
    Target("notmuch-to", "notmuch._recipient", run_notmuch_recipient, (), lambda: RECIPIENTS),
    Target("mailpin-tunnel", "policy.is_mailpin_tunnel", run_mailpin_tunnel, (), lambda: TUNNELS),
]


# --- the worker ----------------------------------------------------------------------------------------------


class Hang(BaseException):
    """One input ran longer than the per-input limit (raised by SIGALRM)."""


@dataclass
class Crash:
    signature: tuple[str, str]  # (exception type, raising file:line)
    message: str
    first_seen: int  # input number
    hits: int
    reproducer: Any
    original_size: int
    traceback: str = ""
    mailpin_frame: str = ""
    minimize_note: str = ""
    timing: str = ""


@dataclass
class Report:
    inputs: int = 0
    fuzz_seconds: float = 0.0
    max_seconds: float = 0.0
    max_size: int = 0
    peak_rss_mb: float = 0.0
    crashes: dict[tuple[str, str], Crash] = field(default_factory=dict)
    restarts: int = 0


def _where(frame: traceback.FrameSummary) -> str:
    name = frame.filename
    for base in (str(ROOT) + "/", str(Path(os.__file__).parent) + "/"):
        name = name.removeprefix(base)
    return f"{name}:{frame.lineno}"


_timed_last = [0.0]  # how long the last _outcome ran


def _outcome(target: Target, value: Any, limit: float) -> tuple[tuple[str, str], str, str, str] | None:
    """None if VALUE keeps the contract, else (signature, message, traceback tail, innermost mailpin frame)."""
    signal.setitimer(signal.ITIMER_REAL, limit)
    started = time.perf_counter()
    try:
        target.run(value)
        _timed_last[0] = time.perf_counter() - started
    except target.expected:
        _timed_last[0] = time.perf_counter() - started
        return None
    except BaseException as exc:  # anything else is the finding; a Hang is where SIGALRM found the parser
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/mailpin/" in f.filename and "/bench/" not in f.filename]
        mine = _where(ours[-1]) if ours else ""
        _timed_last[0] = time.perf_counter() - started
        tail = "".join(traceback.format_exception(exc)[-8:]).rstrip()
        if isinstance(exc, Hang):
            elapsed = time.perf_counter() - started
            return ("Hang", mine or target.name), f"more than {limit:g} s on one input ({elapsed:.1f} s)", tail, mine
        return (type(exc).__name__, _where(frames[-1])), str(exc)[:300], tail, mine
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes) else sum(len(a) + 1 for a in value)


class Shared:
    """Memory shared with the parent: the number of executions, the phase, and the current input."""

    HEAD = struct.Struct("<QBI")

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, SHM_SIZE)

    def publish(self, count: int, phase: int, value: Any) -> None:
        blob = pickle.dumps(value, protocol=5)
        if len(blob) > SHM_SIZE - self.HEAD.size:
            blob = b""
        self.HEAD.pack_into(self.mem, 0, count, phase, 0)  # a worker killed mid-write leaves no torn input
        self.mem[self.HEAD.size : self.HEAD.size + len(blob)] = blob
        self.HEAD.pack_into(self.mem, 0, count, phase, len(blob))

    def progress(self) -> tuple[int, int]:
        count, phase, _ = self.HEAD.unpack_from(self.mem, 0)
        return count, phase

    def read(self) -> tuple[int, int, Any]:
        count, phase, size = self.HEAD.unpack_from(self.mem, 0)
        blob = self.mem[self.HEAD.size : self.HEAD.size + size]
        return count, phase, pickle.loads(blob) if blob else None


FUZZING, MINIMIZING = 1, 2


def _minimize(target: Target, crash: Crash, limit: float, shared: Shared, counter: list[int]) -> None:
    """Shortest input found that still gives the same crash: remove chunks (halving), then elements/bytes."""
    deadline = time.monotonic() + MINIMIZE_SECONDS
    tries = 0

    def still(candidate: Any) -> bool:
        nonlocal tries
        tries += 1
        counter[0] += 1
        shared.publish(counter[0], MINIMIZING, candidate)
        found = _outcome(target, candidate, limit)
        if found is not None and crash.signature[0] == "Hang":
            return found[0][0] == "Hang"  # where the alarm lands in a slow loop varies
        return found is not None and found[0] == crash.signature

    def timed(candidate: Any) -> str:
        counter[0] += 1
        shared.publish(counter[0], MINIMIZING, candidate)
        found = _outcome(target, candidate, HANG_TIMING_CAP)
        if found is not None and found[0][0] == "Hang":
            return f"more than {HANG_TIMING_CAP:g} s (cap)"
        return f"{_timed_last[0]:.2f} s"

    def shrink(items: Any) -> Any:
        chunk = max(1, len(items) // 2)
        while chunk >= 1 and time.monotonic() < deadline:
            i, changed = 0, False
            while i < len(items) and time.monotonic() < deadline:
                candidate = items[:i] + items[i + chunk :]
                if still(candidate):
                    items, changed = candidate, True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
        return items

    value = crash.reproducer
    if crash.signature[0] == "Hang":  # how slow the input really is, up to a cap
        crash.timing = f"the {_size(value):,}-byte input before minimization: {timed(value)}"
    if isinstance(value, bytes):
        value = shrink(value)
    else:
        value = shrink(list(value))
        for i in range(len(value)):
            raw = value[i].encode("utf-8", "surrogateescape")
            smaller = shrink_element(raw, value, i, still, deadline)
            value[i] = smaller.decode("utf-8", "surrogateescape")
    crash.reproducer = value
    if crash.signature[0] == "Hang" and isinstance(value, bytes):  # how the time grows with the runs' length
        growth = []
        for factor in (0.5, 1, 2):
            bigger = scaled(value, factor)
            growth.append(f"×{factor:g} ({len(bigger):,} B) {timed(bigger)}")
            if growth[-1].endswith("(cap)"):
                break
        crash.timing += "; the reproducer with its runs scaled: " + ", ".join(growth)
    crash.minimize_note = f"{tries} tries" + (", stopped at the time limit" if time.monotonic() >= deadline else "")
    found = _outcome(target, value, limit)
    if found is not None:
        crash.message, crash.traceback, crash.mailpin_frame = found[1], found[2], found[3]


def shrink_element(raw: bytes, argv: list[str], i: int, still: Callable[[Any], bool], deadline: float) -> bytes:
    chunk = max(1, len(raw) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        j, changed = 0, False
        while j < len(raw) and time.monotonic() < deadline:
            candidate = raw[:j] + raw[j + chunk :]
            trial = [*argv[:i], candidate.decode("utf-8", "surrogateescape"), *argv[i + 1 :]]
            if still(trial):
                raw, changed = candidate, True
            else:
                j += chunk
        if not changed:
            chunk //= 2
    return raw


def worker(name: str, seconds: float, seed: int, limit: float, shared: Shared, out: Any) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    def alarm(signum: int, frame: Any) -> None:
        raise Hang

    signal.signal(signal.SIGALRM, alarm)
    target = next(t for t in TARGETS if t.name == name)
    rng = random.Random(seed ^ zlib.crc32(name.encode()))
    seeds = target.seeds()
    if target.argv_options is not None:
        gen: Any = ArgvMutator(rng, seeds, target.argv_options())
    else:
        gen = Mutator(rng, seeds, [])
    report = Report()
    counter = [0]
    previous = None
    inputs = [*seeds]  # the seeds themselves first
    started = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now - started >= seconds:
            break
        value = inputs.pop() if inputs else gen.next(previous)
        previous = value
        counter[0] += 1
        report.inputs += 1
        shared.publish(counter[0], FUZZING, value)
        t0 = time.perf_counter()
        found = _outcome(target, value, limit)
        elapsed = time.perf_counter() - t0
        if found is None:
            if elapsed > report.max_seconds:
                report.max_seconds, report.max_size = elapsed, _size(value)
            continue
        signature, message, tail, frame = found
        crash = report.crashes.get(signature)
        if crash is None:
            crash = Crash(signature, message, report.inputs, 1, value, _size(value), tail, frame)
            report.crashes[signature] = crash
            out.send(("crash", crash))  # the parent keeps it even if this worker is killed later
        else:
            crash.hits += 1
            if _size(value) < _size(crash.reproducer):
                crash.reproducer, crash.original_size = value, _size(value)
    report.fuzz_seconds = time.perf_counter() - started
    for crash in report.crashes.values():
        _minimize(target, crash, limit, shared, counter)
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send(("report", report))
    out.close()


# --- the parent ------------------------------------------------------------------------------------------------


def fuzz(target: Target, seconds: float, seed: int, limit: float) -> Report:
    """Run workers until SECONDS of fuzzing are spent; a worker that dies or sticks is a crash and restarts."""
    ctx = mp.get_context("fork")
    total = Report()
    shared = Shared()
    restart = 0
    while total.fuzz_seconds < seconds - 0.5:
        receive, send = ctx.Pipe(duplex=False)
        budget = seconds - total.fuzz_seconds
        proc = ctx.Process(target=worker, args=(target.name, budget, seed + 7919 * restart, limit, shared, send))
        began = time.monotonic()
        proc.start()
        send.close()
        last, changed = -1, time.monotonic()
        report = None
        pending: dict[tuple[str, str], Crash] = {}
        while report is None:
            if receive.poll(0.2):
                try:
                    kind, payload = receive.recv()
                except EOFError:
                    proc.join()  # the worker died without its report: handled below
                else:
                    if kind == "crash":
                        pending[payload.signature] = payload
                        continue
                    report = payload
                    proc.join()
                    break
            count, phase = shared.progress()
            if count != last:
                last, changed = count, time.monotonic()
            dead = not proc.is_alive()
            patience = STUCK if phase == FUZZING else STUCK + HANG_TIMING_CAP  # minimizing times one slow input
            if dead or time.monotonic() - changed > patience:
                count, phase, value = shared.read()
                if not dead:
                    proc.kill()
                proc.join()
                for crash in pending.values():
                    crash.minimize_note = "not minimized: its worker was killed"
                report = Report(inputs=count, fuzz_seconds=time.monotonic() - began, crashes=pending, restarts=1)
                if value is not None:
                    during = "fuzzing" if phase == FUZZING else "minimizing another crash"
                    if dead:
                        signature, what = ("WorkerDied", target.name), f"worker died (exit {proc.exitcode})"
                    else:
                        signature, what = ("Stuck", target.name), f"no return for {patience:g} s (SIGALRM ignored)"
                    crash = Crash(signature, f"{what} while {during}", count, 1, value, _size(value))
                    crash.minimize_note = "not minimized"
                    report.crashes[signature] = crash
        receive.close()
        total.inputs += report.inputs
        total.fuzz_seconds += report.fuzz_seconds
        if report.max_seconds > total.max_seconds:
            total.max_seconds, total.max_size = report.max_seconds, report.max_size
        total.peak_rss_mb = max(total.peak_rss_mb, report.peak_rss_mb)
        total.restarts += report.restarts
        for signature, crash in report.crashes.items():
            if signature in total.crashes:
                total.crashes[signature].hits += crash.hits
            else:
                total.crashes[signature] = crash
        restart += 1
        if not report.restarts:
            break
    return total


# --- the report ------------------------------------------------------------------------------------------------


def _runs(value: Any) -> list[tuple[Any, int]]:
    """VALUE as (piece, repeat) parts: runs of a 1-4 character unit 24 long or more, literal pieces between."""
    parts: list[tuple[Any, int]] = []
    literal_from = i = 0
    while i < len(value):
        for unit in (1, 2, 3, 4):
            piece = value[i : i + unit]
            count = 1
            while value[i + unit * count : i + unit * (count + 1)] == piece:
                count += 1
            if len(piece) == unit and count * unit >= 24:
                if literal_from < i:
                    parts.append((value[literal_from:i], 1))
                parts.append((piece, count))
                i += unit * count
                literal_from = i
                break
        else:
            i += 1
    if literal_from < len(value) or not parts:
        parts.append((value[literal_from:], 1))
    return parts


def scaled(value: bytes, factor: float) -> bytes:
    """VALUE with each of its runs `factor` times as long: the same shape, bigger or smaller."""
    return b"".join(piece * (count if count == 1 else max(1, round(count * factor))) for piece, count in _runs(value))


def expression(value: Any, limit: int = 4000) -> str:
    """A Python expression that rebuilds VALUE, runs of a repeated unit written as `b'x' * n`."""
    if isinstance(value, list):
        text = "[" + ", ".join(expression(item, limit) for item in value) + "]"
    else:
        text = " + ".join(repr(piece) if count == 1 else f"{piece!r} * {count}" for piece, count in _runs(value))
    return text if len(text) <= limit else text[:limit] + f"  # … cut here: the expression is {len(text):,} chars"


def _revision() -> str:
    """The commit the parsers came from, and whether src/ differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "an unknown commit"
    return f"commit {head.stdout.strip() or '?'}" + (" (src/ modified)" if dirty.stdout.strip() else "")


def render(results: list[tuple[Target, Report]], args: argparse.Namespace, wall: float, revision: str) -> str:
    crashes = sum(len(report.crashes) for _, report in results)
    inputs = sum(report.inputs for _, report in results)
    out = [
        "# Fuzzing the config readers, argv parsers, reply parsers, state files and certificate readers",
        "",
        f"Run: `{Path(sys.executable).name} bench/fuzz_parsers.py --seconds {args.seconds:g} --seed {args.seed}"
        f" --hang {args.hang:g}` on {time.strftime('%Y-%m-%d')}, {revision}, Python {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {wall / 60:.1f} min wall time. Seed **{args.seed}**, budget"
        f" **{args.seconds:g} s per target** (fuzzing time, minimization not counted).",
        "",
        "**Contract (STYLE §9).** Any input either parses or raises the parser's own error: `ConfigError` for the",
        "config readers, the argv parsers, the settings and the pin store; `ReplyError` for the reply parsers;",
        "`ValueError` for a held message's metadata, certificates (DER, PEM) and the D-Bus address;",
        "`envelope_from` returns `str | None`; the readers of the audit log, the sent ledger and the rate-limit",
        "state, the alert's recipient and `is_mailpin_tunnel` always return (a corrupt state file means no",
        "memory, never an error). Return values are checked for their type too. Anything else is a",
        f"crash: another exception, more than {args.hang:g} s on one input (SIGALRM), a `MemoryError` under a",
        f"{MEMORY_LIMIT // 1024**3} GiB address-space limit, or the worker dying or sticking in C code for",
        f"{STUCK:g} s (the parent kills it, keeps the input and starts a new worker).",
        "",
        "**Method.** Each target runs in its own forked worker. Inputs: the seeds themselves, then mutations of",
        "the seeds (tests/data/ config files; the pin store's golden file and the settings files of the tests;",
        "typical SMTP/IMAP/POP3 server replies; real From headers; typical command lines; audit log lines, queue",
        "metadata, sent ledgers and rate-limit state as mailpin writes them; the demo PKI's certificates as DER",
        "and as PEM files; D-Bus addresses, e-mail addresses, tunnel commands): 1 to 16 stacked",
        "operations among bit flips, random bytes, insertion of interesting tokens (quotes, backslashes, `%(`,",
        "`[`, `]`, `#`, `=`, NUL, CR/LF variants, NEL and U+2028, BOM, UTF-8 and invalid UTF-8, big numbers) or",
        "of the format's own keywords, chunk deletion and duplication, truncation, splicing with another seed,",
        "line insertion, swaps and line-end rewrites, and — rarely — very long lines (up to 100 000 bytes),",
        "deep section nesting (`[a]` `[[b]]` … up to 480 levels), interpolation and `account b : a`",
        "inheritance chains, a line repeated to 256 KiB (the cap on any input). A quarter of the inputs mutate",
        "the previous input again; 8 % are pure random bytes, random text, token soup or one of the big shapes.",
        "Config text is decoded as its loader does (surrogateescape for msmtp and mbsync; strict UTF-8 for",
        "offlineimap and the settings, whose loaders turn a decode error into a ConfigError — there U+FFFD",
        "replaces bad bytes so the parser still sees the input); the pin store parser takes the bytes; state",
        "files are written to a scratch directory and read by their readers. Argv",
        "elements never hold NUL (execve cannot pass one). Reply inputs are split into lines at LF with one CR",
        "removed, as `net.channel` delivers them. A crash is identified by exception type and raising line; its",
        "reproducer is the shortest crashing input seen, then minimized by removing chunks (halving sizes),",
        f"for at most {MINIMIZE_SECONDS:g} s. A hang's reproducer is then timed with its runs (a unit repeated",
        f"24 times or more) scaled ×0.5, ×1 and ×2, each capped at {HANG_TIMING_CAP:g} s: how the time grows with",
        "the input. No coverage feedback: this is a mutation fuzzer, deterministic for a seed apart from how",
        "many inputs fit in the budget.",
        "",
        "| target | fuzzed | inputs | inputs/s | distinct crashes | max time per passing input | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for target, report in results:
        rate = report.inputs / report.fuzz_seconds if report.fuzz_seconds else 0
        rss = f"{report.peak_rss_mb:.0f} MB" if report.peak_rss_mb else "—"
        out.append(
            f"| {target.name} | `{target.call}` | {report.inputs:,} | {rate:,.0f} | {len(report.crashes)} |"
            f" {report.max_seconds * 1000:.1f} ms ({report.max_size:,} B input) | {rss} |"
        )
    out += ["", f"**Total: {inputs:,} inputs, {crashes} distinct crashes.**", ""]
    if crashes:
        out += ["## Crashes", ""]
    for target, report in results:
        for crash in report.crashes.values():
            kind, where = crash.signature
            out += [
                f"### {target.name}: {kind} at `{where}`",
                "",
                f"- message: `{crash.message}`",
                f"- innermost mailpin frame: `{crash.mailpin_frame or '—'}`",
                f"- hits: {crash.hits} (first at input {crash.first_seen:,}); shortest input seen minimized from"
                f" {crash.original_size:,} to {_size(crash.reproducer):,} bytes ({crash.minimize_note})",
                *([f"- timing: {crash.timing}"] if crash.timing else []),
                "",
                "```python",
                f"data = {expression(crash.reproducer)}",
                f"{target.run.__name__}(data)  # from bench/fuzz_parsers.py: calls {target.call}",
                "```",
                "",
            ]
            if crash.traceback:
                out += ["```", crash.traceback, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzzing time per target")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--hang", type=float, default=1.0, help="seconds one input may take")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-fuzz.md")
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.only or t.name in args.only.split(",")]
    started = time.monotonic()
    revision = _revision()  # before the run: the workers fork from the code imported now
    results = []
    for target in chosen:
        report = fuzz(target, args.seconds, args.seed, args.hang)
        results.append((target, report))
        rate = report.inputs / report.fuzz_seconds if report.fuzz_seconds else 0
        print(
            f"{target.name:17} {report.inputs:>10,} inputs {rate:>9,.0f}/s  crashes {len(report.crashes)}"
            f"  max {report.max_seconds * 1000:.1f} ms  rss {report.peak_rss_mb:.0f} MB",
            flush=True,
        )
        for crash in report.crashes.values():
            print(f"    {crash.signature[0]} at {crash.signature[1]}: {crash.message[:100]}", flush=True)
    args.out.write_text(render(results, args, time.monotonic() - started, revision))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
