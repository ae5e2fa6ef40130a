"""mbsync config and command line: mailpin's reading must be mbsync's own.

Three kinds of evidence: a corpus of real-shaped configs (home-manager, mutt-wizard, 1.2–1.4
spellings, tunnels, groups, broken ones) with the accounts mbsync resolves; the real mbsync 1.4
run on every config it accepts, against nothing (its `-V` "Connecting to HOST (IP:PORT)" lines must
be mailpin's ports) and against the lab Dovecot (it must succeed on the port and mode mailpin
resolved, and fail when pointed at the other one); and twin snippets that both readers must accept
or reject at the same line.  isync 1.4 rejects 1.5's `TLSType`: those configs are parser-only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailpin.configs import mbsync
from mailpin.configs.mbsync_argv import parse_argv
from mailpin.configs.mbsync_model import MbsyncConfig
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode
from tests.conftest import need

CORPUS = Path(__file__).parent / "data" / "mbsync"
IMPLICIT, STARTTLS, NONE = Mode.IMPLICIT, Mode.STARTTLS, Mode.NONE

# file -> the accounts mbsync resolves from it: (name, host, port, mode, transport)
GOOD = {
    "hm-ssltype.mbsyncrc": [("work", "imap.work.example", 993, IMPLICIT, None)],
    "hm-groups.mbsyncrc": [
        ("personal", "mail.personal.example", 143, STARTTLS, None),
        ("lists", "imap.lists.example", 993, IMPLICIT, None),
    ],
    "mutt-wizard.mbsyncrc": [("alice@example.org-remote", "imap.example.org", 993, IMPLICIT, None)],
    "legacy-useimaps.mbsyncrc": [("uni", "imap.uni.example", 993, IMPLICIT, None)],
    "legacy-requiressl-no.mbsyncrc": [("old", "mail.old.example", 143, STARTTLS, None)],
    "tunnel.mbsyncrc": [("home", None, None, NONE, "tunnel ssh -q -C mail.home.example /usr/lib/dovecot/imap")],
    "case-and-quotes.mbsyncrc": [("Work Mail", "imap.corp.example", 143, STARTTLS, None)],
    "plaintext.mbsyncrc": [("bridge", "127.0.0.1", 1143, NONE, None)],
    "starttls-default.mbsyncrc": [("plain-remote", "imap.isp.example", 143, STARTTLS, None)],
    "url-host.mbsyncrc": [("ancient", "imap.ancient.example", 993, IMPLICIT, None)],
    "many-groups.mbsyncrc": [
        ("a", "imap.a.example", 993, IMPLICIT, None),
        ("b", "imap.b.example", 10143, STARTTLS, None),
        ("unused", "imap.unused.example", 143, STARTTLS, None),
    ],
    # isync 1.5 only (1.4 says "keyword 'TLSType' is not recognized"): parser-only.
    "hm-tlstype.mbsyncrc": [("fastmail", "imap.fastmail.com", 993, IMPLICIT, None)],
    "mutt-wizard-tlstype.mbsyncrc": [("bob@example.net-remote", "mail.example.net", 143, STARTTLS, None)],
}
ONLY_15 = ("hm-tlstype.mbsyncrc", "mutt-wizard-tlstype.mbsyncrc")
RUNNABLE = sorted(set(GOOD) - set(ONLY_15))

# file -> (line mailpin reports, words of mailpin's message, words of mbsync's own message)
BROKEN = {
    "broken-unknown-keyword.mbsyncrc": (2, "'Hots' is not recognized", ":2: keyword 'Hots'"),
    "broken-missing-argument.mbsyncrc": (3, "parameter missing", ":3: parameter missing"),
    "broken-unknown-store.mbsyncrc": (11, "unknown store 'work-remot'", ":11: unknown store"),
    "broken-unknown-account.mbsyncrc": (5, "unknown IMAP account 'wrok'", ":5: unknown IMAP account"),
    "broken-unclosed-quote.mbsyncrc": (3, "missing closing quote", ":3: missing closing quote"),
    "broken-legacy-mix.mbsyncrc": (1, "legacy UseIMAPS", "mutually exclusive with SSLType"),
    "broken-global-after-section.mbsyncrc": (4, "may not follow sections", ":4: global options may not follow"),
    "broken-excess-token.mbsyncrc": (3, "excess token 'show'", ":3: excess token 'show'"),
    "broken-account-and-inline.mbsyncrc": (4, "both Account and account-specific", "both Account and account-spec"),
}


def parse_file(name: str, home: str = "/home/jane") -> MbsyncConfig:
    return mbsync.parse((CORPUS / name).read_text(), name, home)


def endpoint(account: Account) -> tuple[object, ...]:
    return (account.name, account.host, account.port, account.mode, account.transport)


def test_the_corpus_is_complete() -> None:
    assert sorted(path.name for path in CORPUS.glob("*.mbsyncrc")) == sorted([*GOOD, *BROKEN])
    assert len(GOOD) + len(BROKEN) >= 12


@pytest.mark.parametrize("name", sorted(GOOD))
def test_corpus_accounts_resolve_as_mbsync_does(name: str) -> None:
    config = parse_file(name)
    assert [endpoint(account) for account in config.accounts] == GOOD[name]
    for account in config.accounts:
        assert account.key == f"mbsync:{account.name}"
        assert re.fullmatch(rf"{re.escape(name)}:\d+", account.source)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_corpus_names_file_line_and_problem(name: str) -> None:
    line, words, _ = BROKEN[name]
    with pytest.raises(ConfigError) as caught:
        parse_file(name)
    assert (caught.value.source, caught.value.line) == (name, line)
    assert words in caught.value.problem
    assert str(caught.value).startswith(f"{name}:{line}: ")


def test_details_the_accounts_carry() -> None:
    [quoted] = parse_file("case-and-quotes.mbsyncrc").accounts
    assert quoted.trust_file == "/home/jane/certs/corp ca.pem"
    assert quoted.system_trust is False
    assert quoted.pin_options == (("SystemCertificates", "no"), ("CertificateFile", "~/certs/corp ca.pem"))
    [old] = parse_file("legacy-requiressl-no.mbsyncrc").accounts
    assert any("'RequireSSL no' is ignored" in note for note in old.notes)
    assert any("1.5 rejects" in note for note in old.notes)
    [tunnel] = parse_file("tunnel.mbsyncrc").accounts
    assert tunnel.servername is None  # no TLS over this tunnel: nothing to check the name against
    [url] = parse_file("url-host.mbsyncrc").accounts
    assert any("URL notation" in note for note in url.notes)
    for name in ONLY_15:
        assert any("TLSType needs isync 1.5" in note for note in parse_file(name).accounts[0].notes)


# --- selection: which accounts one command line uses -------------------------------------------------

SELECT = [
    (["-a"], ["a", "b"]),
    (["--all", "nonsense"], ["a", "b"]),  # -a ignores operands
    (["a-inbox"], ["a"]),
    (["b"], ["a"]),  # the group "b" hides the channel "b"
    (["everything"], ["a", "b"]),
    (["-l", "a-folders:Sent,Drafts", "a-inbox"], ["a"]),
    (["-V", "-Dmn", "-Cn", "-Xf", "-Lnf", "-q", "--pull-new", "-c", "x", "a-inbox"], ["a"]),
    (["-cq", "file", "a-inbox"], ["a"]),  # -c takes the next argument; q is still a flag
    (["--", "a-inbox"], ["a"]),
    (["-ls"], ["a", "b"]),  # 1.5 --list-stores: every store
    (["--list-stores", "b-remote", "local"], ["b"]),
    (["-h", "nonsense"], []),
    (["-v"], []),
]


@pytest.mark.parametrize(("argv", "names"), SELECT)
def test_select(argv: list[str], names: list[str]) -> None:
    config = parse_file("many-groups.mbsyncrc")
    assert [account.name for account in mbsync.select(config, argv)] == names
    assert mbsync.needs_message(argv) is False


REFUSED = [
    ([], "no channel specified"),
    (["-V"], "no channel specified"),
    (["nope"], "no channel or group named 'nope'"),
    (["a-inbox", "-V"], "no channel or group named '-V'"),  # options end at the first operand
    (["a-inbox:INBOX"], "has no Patterns"),
    (["-Z", "a-inbox"], "Unknown option '-Z'"),
    (["--frobnicate"], "Unknown option '--frobnicate'"),
    (["-c"], "-c requires an argument"),
    (["-Dx"], "Unknown -D flag 'x'"),
    (["-ls", "nope"], "no store named 'nope'"),
]


@pytest.mark.parametrize(("argv", "words"), REFUSED)
def test_select_refuses_what_mbsync_refuses(argv: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        mbsync.select(parse_file("many-groups.mbsyncrc"), argv)


def test_select_without_channels_or_config() -> None:
    accounts_only = mbsync.parse("IMAPAccount a\nHost h\n", "f", "/h")
    with pytest.raises(ConfigError, match="no channels are defined"):
        mbsync.select(accounts_only, ["-a"])
    with pytest.raises(ConfigError, match="no mbsync config file"):
        mbsync.select(MbsyncConfig((), "/h/.mbsyncrc", found=False), ["-a"])


def test_argv_config_option_forms() -> None:
    assert parse_argv(["--config=/a", "-c", "/b", "x"]).config == "/b"
    assert parse_argv(["--config", "/a", "x"]).operands == ("x",)
    assert parse_argv(["-l", "-", "x"]).error == "Invalid option '-'"


# --- where the config comes from ---------------------------------------------------------------------


def make_env(home: Path, **extra: str) -> Env:
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), **extra}
    return Env(environ=environ, stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)


MINIMAL = "IMAPAccount a\nHost a.example\n\nIMAPStore a\nAccount a\n\nMaildirStore l\nPath /nonexistent/\n\nChannel c\n"
MINIMAL += "Far :a:\nNear :l:\n"


def test_config_paths_follow_the_installed_isync(isolated_env: Path, tmp_path: Path) -> None:
    binary = need("mbsync")
    env = make_env(isolated_env, PATH=str(Path(binary).parent))
    assert mbsync.config_paths([], env) == []
    legacy = isolated_env / ".mbsyncrc"
    legacy.write_text(MINIMAL)
    assert mbsync.config_paths(["-a"], env) == [legacy]
    (isolated_env / ".config").mkdir()
    xdg = isolated_env / ".config" / "isyncrc"
    xdg.write_text(MINIMAL)
    # Both files: the file the real mbsync reads (1.4: ~/.mbsyncrc only; 1.5: the XDG one).
    homes = {"HOME": str(isolated_env), "XDG_CONFIG_HOME": str(isolated_env / ".config")}
    done = subprocess.run([binary, "-V", "-l", "c"], capture_output=True, text=True, timeout=10, check=False, env=homes)
    reported = re.search(r"Reading configuration file (\S+)", done.stdout + done.stderr)
    assert reported is not None, done.stdout + done.stderr
    assert mbsync.config_paths(["-a"], env) == [Path(reported.group(1))]
    # An isync 1.5 on PATH reads the XDG file first.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mbsync").write_text("#!/bin/sh\necho isync 1.5.0\n")
    (fake / "mbsync").chmod(0o755)
    assert mbsync.config_paths(["-a"], make_env(isolated_env, PATH=str(fake))) == [xdg]
    assert mbsync.config_paths(["-c", "/missing", "-a"], env) == [Path("/missing")]


def test_the_installed_version_is_asked_once_per_binary(isolated_env: Path, tmp_path: Path) -> None:
    """`mbsync --version` runs once; the answer is kept per binary identity, so an upgrade is asked
    again, and a cache file that is not the user's own (or not JSON) is asked around."""
    from mailpin.configs.tool_version import installed

    fake = tmp_path / "bin"
    fake.mkdir()
    asked = tmp_path / "asked"
    (fake / "mbsync").write_text(f"#!/bin/sh\necho x >> {asked}\necho isync 1.4.4\n")
    (fake / "mbsync").chmod(0o755)
    env = make_env(isolated_env, PATH=str(fake))
    assert installed("mbsync", env) == (1, 4) and installed("mbsync", env) == (1, 4)
    assert asked.read_text().count("x") == 1
    (fake / "mbsync").write_text(f"#!/bin/sh\necho x >> {asked}\necho isync 1.5.1, upgraded\n")
    assert installed("mbsync", env) == (1, 5)
    assert asked.read_text().count("x") == 2
    cache = isolated_env / ".cache" / "mailpin" / "versions.json"
    cache.chmod(0o666)  # others could plant a version: not trusted
    assert installed("mbsync", env) == (1, 5) and asked.read_text().count("x") == 3
    cache.write_text("not json")
    cache.chmod(0o600)
    assert installed("mbsync", env) == (1, 5) and asked.read_text().count("x") == 4
    assert installed("mbsync", make_env(isolated_env, PATH=str(tmp_path / "none"))) is None


