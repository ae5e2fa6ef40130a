"""msmtp's account is msmtp's account: mailpin against the real msmtp 1.8.23 (`msmtp --pretend`).

Issue 17 item 3. Three kinds of cases, each asked of the real msmtp and of mailpin's reader:
- the review's reproductions, spelled out (each with the sibling that must go elsewhere or fail);
- random From headers for `--read-envelope-from` (seeded; the envelope-from msmtp extracts);
- random configs with random command lines and messages (seeded): the account msmtp picks, or
  that it refuses, and the settings that decide the TLS connection.

`MAILPIN_ORACLE_SCALE=N` multiplies the random counts (the in-suite run stays small; a run at scale
20 is the "few thousand" check). Every divergence is listed, not only the first.
"""

from __future__ import annotations

import ctypes
import io
import locale
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailpin.configs import msmtp
from mailpin.configs.msmtp_argv import envelope_from
from mailpin.configs.msmtp_match import LocaleDependentError, fnmatch
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode
from tests.conftest import need

SCALE = int(os.environ.get("MAILPIN_ORACLE_SCALE", "1"))
RCPT = "rcpt@example.org"


def run_msmtp(argv: list[str], home: Path, message: bytes = b"", **extra: str) -> tuple[int, str]:
    """`msmtp -P ARGV` with HOME=home, stdout and stderr together (bytes kept as surrogates)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LC_ALL": "C", **extra}
    done = subprocess.run(
        [need("msmtp"), "-P", *argv], input=message, capture_output=True, timeout=10, env=env, cwd=home, check=False
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "surrogateescape")


def mailpin(argv: list[str], home: Path, message: bytes | None, **extra: str) -> Account | ConfigError | None:
    """The account mailpin says msmtp uses, its refusal, or None: msmtp connects nowhere (--version)."""
    environ = {"HOME": str(home), **extra}
    env = Env(environ=environ, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    argv = ["-P", *argv]
    try:
        config = msmtp.load(argv, env)  # /etc/msmtprc as msmtp reads it (another test may write one)
        chosen = msmtp.select(config, argv, message)
    except ConfigError as error:
        return error
    assert len(chosen) <= 1, chosen
    return chosen[0] if chosen else None


def pretended(output: str) -> dict[str, str]:
    seen: dict[str, str] = {}
    for line in output.split("\n"):  # not splitlines(): a CR that msmtp kept in a value is part of it
        if line.startswith("using account specified on command line"):
            seen["name"] = "--host"
        elif line.startswith("using environment variables EMAIL and SMTPSERVER"):
            seen["name"] = "SMTPSERVER"
        elif line.startswith("using account "):
            seen["name"] = line.removeprefix("using account ").rpartition(" from ")[0]
        elif " = " in line:
            key, _, value = line.partition(" = ")
            seen.setdefault(key, value)
    return seen


def ours(account: Account) -> dict[str, str]:
    """mailpin's account in --pretend's words (host, port and the settings that make the TLS session)."""
    trust = "system" if account.system_trust else (account.trust_file or "(not set)")
    return {
        "name": account.name,
        "host": account.host or "(not set)",
        "port": str(account.port),
        "tls": "off" if account.mode is Mode.NONE else "on",
        "tls_trust_file": trust,
        "tls_fingerprint": account.fingerprints[0] if account.fingerprints else "(not set)",
        "tls_certcheck": "on" if account.certcheck else "off",
    }


def divergence(argv: list[str], home: Path, message: bytes | None = None, **extra: str) -> str | None:
    """None when mailpin and msmtp -P agree; else what differs (msmtp's starttls only counts with tls on)."""
    rc, output = run_msmtp(argv, home, message or b"", **extra)
    mine = mailpin(argv, home, message, **extra)
    where = f"argv={argv!r} env={extra!r} message={message!r}"
    if rc != 0 or isinstance(mine, ConfigError):
        if (rc != 0) == isinstance(mine, ConfigError):
            return None
        return f"{where}\n  msmtp rc={rc}: {output.strip()[-300:]}\n  mailpin: {mine!r}"
    theirs = pretended(output)
    if mine is None:
        return None if "host" not in theirs else f"{where}\n  msmtp chose {theirs.get('name')}, mailpin none"
    wanted = ours(mine)
    differs = {key: (theirs.get(key), value) for key, value in wanted.items() if theirs.get(key) != value}
    if theirs.get("tls") == "on" and (theirs.get("tls_starttls") == "on") != (mine.mode is Mode.STARTTLS):
        differs["tls_starttls"] = (theirs.get("tls_starttls"), mine.mode.value)
    return f"{where}\n  (msmtp, mailpin): {differs}" if differs else None


def write_rc(home: Path, text: str | bytes, name: str = "rc") -> Path:
    path = home / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o600)
    return path


