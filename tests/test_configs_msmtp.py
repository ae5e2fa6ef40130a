"""mailpin reads msmtp's configs and command lines as msmtp 1.8.23 does: cross-checked with `msmtp -P`.

`msmtp --pretend` prints the account it would use ("using account NAME from FILE", host, port, tls,
tls_starttls) after reading the same files, argv and message headers; every corpus config in
tests/data/msmtp/ is run through a set of real MUA argv shapes (ecosystem.md §1.9) plus the
`# argv:` lines it carries (`ARGS <<< HEADER` feeds a message), and mailpin must agree on every one.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailpin.configs import msmtp, msmtp_argv
from mailpin.configs.msmtp_argv import envelope_from, parse_argv
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode
from tests.conftest import need

DATA = Path(__file__).parent / "data" / "msmtp"
CORPUS = sorted(p for p in DATA.glob("[0-9]*.msmtprc"))
BROKEN = sorted(DATA.glob("broken-*.msmtprc"))
RCPT = "rcpt@example.org"


def make_env(home: Path, **extra: str) -> Env:
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), **extra}
    return Env(environ=environ, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())


def run_msmtp(argv: list[str], home: Path, message: bytes = b"", **extra: str) -> tuple[int, str]:
    """`msmtp -P ARGV` with HOME=home; stdout and stderr together."""
    binary = need("msmtp")
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env |= {"LC_ALL": "C", **extra}
    done = subprocess.run(
        [binary, "-P", *argv], input=message, capture_output=True, timeout=10, env=env, cwd=home, check=False
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def pretended(output: str) -> dict[str, str]:
    """The account msmtp -P chose and its endpoint settings."""
    seen: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("using account specified on command line"):
            seen["name"] = "--host"
        elif line.startswith("using environment variables EMAIL and SMTPSERVER"):
            seen["name"] = "SMTPSERVER"
        elif line.startswith("using account "):
            name, _, file = line.removeprefix("using account ").rpartition(" from ")
            seen["name"], seen["file"] = name, file
        elif " = " in line:
            key, _, value = line.partition(" = ")
            seen.setdefault(key, value)
    return seen


def mailpin_choice(argv: list[str], home: Path, message: bytes | None, **extra: str) -> Account | ConfigError:
    argv = ["-P", *argv]  # what msmtp -P is given: --pretend skips the envelope-from check of a send
    try:
        chosen = msmtp.select(msmtp.load(argv, make_env(home, **extra)), argv, message)
    except ConfigError as error:
        return error
    assert len(chosen) == 1
    return chosen[0]


def assert_agree(argv: list[str], home: Path, message: bytes | None = None, **extra: str) -> Account | None:
    """mailpin and msmtp -P pick the same account with the same host, port, tls and tls_starttls."""
    rc, output = run_msmtp(argv, home, message or b"", **extra)
    ours = mailpin_choice(argv, home, message, **extra)
    context = f"argv={argv!r} message={message!r}\nmsmtp said:\n{output}\nmailpin: {ours!r}"
    if rc != 0:
        assert isinstance(ours, ConfigError), context
        return None
    assert isinstance(ours, Account), context
    theirs = pretended(output)
    assert ours.name == theirs["name"], context
    if "file" in theirs:
        assert ours.source.rpartition(":")[0] == theirs["file"], context
    assert (ours.mode is not Mode.NONE) == (theirs["tls"] == "on"), context
    if ours.mode is not Mode.NONE:
        assert (ours.mode is Mode.STARTTLS) == (theirs["tls_starttls"] == "on"), context
    if any(note.startswith("endpoint unknown") for note in ours.notes):
        assert ours.host is None, context  # msmtp ran the eval; mailpin says it cannot know
    elif theirs["socket"] != "(not set)":
        assert (ours.host, ours.port, ours.transport) == (None, None, f"socket {theirs['socket']}"), context
    else:
        assert (ours.host, str(ours.port)) == (theirs["host"], theirs["port"]), context
    return ours


def shapes(config: msmtp.MsmtpConfig) -> Iterator[tuple[list[str], bytes | None]]:
    """Real invocations (ecosystem.md §1.9) for the accounts and addresses of one config."""
    yield [RCPT], None  # aerc: recipients only
    yield ["-t"], b"From: nobody@nowhere.invalid\n\n"  # alot: -t alone never reads From
    yield ["-f", "nobody@nowhere.invalid", "-i", RCPT], None
    for account in config.accounts:
        yield ["-a", account.name, RCPT], None
        yield [f"--account={account.name}", "--tls", "--tls-starttls=off", RCPT], None
        yield [f"-a{account.name}", "--port=0x1d", "--tls=off", "--socket=", RCPT], None
    addresses = [f for account in config.accounts for f in account.froms if not set(f) & set("?*[")]
    for address in addresses:
        user, _, domain = address.rpartition("@")
        yield ["-oem", "-oi", "-B8BITMIME", "-f", address, "-N", "never", "-R", "hdrs", "--", RCPT], None  # neomutt
        yield ["-f", f"{user}+detail@{domain}", "-i", RCPT], None  # git send-email
        yield ["-oi", "--read-envelope-from", "-oem", "-odb", "-t"], f"From: Someone <{address}>\n\nhi\n".encode()
        hm = f'From: "Last, First" <{address.upper()}>\r\nTo: {RCPT}\r\n\r\nhi\r\n'.encode()
        yield ["--read-envelope-from", "--read-recipients"], hm  # home-manager's msmtpq default, aerc CRLF
        yield ["--serverinfo", f"--from={address}"], None


def extra_cases(path: Path) -> Iterator[tuple[list[str], bytes | None]]:
    for line in path.read_text().splitlines():
        if line.startswith("# argv:"):
            args, _, header = line.removeprefix("# argv:").partition("<<<")
            yield shlex.split(args), (f"{header.strip()}\n\nbody\n".encode() if header else None)


def install(path: Path, dest: Path) -> Path:
    shutil.copyfile(path, dest)
    dest.chmod(0o600)  # msmtp insists on it for files holding secrets
    return dest


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_agrees_with_msmtp_pretend(path: Path, isolated_env: Path) -> None:
    config_file = install(path, isolated_env / "msmtprc")
    config = msmtp.parse(config_file.read_text(), str(config_file), str(isolated_env))
    cases = [*shapes(config), *extra_cases(path)]
    for argv, message in cases:
        assert_agree(["-C", str(config_file), *argv], isolated_env, message)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30 and len(BROKEN) >= 10


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_configs_fail_where_msmtp_fails(path: Path, isolated_env: Path) -> None:
    config_file = install(path, isolated_env / "msmtprc")
    rc, output = run_msmtp(["-C", str(config_file), RCPT], isolated_env)
    assert rc == 78, output  # EX_CONFIG
    with pytest.raises(ConfigError) as caught:
        msmtp.parse(config_file.read_text(), str(config_file), str(isolated_env))
    error = caught.value
    assert error.source == str(config_file) and error.line is not None
    assert f"{config_file}: line {error.line}: {error.problem}" in output or (
        f"{config_file}: {error.problem}" in output  # msmtp names no line for an over-long one
    ), output


def test_hosts_and_modes_of_the_corpus_shapes() -> None:
    """A few results spelled out, so the corpus is not only "same as msmtp"."""
    defaults = msmtp.parse((DATA / "10-defaults-not-inherited.msmtprc").read_text(), "f", "/h")
    b = defaults.account("b")
    assert b is not None and (b.host, b.port, b.mode) == ("a.defaults.example", 2626, Mode.IMPLICIT)
    hm = msmtp.parse((DATA / "19-home-manager.msmtprc").read_text(), "hm", "/h")
    assert hm.default is not None and hm.default.source == "hm:28" and hm.default.port == 465
    alias = hm.account("jane.doe")
    assert alias is not None and alias.froms == ("jane.doe@personal.example",) and alias.host == "smtp.personal.example"
    assert alias.trust_file == "/etc/ssl/certs/ca-certificates.crt" and not alias.system_trust
    pins = msmtp.parse((DATA / "21-fingerprint.msmtprc").read_text(), "fp", "/h")
    legacy = pins.account("legacy")
    sha1 = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD"
    assert legacy is not None and not legacy.certcheck and legacy.fingerprints == (sha1,)
    assert ("tls_certcheck", "off") in legacy.pin_options
    trust = msmtp.parse((DATA / "22-trust-file.msmtprc").read_text(), "t", "/home/u").account("private")
    assert trust is not None and trust.trust_file == "/home/u/.config/msmtp/ca.pem"
    proxy = msmtp.parse((DATA / "18-proxy.msmtprc").read_text(), "p", "/h")
    assert [a.transport for a in proxy.accounts] == [
        "proxy 127.0.0.1:9050",
        "proxy socks.example:1080",
        "proxy 127.0.0.1:9050",
    ]
    override = msmtp.parse((DATA / "16-tls-host-override.msmtprc").read_text(), "o", "/h").account("byip")
    assert override is not None and override.servername == "smtp.override.example"


# --- which files msmtp reads -------------------------------------------------------------------


def test_user_file_is_msmtprc_else_xdg(isolated_env: Path) -> None:
    xdg = isolated_env / ".config" / "msmtp" / "config"
    xdg.parent.mkdir(parents=True)
    xdg.write_text("account default\nhost smtp.xdg.example\n")
    xdg.chmod(0o600)
    assert msmtp.config_paths([], make_env(isolated_env), system=isolated_env / "none") == [xdg]
    assert assert_agree([RCPT], isolated_env) is not None
    home_rc = isolated_env / ".msmtprc"
    home_rc.write_text("account default\nhost smtp.home.example\n")
    home_rc.chmod(0o600)
    assert msmtp.config_paths([], make_env(isolated_env), system=isolated_env / "none") == [home_rc]
    chosen = assert_agree([RCPT], isolated_env)
    assert chosen is not None and chosen.host == "smtp.home.example"
    explicit = isolated_env / "other"
    assert msmtp.config_paths(["-C", str(explicit)], make_env(isolated_env), system=isolated_env / "none") == [explicit]
    assert msmtp.config_paths(["--host=x", "-C", str(explicit)], make_env(isolated_env)) == []


def test_relative_xdg_config_home_is_used_as_msmtp_uses_it(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # msmtp takes $XDG_CONFIG_HOME as set, even relative (to its working directory).
    monkeypatch.chdir(isolated_env)
    rel = isolated_env / "rel" / "msmtp" / "config"
    rel.parent.mkdir(parents=True)
    rel.write_text("account default\nhost smtp.rel.example\n")
    rel.chmod(0o600)
    chosen = assert_agree([RCPT], isolated_env, XDG_CONFIG_HOME="rel")
    assert chosen is not None and chosen.host == "smtp.rel.example"


def test_missing_explicit_file_and_no_file_at_all(isolated_env: Path) -> None:
    missing = isolated_env / "missing-rc"
    with pytest.raises(ConfigError, match="missing-rc"):
        msmtp.load(["-C", str(missing)], make_env(isolated_env))
    assert run_msmtp(["-C", str(missing), RCPT], isolated_env)[0] != 0
    empty = msmtp.load([], make_env(isolated_env), system=isolated_env / "none")
    assert empty.accounts == ()
    with pytest.raises(ConfigError, match="account default not found: no configuration file available"):
        msmtp.select(empty, [RCPT])
    if not msmtp.SYSTEM_CONFIG.exists():
        rc, output = run_msmtp([RCPT], isolated_env)
        assert rc == 78 and "account default not found: no configuration file available" in output


def test_environment_fallback(isolated_env: Path) -> None:
    rc_file = isolated_env / "rc"
    rc_file.write_text("account only\nhost smtp.only.example\nfrom only@env.example\n")
    rc_file.chmod(0o600)
    base = ["-C", str(rc_file)]
    assert assert_agree([*base, RCPT], isolated_env, EMAIL="me@env.example", SMTPSERVER="smtp.env.example")
    assert assert_agree([*base, "-f", "x@env.example", RCPT], isolated_env, SMTPSERVER="smtp.env.example")
    assert assert_agree([*base, RCPT], isolated_env, SMTPSERVER="smtp.env.example") is None
    assert assert_agree([*base, RCPT], isolated_env, EMAIL="me@env.example") is None


@pytest.fixture
def system_file() -> Iterator[Path]:
    """/etc/msmtprc (msmtp has no way to move it): put back whatever was there before."""
    path = msmtp.SYSTEM_CONFIG
    saved = path.read_bytes() if path.exists() else None
    try:
        yield path
    finally:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(saved)


def test_system_and_user_files(system_file: Path, isolated_env: Path) -> None:
    need("msmtp")
    system_file.write_text(
        "defaults\ntls on\n"
        "account shared\nhost shared-sys.example\nfrom a@example.com\n"
        "account sys2\nhost sys2.example\nfrom b@example.com\n"
        "account sysdefault\nhost sysdefault.example\nfrom me@example.com\n"
        "account default : sysdefault\n"
    )
    user = isolated_env / ".msmtprc"
    user.write_text(
        "account x\nhost x.example\nfrom b@example.com\n"
        "account shared\nhost shared-user.example\nfrom c@example.com\n"
        "account u\nhost u.example\nfrom me@example.com\n"
    )
    user.chmod(0o600)
    env = make_env(isolated_env)
    assert msmtp.config_paths([], env) == [system_file, user]
    config = msmtp.load([], env)
    assert [a.name for a in config.accounts] == ["sys2", "sysdefault", "default", "x", "shared", "u"]
    for argv in (
        [RCPT],  # the system's default
        ["-f", "b@example.com", RCPT],  # system accounts are matched first
        ["-f", "a@example.com", RCPT],  # the user's "shared" replaced the system's, from and all
        ["-f", "c@example.com", RCPT],
        ["-a", "sys2", RCPT],
        ["-a", "shared", RCPT],
        ["-C", str(user), "-f", "me@example.com", RCPT],
    ):
        assert assert_agree(argv, isolated_env) is not None
    user.write_text("account default\nhost user-default.example\n")
    chosen = assert_agree([RCPT], isolated_env)
    assert chosen is not None and chosen.host == "user-default.example"


# --- the command line and the message ----------------------------------------------------------

TWO = "account default\nhost hd\naccount b\nhost hb\nfrom b@x\naccount c\nhost hc\nfrom c@x\n"
ARGV_SHAPES = [
    *[[opt, "-a", "b", RCPT] for opt in ["-oi", "-oem", "-odb", "-i", "-B8BITMIME", "-Amode", "-bm", "-G", "-h5"]],
    *[[opt, "-a", "b", RCPT] for opt in ["-Ltag", "-m", "-n", "-Oa=b", "-t", "-FName", "-Nnever", "-X/dev/null"]],
    *[[opt, "-a", "b", RCPT] for opt in ["-o", "-B", "-A", "-h", "-L", "-O", "-F", "-X", "-b", "-v", "-d"]],
    ["-ox", "value", "-a", "b", RCPT],
    ["-L", "tag", "-O", "x=y", "-a", "b", RCPT],
    ["-U", "-a", "b"],
    ["--acc=b", RCPT],
    ["--acc", "b", RCPT],
    ["-ab", RCPT],
    ["-a=b", RCPT],
    ["-tiab", RCPT],
    ["-Pab", RCPT],
    [RCPT, "-a", "b"],
    ["-a", "b", "--", "-a", "default"],
    ["-a", "b", "-a", "default", RCPT],
    ["-a", "b", "--host=h", RCPT],
    ["--host=h", "--tls", "--port=587", RCPT],
    ["--host", "-a", "b"],
    ["--tls-c", "-a", "b"],
    ["--re", "-a", "b"],
    ["--read-env", "-f", "b@x"],
    ["--tls=yes", "-a", "b"],
    ["--tls=", "-a", "b"],
    ["--tls", "on", "-a", "b"],
    ["--port", "-a", "b"],
    ["--port=", "-a", "b"],
    ["--proxy-port=", "-a", "b"],
    ["--tls-fingerprint=", "-a", "b"],
    ["--pretend=x", "-a", "b"],
    ["--account"],
    ["-a"],
    ["-fb@x", RCPT],
    ["--from", "c@x", RCPT],
    ["-f", "c@x", "-f", "b@x", RCPT],
    ["-a", "default", "-f", "b@x", RCPT],
    ["-S", "-a", "b"],
    ["-S", "-a", "b", RCPT],
    ["--serverinfo", "--read-envelope-from"],
    ["-a", "b", "--protocol=lmtp"],
    ["-a", "b", "--tls", "--tls-trust-file="],
    ["-a", "b", "--tls", "--tls-trust-file=", "--tls-certcheck=off"],
    ["-a", "b", "--tls-key-file=k"],
    ["-a", "b", "--socket=/run/s", "--tls-host-override=name"],
    ["-a", "b", "--proxy-host=127.0.0.1", "--proxy-port=9050", "--tls", "--tls-starttls=off"],
    ["-a", "b", "--port=010"],
    ["-a", "b", "--port=0"],
    ["-a", "nope", RCPT],
]


@pytest.mark.parametrize("argv", ARGV_SHAPES, ids=" ".join)
def test_command_lines_agree_with_msmtp(argv: list[str], isolated_env: Path) -> None:
    rc_file = isolated_env / "rc"
    rc_file.write_text(TWO)
    rc_file.chmod(0o600)
    assert_agree(["-C", str(rc_file), *argv], isolated_env, b"From: c@x\n\n")


FROM_HEADERS = [
    "From: Joe <joe@example.com>",
    "From: joe@example.com (Joe)",
    'From: "Doe, Joe" <joe@example.com>',
    'From: "Doe <x@y>" <joe@example.com>',
    "From: Joe\n <joe@example.com>",
    "from: joe@example.com",
    "FROM:joe@example.com",
    "From: joe@example.com\r\nTo: x\r",
    "Resent-From: r@example.com\nFrom: joe@example.com",
    "From: joe@example.com\nResent-From: r@example.com",
    "From: a@example.com\nFrom: b@example.com",
    "To: x\n\nFrom: joe@example.com",
    "To: x",
    "From: a@x, b@y",
    "From: <>",
    "From: Joe (c) <joe@example.com> (d)",
    "From : joe@example.com",
    "From: Joe joe@example.com",
    "From: Joe <a@x> <b@y>",
    "From: Group: a@x, b@y;",
    'From: a\\"b@x',
    "From: (comment (nested)) a@x",
    "From: (comment (nested) a@x",
    "From: <a@x>trailing",
    "From: ;a@x",
    'From: "unterminated a@x',
    "From: a @ x",
    "From: <a<b>c>",
    "From: <a (x) b@c>",
    'From: <"a b"@c>',
    'From: "a b"@c',
    "From: a(x)b@c",
    'From: a"b c"d@x',
    "From joe@x date\nFrom: a@x",
    "From: <(a)b@x>",
    "From: <a\\>b@x>",
    "From: a\\ b@x",
    "From: <a@x >",
    "From: <a@x\n\tb>",
    "From: a@x\n b@y",
    "From: a\n\t@x",
    "From: <a(b",
    "From: a@x (b",
    'From: a@x "b',
    'From: a@x, "b',
    "From: Müller <mü@x>",
]


def test_envelope_from_agrees_with_msmtp(isolated_env: Path) -> None:
    rc_file = isolated_env / "rc"
    rc_file.write_text("account default\nhost h\n")
    rc_file.chmod(0o600)
    for header in FROM_HEADERS:
        message = f"{header}\n\nbody\n".encode()
        _, output = run_msmtp(["-C", str(rc_file), "--read-envelope-from"], isolated_env, message)
        line = next(x for x in output.splitlines() if x.startswith("envelope from address extracted from mail: "))
        theirs = line.removeprefix("envelope from address extracted from mail: ")
        assert (envelope_from(message) or "(null)") == theirs, header


def test_needs_message() -> None:
    assert msmtp.needs_message(["--read-envelope-from", "--read-recipients"])
    assert msmtp.needs_message(["-oi", "--read-env", "-t"])
    assert not msmtp.needs_message(["--read-envelope-from", "-a", "work"])
    assert not msmtp.needs_message(["--read-envelope-from", "--host=h"])
    assert not msmtp.needs_message(["--read-envelope-from", "--serverinfo"])
    assert not msmtp.needs_message(["-t", "-f", "me@example.com"])
    assert not msmtp.needs_message(["--bogus-option"])
    config = msmtp.parse(TWO, "rc", "/h")
    with pytest.raises(ConfigError, match="message is needed"):
        msmtp.select(config, ["--read-envelope-from"])
    assert msmtp.select(config, ["--version"]) == []


def test_eval_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"account a\nhost h\neval touch {marker}-eval\npasswordeval touch {marker}-pw\naccount default : a\n"
    config = msmtp.parse(text, "rc", str(tmp_path))
    chosen = msmtp.select(config, [RCPT])
    assert not list(tmp_path.glob("ran*"))
    assert chosen[0].notes[0] == "eval line 3 not executed"
    assert chosen[0].host is None and any("endpoint unknown" in n for n in chosen[0].notes)
    full = msmtp.parse("account a\nhost h\nport 25\neval echo x\n", "rc", "/h").accounts[0]
    assert full.host == "h" and full.notes == ("eval line 4 not executed",)


# --- the parser never fails in any other way --------------------------------------------------

LINES = st.sampled_from(
    [
        *("account a", "account b : a", "account default : a", "defaults", "host h", "port 587", "tls on", "tls"),
        *(
            "eval x",
            "tls_starttls off",
            'from "*@x"',
            "socket /s",
            "# c",
            "",
            "account",
            "port 0x",
            "tls_fingerprint AB",
        ),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.lists(st.one_of(LINES, st.text(max_size=30)), max_size=20).map("\n".join)))
def test_any_text_parses_or_raises_config_error_with_a_line(text: str) -> None:
    try:
        config = msmtp.parse(text, "rc", "/home/u")
    except ConfigError as error:
        where: tuple[str, int | None] = (error.source, error.line)
    else:
        where = ("rc", 0)
        assert len(config.accounts) == len(config.settings)
        for argv in ([RCPT], ["-a", "a"], ["-f", "x@y"], ["--read-envelope-from"]):
            try:
                msmtp.select(config, argv, text.encode("utf-8", "surrogatepass"))
            except ConfigError:
                pass
    assert where[0] == "rc" and where[1] is not None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(["-a", "--tls", "-f", "--", "-C", "--host", "-t", "-S", "-oi"]), st.text()),
        max_size=8,
    )
)
def test_any_argv_parses_or_raises_config_error(argv: list[str]) -> None:
    source = "msmtp command line"
    try:
        parse_argv(argv)
    except ConfigError as error:
        source = error.source
    assert source == "msmtp command line"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_message_gives_an_address_or_none(message: bytes) -> None:
    result = envelope_from(b"From: " + message)
    assert result is None or " " not in result  # "" for a From: at the very end (msmtp's corner case)


ENFORCED = "/mailpin/pinned-cas"  # stands in for enforce.msmtp's --tls-trust-file=/proc/self/fd/N


@pytest.mark.parametrize("posix", [False, True], ids=["gnu", "POSIXLY_CORRECT"])
@pytest.mark.parametrize(
    "argv",
    [
        ["-t"],
        ["--tls-trust-file=/u", "-t"],
        ["--tls-trust-file", "/u", "rcpt@example.org"],
        ["-oi", "--tls-trust-file=/u", "--", "rcpt@example.org", "--tls-trust-file=/v"],
        ["rcpt@example.org", "--tls-trust-file=/u"],
        ["--tls-trust-file=/u", "rcpt@example.org", "--tls-trust-file=/v", "other@example.org"],
        ["-a", "default", "-f", "me@example.org", "rcpt@example.org"],
        ["-t", "--"],
    ],
)
def test_mailpins_flags_come_after_every_option_of_the_callers(
    isolated_env: Path, argv: list[str], posix: bool
) -> None:
    """Issue 17 item 3: msmtp keeps the last value of an option, so the flags that hold msmtp to the
    verified session must come after the caller's options — with POSIXLY_CORRECT too, where getopt
    stops at the first recipient. Asked of the real msmtp (--pretend), and the recipients unchanged."""
    (isolated_env / ".msmtprc").write_text("account default\nhost localhost\nfrom me@example.org\ntls on\n")
    (isolated_env / ".msmtprc").chmod(0o600)
    extra = {"POSIXLY_CORRECT": "1"} if posix else {}
    at = msmtp_argv.options_end(argv, posix)
    enforced = [*argv[:at], f"--tls-trust-file={ENFORCED}", *argv[at:]]
    rc_before, before = run_msmtp(argv, isolated_env, **extra)
    rc, after = run_msmtp(enforced, isolated_env, **extra)
    assert rc == rc_before == 0, after
    assert pretended(after)["tls_trust_file"] == ENFORCED, after
    recipients = [line for line in before.splitlines() if "recipient" in line]
    assert [line for line in after.splitlines() if "recipient" in line] == recipients


def test_a_base_account_without_host_is_no_error_until_used(isolated_env: Path, pki, smtp_server) -> None:
    """msmtp refuses an account without host only when it sends through it ("host not set"): a base
    that others inherit from is fine. `check` skips it saying why; `mailpin run -a base` stops with
    msmtp's own reason and exit status; the account built on it verifies."""
    from tests.test_pins_real import cli
    from tests.test_run_real import MESSAGE, mailpin_command

    real = need("msmtp")
    (isolated_env / ".msmtprc").write_text(
        f"account base\nfrom alice@example.org\ntls on\ntls_starttls off\ntls_trust_file {pki.ca_pem}\n\n"
        f"account lab : base\nhost localhost\nport {smtp_server.smtps_port}\n\naccount default : lab\n"
    )
    (isolated_env / ".msmtprc").chmod(0o600)
    alone = subprocess.run([real, "-a", "base", "you@example.org"], input=MESSAGE, capture_output=True, timeout=30)
    assert alone.returncode == 78 and b"host not set" in alone.stderr, alone.stderr
    assert cli("init", "--yes")[0] == 0
    code, out, err = cli("check")
    assert code == 0, out + err
    assert "msmtp refuses to use this account (host not set)" in out and "msmtp:lab " in out
    argv = [mailpin_command(), "run", "msmtp", "-a", "base", "you@example.org"]
    wrapped = subprocess.run(argv, input=MESSAGE, capture_output=True, timeout=30)
    assert wrapped.returncode == 78 and b"account base: host not set" in wrapped.stderr, wrapped.stderr