def test_load(isolated_env: Path, tmp_path: Path) -> None:
    env = make_env(isolated_env)
    empty = mbsync.load(["-a"], env)
    assert (empty.accounts, empty.found) == ((), False)
    with pytest.raises(ConfigError, match="cannot read this mbsync config file") as caught:
        mbsync.load(["-c", str(tmp_path / "missing"), "-a"], env)
    assert caught.value.source == str(tmp_path / "missing")
    config = tmp_path / "rc"
    config.write_text("IMAPAccount a\nHost h\nCertificateFile ~/ca.pem\n")
    with pytest.raises(ConfigError, match=r"CertificateFile .* cannot be read") as caught:
        mbsync.load(["-c", str(config)], env)
    assert caught.value.line == 3
    (isolated_env / "ca.pem").write_text("")
    [account] = mbsync.load(["-c", str(config)], env).accounts
    assert account.trust_file == f"{isolated_env}/ca.pem"


# --- the grammar, corner by corner; each twin is also run through the real mbsync below ------------------

# (snippet, line of the first error or None when mbsync accepts it)
TWINS = [
    ("IMAPAccount a\nHost h\n# a comment does not end a section\nPort 993\n", None),
    ("IMAPAccount a\nHost h\n  \nPort 993\n", 4),  # a blank (whitespace) line does
    ('IMAPAccount a\nHost h\nUser "a \\"b\\" c"\n', None),
    ("IMAPAccount a\nHost h\nUser a\\\n", 3),  # a trailing backslash
    ('IMAPAccount a\nHost h#x\nUser "#y" # z\n', None),  # '#' starts a comment only at a word
    ("IMAPAccount a\nHost h\nPort 65536\n", 3),
    ("IMAPAccount a\nHost h\nPort 0\n", None),
    ("IMAPAccount a\nHost h\nPort 12x\n", 3),
    ("IMAPAccount a\nHost h\nSSLType imaps\nSSLVersions TLSv1.2 TLSv1.3\n", None),
    ("IMAPAccount a\nHost h\nSSLType bogus\n", 3),
    ("IMAPAccount a\nHost h\nUseTLSv1 no\n", 1),  # legacy: STARTTLS but no version left
    ("IMAPAccount a\nHost h\nUser u\nUserCmd x\n", 1),
    ("IMAPAccount a\nPort 1\n", 1),  # neither Host nor Tunnel
    ("IMAPAccount a\nHost h\nAccount b\n", 3),
    ("IMAPAccount a\nHost h\nDisableExtensions MOVE starttls IDLE\n", 3),
    ("IMAPAccount a\nHost h\nSystemCertificates maybe\n", 3),
    ("IMAPStore s\nHost h\nFlatten /\n", 3),
    ("IMAPStore s\nHost h\nPathDelimiter ab\n", 3),
    ("MaildirStore m\nSubFolders Maildir++\nInfoDelimiter ;\nMaxSize 10kb\n", None),
    ("MaildirStore m\nMaxSize 10q\n", 2),
    ("FSync no\nFieldDelimiter x\n", 2),
    ("BufferLimit 0k\n", 1),
    ("Sync PullNew Push\nCreate Slave\nExpunge Sideways\n", 3),
    ("MaildirStore m\n\nChannel c\nFar :m:\nNear :m:INBOX\nSync Bogus\n", 6),
    ("MaildirStore m\n\nChannel c\nFar m\nNear :m:\n", 4),
    ("MaildirStore m\n\nChannel c\nFar :m:\n", 3),  # no near side
    ("MaildirStore m\n\nChannel c\nFar :m:\nNear :m:\n\nGroup g c d:x\nChannels e f\nFar :m:\n", 9),
    ("IMAPAccount \xe9\nHost h\nClient\u212aey x\n", 3),  # strcasecmp folds ASCII only (U+212A KELVIN SIGN)
    ("#" + "x" * 1021 + "\nIMAPAccount a\nHost h\n", None),
    ("IMAPAccount a\n#" + "x" * 1021 + "\nHost h\n", 1),  # fgets splits: the "\n" is a blank line
    ("IMAPAccount a\nHost h\nUser a\0 b c\n", None),  # C strings end at NUL
]