# --- the review's reproductions, each with its sibling -------------------------------------------

WORK = (
    "account other\nhost other.example\nfrom *@work.example\n"
    "account me\nhost me.example\nfrom me@work.example\n"
    "account default\nhost default.example\n"
)


@pytest.mark.parametrize(
    ("argv", "extra", "chosen"),
    [
        # a sub-address is compared by user and domain only; a wildcard `from` is never tried for it
        (["-f", "me+lists@work.example", RCPT], {}, "me"),
        (["-f", "you+lists@work.example", RCPT], {}, "default"),
        (["-f", "you@work.example", RCPT], {}, "other"),
        (["-f", "ME+x@WORK.example", RCPT], {}, "me"),
        # -d takes an optional attached argument: "-dalocal" is -d with "alocal", not -a local
        (["-dalocal", "-f", "you@work.example", RCPT], {}, "other"),
        (["-d", "-ame", RCPT], {}, "me"),
        # POSIXLY_CORRECT: the first recipient ends the options, the rest are recipients
        ([RCPT, "-a", "me"], {"POSIXLY_CORRECT": "1"}, "default"),
        ([RCPT, "-a", "me"], {}, "me"),
        (["-a", "me", "--", "-a", "other"], {}, "me"),
        # `-f` taking "--" as its argument, and "<>" as the empty address (`*` would take it)
        (["-f", "--", RCPT], {}, "default"),
        (["-f", "<>", RCPT], {}, "default"),
    ],
)
def test_review_reproductions_choose_msmtps_account(
    isolated_env: Path, argv: list[str], extra: dict[str, str], chosen: str
) -> None:
    rc = write_rc(isolated_env, WORK)
    assert divergence(["-C", str(rc), *argv], isolated_env, **extra) is None
    account = mailpin(["-C", str(rc), *argv], isolated_env, None, **extra)
    assert isinstance(account, Account) and account.name == chosen


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (b"From:\nFrom: you@work.example\n", "other"),  # an empty first From: does not count
        (b"From: \r\nFrom: me+a@work.example\r\n", "me"),
        (b"From: you@wo\rrk.example\n", "other"),  # a bare CR is dropped, wherever it is
        (b"From: me+a@work.exam\r\rple\n", "me"),
        (b"From: Me <me+a@work.example> (x)\n", "me"),
        (b'From: (c) "a, b" <you@work.example>, me@work.example\n', "other"),
        (b"From: me+a@work.example\n ,you@work.example\n", "me"),  # the first address
        (b'From: "me@work.example\n', "default"),  # unterminated quote: no address at all
        (b"Resent-From: me@work.example\n", "default"),
    ],
)
def test_read_envelope_from_chooses_msmtps_account(isolated_env: Path, header: bytes, chosen: str) -> None:
    rc = write_rc(isolated_env, WORK)
    message = header + b"To: rcpt@example.org\n\nbody\n"
    for extra in ([], ["-t"]):
        argv = ["-C", str(rc), "--read-envelope-from", *extra]
        assert divergence(argv, isolated_env, message) is None
        account = mailpin(argv, isolated_env, message)
        assert isinstance(account, Account) and account.name == chosen, (header, extra)