@pytest.mark.parametrize(("text", "line"), TWINS)
def test_twin(text: str, line: int | None) -> None:
    if line is None:
        mbsync.parse(text, "f", "/h")
    else:
        with pytest.raises(ConfigError) as caught:
            mbsync.parse(text, "f", "/h")
        assert caught.value.line == line


def run_mbsync(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    binary = need("mbsync")
    return subprocess.run(
        ["timeout", "-k", "2", str(timeout), binary, *args],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        stdin=subprocess.DEVNULL,
    )


def mbsync_verdict(path: Path) -> int | str | None:
    """None: mbsync accepts the config; else the line of its first error (or its message)."""
    result = run_mbsync("-c", str(path), "-l", "no-such-channel")
    errors = [line for line in result.stderr.splitlines() if "Notice" not in line and "Warning" not in line]
    first = errors[0]
    if "no-such-channel" in first or first.startswith("No channels defined"):
        return None
    found = re.match(rf"{re.escape(str(path))}:(\d+): ", first)
    return int(found.group(1)) if found else first


@pytest.mark.parametrize(("text", "line"), TWINS)
def test_twin_against_the_real_mbsync(tmp_path: Path, text: str, line: int | None) -> None:
    path = tmp_path / "rc"
    path.write_bytes(text.encode("utf-8"))
    verdict = mbsync_verdict(path)
    if isinstance(verdict, str):  # mbsync names no line (a whole-section problem): mailpin names its start
        assert line is not None, verdict
    else:
        assert verdict == line


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_corpus_is_broken_for_mbsync_too(name: str) -> None:
    result = run_mbsync("-c", str(CORPUS / name), "-l", "x")
    assert result.returncode == 1
    assert BROKEN[name][2] in result.stderr


@pytest.mark.parametrize("name", ONLY_15)
def test_15_configs_are_refused_by_mbsync_14(name: str) -> None:
    if "1.4" not in run_mbsync("-v").stdout:
        pytest.skip("only isync 1.4 refuses TLSType")
    assert "keyword 'TLSType' is not recognized" in run_mbsync("-c", str(CORPUS / name), "-l", "x").stderr


PIECES = [
    *re.split(" ", "IMAPAccount IMAPStore MaildirStore Channel Group Host Port Tunnel SSLType TLSType IMAPS STARTTLS"),
    *re.split(" ", "None UseIMAPS RequireSSL yes no Account Far Near :s: :m: s m a Channels Patterns * Sync Pull 993"),
    *("#", '"', "\\", " ", "\t", "\n", "\n", "\n", "\xe9", "\x00", "\u212a", "\udcff", "\ud800"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=60).map("".join))
def test_any_text_parses_or_raises_config_error_with_a_line(text: str) -> None:
    errors: list[ConfigError] = []
    try:
        config = mbsync.parse(text, "f", "/h")
    except ConfigError as error:
        errors.append(error)
    else:
        for argv in (["-a"], ["-ls"], ["s"], ["a:b"]):
            try:  # selection on whatever parsed: ConfigError (naming the file) or accounts, nothing else
                mbsync.select(config, argv)
            except ConfigError as error:
                assert error.source == "f", error  # noqa: PT017
    for error in errors:
        assert error.line is not None
        assert str(error).startswith(f"f:{error.line}: ")


# --- the real mbsync connects where mailpin says ---------------------------------------------------------

SECTIONS = ("imapaccount", "imapstore", "maildirstore", "channel", "group")
RELAY = """\
import os, socket, sys, threading
server = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def down():
    while data := server.recv(65536):
        os.write(1, data)
    os._exit(0)
threading.Thread(target=down, daemon=True).start()
while data := os.read(0, 65536):
    server.sendall(data)
server.shutdown(socket.SHUT_WR)
threading.Event().wait(5)
"""


def rewrite(name: str, tmp: Path, ca: Path, ports: dict[int, int] | None, tunnel: str, extra: str = "") -> Path:
    """The corpus file pointed at this machine: Host localhost, User test / Pass secret, the lab CA,
    Maildirs under `tmp`, the tunnel command replaced.  With `ports` (account line -> port), each
    account's Port lines give way to `Port P` right under its header; without, Port is kept as written.
    `extra` goes under each account header too (e.g. a short Timeout)."""
    text = (CORPUS / name).read_text()
    accounts = {int(account.source.rsplit(":", 1)[1]) for account in mbsync.parse(text, name, "/h").accounts}
    out: list[str] = []
    kind = ""
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split(None, 1)
        keyword = words[0].lower() if words and not words[0].startswith("#") else ""
        kind = keyword if keyword in SECTIONS else kind if words else ""
        if keyword == "host":
            line = "Host " + ("imaps://localhost" if "imaps:" in line else "localhost")
        elif keyword == "user" and kind.startswith("imap"):
            line = "User test"
        elif keyword in ("pass", "passcmd"):
            line = "Pass secret"
        elif keyword == "certificatefile":
            line = f'CertificateFile "{ca}"'
        elif keyword == "tunnel":
            line = f"Tunnel {tunnel}"
        elif keyword == "port" and ports is not None and kind.startswith("imap"):
            continue
        elif keyword in ("path", "inbox") and kind == "maildirstore":
            box = tmp / "mail" / str(number) / ("INBOX" if keyword == "inbox" else "")
            for sub in ("cur", "new", "tmp"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            line = f'{words[0]} "{box}/"'
        out.append(line)
        if number in accounts:
            out += [f'CertificateFile "{ca}"', "User test", "Pass secret"]
            out += [f"Port {ports[number]}"] if ports is not None else []
            out += [extra] if extra else []
    path = tmp / name
    path.write_text("\n".join(out) + "\n")
    return path


def connections(output: str) -> list[str]:
    """What mbsync -V says it connects to, in order: "port N" or "tunnel CMD"."""
    events = re.findall(r"^(?:Connecting to \S+ \(.*:(\d+)\)|Starting tunnel '(.*)'\.\.\.)", output, re.M)
    return list(dict.fromkeys(f"port {port}" if port else f"tunnel {cmd}" for port, cmd in events))


@pytest.mark.parametrize("name", RUNNABLE)
def test_mbsync_connects_to_the_ports_mailpin_resolves(tmp_path: Path, pki, name: str) -> None:
    """No server needed: mbsync -V names the port (defaults included) before the connection is refused."""
    path = rewrite(name, tmp_path, pki.ca_pem, None, '"echo \\"* BYE quoted\\""', "Timeout 2")
    expected = [
        account.transport if account.transport else f"port {account.port}"
        for account in mbsync.select(mbsync.parse(path.read_text(), str(path), str(tmp_path)), ["-a"])
    ]
    result = run_mbsync("-V", "-c", str(path), "-a", "-l")
    assert connections(result.stdout) == expected, result.stdout + result.stderr
    assert 'tunnel echo "* BYE quoted"' in expected or name != "tunnel.mbsyncrc"


def lab_port(lab, account: Account, wrong: bool = False) -> int:
    implicit = account.mode is Mode.IMPLICIT
    return lab.imaps_port if implicit != wrong else lab.imap_port


@pytest.mark.parametrize("name", RUNNABLE)
def test_mbsync_succeeds_on_mailpins_endpoint_and_fails_on_the_other(
    tmp_path: Path, pki, dovecot_server, name: str
) -> None:
    """Against the lab Dovecot: each account works on the lab port of the mode mailpin resolved (its
    -Dn transcript shows STARTTLS exactly when mailpin says STARTTLS), and fails on the other port."""
    need("mbsync")
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    accounts = mbsync.parse((CORPUS / name).read_text(), name, "/h").accounts
    lines = {int(account.source.rsplit(":", 1)[1]): account for account in accounts}
    runs = {}
    for wrong in (False, True):
        sub = tmp_path / ("wrong" if wrong else "right")
        sub.mkdir()
        ports = {line: lab_port(dovecot_server, account, wrong) for line, account in lines.items()}
        tunnel_port = dovecot_server.imaps_port if wrong else dovecot_server.imap_port
        tunnel = f'"{sys.executable} {relay} 127.0.0.1 {tunnel_port}"'
        path = rewrite(name, sub, pki.ca_pem, ports, tunnel, "Timeout 1" if wrong else "")
        config = mbsync.parse(path.read_text(), str(path), str(tmp_path))
        for channel in config.channels:  # one run per channel, all at once (the wrong ones time out)
            argv = ["timeout", "10", need("mbsync"), "-Dn", "-c", str(path), "-l", channel.name]
            runs[wrong, channel.name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
            )
        selected = {channel.name: mbsync.select(config, [channel.name]) for channel in config.channels}
    for (wrong, channel), process in runs.items():
        output = process.communicate()[0]
        if wrong:
            assert process.returncode != 0, output
            continue
        assert process.returncode == 0, output
        [account] = selected[channel]
        assert ("\n>>> 1 STARTTLS" in output) == (account.mode is Mode.STARTTLS), output


@pytest.mark.parametrize(
    ("argv", "names"), [case for case in SELECT if not {"-c", "-cq", "-ls", "--list-stores"} & {*case[0]}]
)
def test_select_agrees_with_what_the_real_mbsync_opens(tmp_path: Path, pki, argv: list[str], names: list[str]) -> None:
    """mbsync -V on the same command line connects to exactly the selected accounts' ports."""
    path = rewrite("many-groups.mbsyncrc", tmp_path, pki.ca_pem, None, "true", "Timeout 2")
    config = mbsync.parse(path.read_text(), str(path), str(tmp_path))
    expected = [f"port {account.port}" for account in mbsync.select(config, argv)]
    result = run_mbsync("-V", "-c", str(path), *argv)
    assert connections(result.stdout) == expected, result.stdout + result.stderr


@pytest.mark.parametrize(("argv", "words"), [case for case in REFUSED if "-ls" not in case[0]])
def test_refused_command_lines_fail_in_the_real_mbsync_too(tmp_path: Path, pki, argv: list[str], words: str) -> None:
    path = rewrite("many-groups.mbsyncrc", tmp_path, pki.ca_pem, None, "true", "Timeout 2")
    assert run_mbsync("-V", "-c", str(path), *argv).returncode != 0


def test_a_second_definition_of_a_name_is_never_used() -> None:
    text = "IMAPAccount a\nHost one\n\nIMAPAccount a\nHost two\n\nIMAPStore s\nAccount a\n\nIMAPStore s\nHost three\n"
    config = mbsync.parse(text, "f", "/h")
    assert [(account.name, account.host) for account in config.accounts] == [("a", "one")]
    assert [(store.name, store.account and store.account.host) for store in config.stores] == [("s", "one")]


NEWER = {  # what only isync >= 1.5 takes, as a line of the test config below (line 17 or 5)
    "TLSType IMAPS": 5,
    "TLSVersions +1.3": 5,
    "ExpungeSolo Both": 17,
    "ExpireSide Near": 17,
    "Sync Pull Old": 17,
    "Sync PushUpgrade": 17,
    "Sync Gone": 17,
}


@pytest.mark.parametrize("snippet", sorted(NEWER))
def test_what_only_isync_15_takes_is_refused_as_the_installed_14_refuses_it(
    isolated_env: Path, tmp_path: Path, snippet: str
) -> None:
    binary = need("mbsync")
    line = NEWER[snippet]
    account = "IMAPAccount a\nHost localhost\nUser u\nPass p\n" + (f"{snippet}\n" if line == 5 else "SSLType IMAPS\n")
    channel = "Channel c\nFar :a-r:\nNear :l:\n" + (f"{snippet}\n" if line == 17 else "")
    rc = tmp_path / "rc"
    rc.write_text(
        f"{account}\nIMAPStore a-r\nAccount a\n\nMaildirStore l\nPath {tmp_path}/m/\nInbox {tmp_path}/m/i\n\n{channel}"
    )
    done = subprocess.run([binary, "-c", str(rc), "-l", "c"], capture_output=True, text=True, timeout=10, check=False)
    said = re.search(rf"{re.escape(str(rc))}:(\d+): (.*)", done.stdout + done.stderr)
    env = make_env(isolated_env, PATH=str(Path(binary).parent))
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    if "isync 1.4" in version:  # Debian 12: mbsync refuses the file, and mailpin with its words and line
        assert done.returncode != 0 and said is not None and int(said.group(1)) == line, done.stdout + done.stderr
        with pytest.raises(ConfigError) as caught:
            mbsync.load(["-c", str(rc), "c"], env)
        assert caught.value.line == line and caught.value.problem.startswith(said.group(2)), caught.value
    else:  # a newer mbsync takes it, and so does mailpin
        assert said is None, done.stdout + done.stderr
        assert mbsync.load(["-c", str(rc), "c"], env).accounts
    # With an isync 1.5 installed, the same file is fine.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mbsync").write_text("#!/bin/sh\necho isync 1.5.0\n")
    (fake / "mbsync").chmod(0o755)
    assert mbsync.load(["-c", str(rc), "c"], make_env(isolated_env, PATH=str(fake))).accounts