@pytest.mark.parametrize(
    ("text", "chosen", "mode"),
    [
        ("account a\r\nhost a.example\r\ntls\r\ntls_trust_file /ca.pem\r\n", "a", Mode.STARTTLS),
        ('account a\nhost a.example\ntls \t\ntls_starttls\t\ntls_trust_file "/ca.pem"\n', "a", Mode.STARTTLS),
        (
            'account a\nhost a.example\ntls ""\ntls_starttls off\ntls_certcheck ""\ntls_trust_file x\n',
            "a",
            Mode.IMPLICIT,
        ),
        # defaults after an account apply only to the accounts that follow it
        ("account a\nhost a.example\ndefaults\ntls on\ntls_trust_file /ca.pem\naccount b : a\n", "a", Mode.NONE),
        ("account a\nhost a.example\ndefaults\ntls on\ntls_trust_file /ca.pem\naccount b : a\n", "b", Mode.STARTTLS),
        # a parent's own settings are inherited, not its defaults; later parents win
        (
            "defaults\ntls on\naccount a\nhost a\ntls_starttls off\naccount b\nhost b\ndefaults\ntls off\n"
            "account c : a , b\ntls_trust_file /x\n",
            "c",
            Mode.NONE,
        ),
        ('account "a" : \n', "a", None),  # missing parent name
        ("account a,b\nhost h\n", "a,b", None),  # no comma in a name
        ("host h\naccount default\n", "default", None),  # lines before any account made "default"
        ("account a\nhost h\nhost_typo x\n", "a", None),
        ("account a\nhost h\ntls on\ntls_trust_file\n", "a", None),  # tls without any trust
        ("defaults\ntls_trust_file\naccount a\nhost h\ntls on\n", "a", Mode.STARTTLS),  # ... but from defaults: system
        ("account a\nhost h\ntls_crl_file /crl\ntls_trust_file\n", "a", None),
        ("account a\nhost h\ndsn_notify failuredelay,\n", "a", Mode.NONE),  # msmtp's own strstr counting
    ],
)
def test_config_syntax_as_msmtp_reads_it(isolated_env: Path, text: str, chosen: str, mode: Mode | None) -> None:
    rc = write_rc(isolated_env, text)
    argv = ["-C", str(rc), "-a", chosen, RCPT]
    assert divergence(argv, isolated_env) is None
    account = mailpin(argv, isolated_env, None)
    if mode is None:
        assert isinstance(account, ConfigError)
    else:
        assert isinstance(account, Account) and account.mode is mode


def test_a_real_send_needs_an_envelope_from_as_msmtp_does(isolated_env: Path) -> None:
    """Without --pretend msmtp refuses an account with no `from` and no -f; mailpin refuses it too."""
    rc = write_rc(isolated_env, "account default\nhost h\n")
    env = Env(environ={"HOME": str(isolated_env)}, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    config = msmtp.load(["-C", str(rc)], env, system=isolated_env / "none")
    with pytest.raises(ConfigError, match="envelope-from address is missing"):
        msmtp.select(config, ["-C", str(rc), RCPT])
    assert msmtp.select(config, ["-C", str(rc), "-f", "me@example.org", RCPT])[0].name == "default"
    done = subprocess.run(
        [need("msmtp"), "-C", str(rc), RCPT], input=b"\n", capture_output=True, timeout=10, check=False
    )
    assert done.returncode == 78 and b"envelope-from address is missing" in done.stderr


# --- random From headers ---------------------------------------------------------------------------

_TOKENS = [
    b"From:", b"from:", b"FROM: ", b"From", b"Fro", b"To: ", b"Resent-From: ", b"Date: x", b"Cc:",
    b" ", b"\t", b"\r", b"\n", b"\r\n", b"\n ", b"\n\t",
    b"<", b">", b"(", b")", b'"', b"\\", b",", b";", b":", b"@",
    b"a", b"b@x", b"me@work.example", b"Joe", b"\x00", b"\x7f", b"\xff", "é".encode(), b"\x01",
]  # fmt: skip


def _header(rng: random.Random) -> bytes:
    head = rng.choice([b"From: ", b"From:", b"X: y\nFrom: ", b""])
    return head + b"".join(rng.choices(_TOKENS, k=rng.randint(0, 14)))


def test_random_from_headers_give_msmtps_envelope_from(isolated_env: Path) -> None:
    rc = write_rc(isolated_env, "account default\nhost h\n")
    rng = random.Random(17)
    wrong: list[str] = []
    for _ in range(300 * SCALE):
        message = _header(rng) + rng.choice([b"\n\nbody\n", b"", b"\n"])
        recipients = rng.random() < 0.3
        argv = ["-C", str(rc), "--read-envelope-from", *(["-t"] if recipients else [])]
        _, output = run_msmtp(argv, isolated_env, message)
        prefix = "envelope from address extracted from mail: "
        theirs = next(line for line in output.split("\n") if line.startswith(prefix)).removeprefix(prefix)
        mine = envelope_from(message, recipients)
        if (mine if mine is not None else "(null)") != theirs:
            wrong.append(f"{message!r} -t={recipients}: msmtp {theirs!r}, mailpin {mine!r}")
    assert not wrong, f"{len(wrong)} divergences:\n" + "\n".join(wrong[:20])


# --- random configs, command lines and messages ----------------------------------------------------

FROMS = [
    "me@work.example", "ME@Work.Example", "me+lists@work.example", "*@work.example", "m?@work.example",
    "[a-m]e@work.example", "[!x]e@*", "[^m]e@work.example", "*", "\\*@work.example", "", "me", "*+*@work.example",
    "you@home.example", "*@*.example", "[[:alpha:]]e@work.example", "[]]@x", "me@work.example+x", "[a-@x",
]  # fmt: skip
ADDRESSES = [
    "me@work.example", "me+lists@work.example", "ME+A@WORK.EXAMPLE", "you@work.example", "", "<>",
    "me+@work.example", "+@", "a@b+c", "me@work.example+x", "*@work.example", "you@home.example", "]@x",
    "Me@work.example", "[a-@x", "e@x",
]  # fmt: skip
NAMES = ["a", "b", "c", "default"]
FINGERPRINT = "AA:bb:CC:dd:EE:ff:00:11:22:33:44:55:66:77:88:99:aa:BB:cc:DD"


def _line(rng: random.Random, command: str, arg: str | None) -> str:
    if arg is None:
        text = command
    elif rng.random() < 0.2:
        text = f'{command} "{arg}"'
    else:
        text = command + rng.choice([" ", "\t", "  "]) + arg
    return rng.choice(["", " ", "\t"]) + text + rng.choice(["", " ", "\t", "\r"])


def _settings(rng: random.Random) -> Iterator[tuple[str, str | None]]:
    choices: list[tuple[str, list[str | None]]] = [
        ("host", ["smtp.example", "mx.example", "127.0.0.1"]),
        ("from", list(FROMS)),
        ("tls", ["on", "off", "", None]),
        ("tls_starttls", ["on", "off", ""]),
        ("port", ["25", "465", "587", "0x24b", "010"]),
        ("tls_trust_file", ["/etc/ca.pem", "", "~/ca.pem", "system"]),
        ("tls_fingerprint", [FINGERPRINT, ""]),
        ("tls_certcheck", ["on", "off", ""]),
        ("tls_nocertcheck", [None]),
        ("tls_nostarttls", [None]),
    ]
    for command, args in rng.sample(choices, k=rng.randint(1, 5)):
        yield command, rng.choice(args)


def random_config(rng: random.Random) -> bytes:
    out: list[str] = []
    if rng.random() < 0.1:
        out += [_line(rng, c, a) for c, a in _settings(rng)]  # lines before any account: "default"
    defined: list[str] = ["default"] if out else []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.3:
            out += ["defaults", *(_line(rng, c, a) for c, a in _settings(rng))]
        name = rng.choice([n for n in NAMES if n not in defined] or ["z"])
        parents = rng.sample(defined, k=rng.randint(0, min(2, len(defined)))) if defined else []
        out.append(f"account {name}" + (f" : {', '.join(parents)}" if parents else ""))
        defined.append(name)
        out += [_line(rng, c, a) for c, a in _settings(rng)]
        if rng.random() < 0.8:
            out.append(_line(rng, "host", f"{name}.example"))
        if rng.random() < 0.1:
            out.append(rng.choice(["# comment", "", "  # indented", "unknown_command x"]))
    ending = "\r\n" if rng.random() < 0.2 else "\n"
    return ending.join(out).encode() + ending.encode()


def random_argv(rng: random.Random, rc: Path) -> tuple[list[str], bytes | None, dict[str, str]]:
    options: list[list[str]] = [["-C", str(rc)]]
    pick = rng.random()
    name = rng.choice([*NAMES, "nope"])
    address = rng.choice(ADDRESSES)
    message = None
    if pick < 0.15:
        options.append(rng.choice([["-a", name], [f"-a{name}"], [f"--account={name}"], ["--acc", name]]))
    elif pick < 0.55:
        options.append(rng.choice([["-f", address], [f"-f{address}"], [f"--from={address}"], ["--fr", address]]))
    elif pick < 0.8:
        options.append(["--read-envelope-from"])
        first = rng.choice(["From:\n", "", "From: \r\n", "Resent-From: x@y\n"])
        message = f"{first}From: Someone <{address}>\nTo: {RCPT}\n\nbody\n".encode()
    noise = [
        ["-oi"],
        ["-i"],
        ["-t"],
        ["-d"],
        ["-dalocal"],
        ["-v"],
        ["-oem"],
        ["-Ltag"],
        ["-ox", "v"],
        ["-X", "/dev/null"],
    ]
    noise += [["--tls"], ["--tls=off"], ["--tls-starttls=off"], ["--port=2525"], ["--tls-trust-file="]]
    noise += [["--tls-certcheck=off"], ["--tls-fingerprint=" + FINGERPRINT], ["-S"]]
    options += rng.sample(noise, k=rng.randint(0, 3))
    rng.shuffle(options[1:])  # the config file first, the rest in any order
    argv = [word for option in options for word in option]
    for _ in range(rng.randint(0, 2)):
        argv.insert(rng.randint(2, len(argv)), rng.choice([RCPT, "--", "other@example.org"]))
    extra = {"POSIXLY_CORRECT": ""} if rng.random() < 0.2 else {}
    if rng.random() < 0.1:
        extra |= {"EMAIL": "env@example.org", "SMTPSERVER": "env.example"}
    return argv, message, extra


def test_random_configs_and_command_lines_choose_msmtps_account(isolated_env: Path) -> None:
    rng = random.Random(8314)
    wrong: list[str] = []
    cases = 0
    for number in range(120 * SCALE):
        text = random_config(rng)
        rc = write_rc(isolated_env, text)
        for _ in range(4):
            argv, message, extra = random_argv(rng, rc)
            cases += 1
            problem = divergence(argv, isolated_env, message, **extra)
            if problem:
                wrong.append(f"config #{number}: {text!r}\n{problem}")
    assert cases >= 480 * SCALE
    assert not wrong, f"{len(wrong)} of {cases} diverge:\n" + "\n\n".join(wrong[:10])


# --- random command lines: getopt_long and msmtp_cmdline ------------------------------------------

_OPTIONS = [
    "-P", "-d", "-v", "-S", "-t", "-i", "-m", "-n", "-G", "-a", "-f", "-C", "-N", "-R", "-X", "-A", "-B", "-b",
    "-F", "-h", "-L", "-O", "-o", "-q", "-:", "-",
    "--pretend", "--debug", "--serverinfo", "--account", "--acc", "--a", "--host", "--ho", "--port", "--po",
    "--timeout", "--connect-timeout", "--co", "--from", "--fr", "--f", "--tls", "--tls-s", "--tls-starttls",
    "--tls-c", "--tls-certcheck", "--tls-trust-file", "--tls-t", "--tls-fingerprint", "--tls-f", "--auth",
    "--syslog", "--proxy-port", "--dsn-notify", "--dsn-return", "--protocol", "--set-from-header",
    "--set-date-header", "--auto-from", "--keepbcc", "--read-envelope-from", "--read-e", "--read-recipients",
    "--re", "--version", "--help", "--rmqs", "--tls-min-dh-prime-bits", "--tls-force-sslv3", "--bogus", "--",
]  # fmt: skip
_VALUES = [
    "", "on", "off", "auto", "a", "b", "default", "nope", "me@work.example", "me+x@work.example", "<>", "0x1d",
    "25", "0", "never", "failure,delay", "hdrs", "full", "LOG_MAIL", "plain", "smtp", "lmtp", "0.1", "m", "x",
    FINGERPRINT, "alocal", "-a", "--", RCPT,
]  # fmt: skip


def _word(rng: random.Random) -> str:
    option, value = rng.choice(_OPTIONS), rng.choice(_VALUES)
    return rng.choice([option, option, value, f"{option}={value}", f"{option}{value}"])


def test_random_command_lines_are_read_as_msmtp_reads_them(isolated_env: Path) -> None:
    rc = write_rc(isolated_env, WORK + "account a\nhost a.example\naccount b : a\nfrom b@x\n")
    rng = random.Random(2584)
    wrong: list[str] = []
    for _ in range(250 * SCALE):
        argv = ["-C", str(rc), *(_word(rng) for _ in range(rng.randint(1, 5)))]
        if "--rmqs" in " ".join(argv) or "--he" in " ".join(argv):
            continue  # a queue run and --help print nothing to compare; --configure asks DNS
        extra = {"POSIXLY_CORRECT": "1"} if rng.random() < 0.3 else {}
        message = b"From: me+a@work.example\n\n"
        problem = divergence(argv, isolated_env, message, **extra)
        if problem:
            wrong.append(problem)
    assert not wrong, f"{len(wrong)} divergences:\n" + "\n".join(wrong[:15])


# --- glibc's fnmatch itself ------------------------------------------------------------------------

_CHARS = "ab*?[]!^-\\:=.@é"
_GLOB = st.text(alphabet=_CHARS, max_size=10) | st.sampled_from(
    [
        "[[:alpha:]]*",
        "[[:digit:]x]",
        "[[:bogus:]]",
        "[[=a=]]",
        "[[.a.]-c]",
        "[a-]",
        "[]-a]",
        "[!]]",
        "*[",
        "\\",
        "[[",
        "?é",
    ]
)


@pytest.mark.parametrize("where", ["C", "C.UTF-8"])
@settings(max_examples=1500, deadline=None)
@given(pattern=_GLOB, string=st.text(alphabet=_CHARS, max_size=8))
def test_fnmatch_is_glibcs(where: str, pattern: str, string: str) -> None:
    """msmtp calls glibc's fnmatch(from, address, 0): ours against the C library's, in the C locale
    (bytes) and in C.UTF-8 (characters). POSIXLY_CORRECT is read once by glibc; it is unset here."""
    libc = ctypes.CDLL(None)
    libc.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    saved = locale.setlocale(locale.LC_ALL)
    locale.setlocale(locale.LC_ALL, where)
    try:
        theirs = libc.fnmatch(pattern.encode(), string.encode(), 0) != 1  # anything but FNM_NOMATCH
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    wide = where != "C"
    units = (lambda text: [ord(char) for char in text]) if wide else (lambda text: list(text.encode()))
    try:
        mine = fnmatch(units(pattern), units(string), wide=wide)
    except LocaleDependentError:
        assert wide  # mailpin refuses to guess glibc's Unicode classes
        return
    assert mine == theirs


def test_a_choice_that_depends_on_msmtps_locale_is_refused(isolated_env: Path) -> None:
    """`?` takes one byte in the C locale and one character in UTF-8: msmtp's choice for "é@x" then
    depends on its locale, which mailpin does not guess — it refuses; "e@x" is the same everywhere."""
    rc = write_rc(isolated_env, "account w\nhost w.example\nfrom ?@x\naccount default\nhost d.example\n")
    chosen = {}
    for where in ("C", "C.UTF-8"):
        _, output = run_msmtp(["-C", str(rc), "-f", "é@x", RCPT], isolated_env, LC_ALL=where)
        chosen[where] = pretended(output)["name"]
    assert chosen == {"C": "default", "C.UTF-8": "w"}
    refused = mailpin(["-C", str(rc), "-f", "é@x", RCPT], isolated_env, None)
    assert isinstance(refused, ConfigError) and "locale" in refused.problem
    plain = mailpin(["-C", str(rc), "-f", "e@x", RCPT], isolated_env, None)
    assert isinstance(plain, Account) and plain.name == "w"
    assert divergence(["-C", str(rc), "-f", "e@x", RCPT], isolated_env) is None
