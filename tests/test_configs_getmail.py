"""getmail reader: hand-written rc files, the getmaildir, the command line, and proof against getmail6.

The oracle is getmail's own code: `/usr/bin/python3` runs `/usr/bin/getmail`'s `main()` (and so its
`go()`) over the same getmaildir, rc files, environment and argv, with every TCP connection it starts
recorded — the retriever that starts it, where to, and its TLS settings as getmail's `check_ssl_*`
return them — and refused. What mailpin's `select` says getmail connects to must be exactly that, in
that order, or mailpin must refuse where getmail stops. `MAILPIN_ORACLE_SCALE=N` multiplies the count.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpin.configs import getmail as gm
from mailpin.configs.getmail_rc import ITEMS, RETRIEVERS
from mailpin.env import Env
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account, Mode, Protocol
from tests.conftest import need
from tests.lab.pki import TestPKI

SCALE = int(os.environ.get("MAILPIN_ORACLE_SCALE", "1"))
HOME = "/home/alice"
SECRET = "hunter2-not-a-real-password"
FP = "5f" * 32
I, N = Mode.IMPLICIT, Mode.NONE  # noqa: E741


def rc(retriever: str, destination: str = "[destination]\ntype = Maildir\npath = ~/Mail/\n") -> str:
    return f"{retriever.strip()}\npassword = {SECRET}\n\n{destination}"


def one(text: str, **kwargs: Any) -> Account:
    config = gm.parse(text, "/home/alice/.getmail/getmailrc", HOME, **kwargs)
    assert not config.problems, config.problems
    (account,) = config.accounts
    return account


def problem(text: str, **kwargs: Any) -> ConfigError:
    config = gm.parse(text, "/home/alice/.getmail/getmailrc", HOME, **kwargs)
    ((_, error),) = config.problems
    assert SECRET not in str(error)
    return error


def env_for(home: Path | str, **environ: str) -> Env:
    return Env(environ={"HOME": str(home), **environ}, stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)


# --- the retriever types --------------------------------------------------------------------------

TYPES = {
    "SimplePOP3Retriever": (Protocol.POP3, N, 110),
    "BrokenUIDLPOP3Retriever": (Protocol.POP3, N, 110),
    "MultidropPOP3Retriever": (Protocol.POP3, N, 110),
    "MultidropSDPSRetriever": (Protocol.POP3, N, 110),
    "SimplePOP3SSLRetriever": (Protocol.POP3, I, 995),
    "BrokenUIDLPOP3SSLRetriever": (Protocol.POP3, I, 995),
    "MultidropPOP3SSLRetriever": (Protocol.POP3, I, 995),
    "SimpleIMAPRetriever": (Protocol.IMAP, N, 143),
    "MultidropIMAPRetriever": (Protocol.IMAP, N, 143),
    "SimpleIMAPSSLRetriever": (Protocol.IMAP, I, 993),
    "MultidropIMAPSSLRetriever": (Protocol.IMAP, I, 993),
}


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_each_retriever_type_and_its_default_port(kind: str) -> None:
    multidrop = "Multidrop" in kind and "SDPS" not in kind  # SDPS takes the envelope from the server
    envelope = "envelope_recipient = delivered-to:1" if multidrop else ""
    account = one(rc(f"[retriever]\ntype = {kind}\nserver = mail.example.org\nusername = alice\n{envelope}"))
    assert (account.protocol, account.mode, account.port) == TYPES[kind]
    assert (account.key, account.host, account.user) == ("getmail:getmailrc", "mail.example.org", "alice")
    assert account.source == "/home/alice/.getmail/getmailrc:1"
    assert SECRET not in str(account)
    if multidrop:  # a required item: without it getmail stops before connecting
        error = problem(rc(f"[retriever]\ntype = {kind}\nserver = m\nusername = a\n"))
        assert (error.line, error.problem) == (1, "envelope_recipient: missing required configuration parameter")


def test_tls_settings_as_getmail_applies_them() -> None:
    account = one(
        rc(f"""
# a comment
[retriever]
type = SimpleIMAPSSLRetriever
server = imap.example.org
port = 10993
username = alice@example.org
ca_certs = $CERTS/ca.pem
ssl_fingerprints = ('{FP.upper()}', '{":".join(FP[i : i + 2] for i in range(0, 64, 2))}')
ssl_version = TLSv1_2
ssl_ciphers = ECDHE+AESGCM:!aNULL
ssl_cert_hostname = mail.example.org
certfile = ~/client.pem
keyfile = ~/client.key
"""),
        environ={"CERTS": "/etc/mail"},
    )
    assert (account.host, account.port, account.mode) == ("imap.example.org", 10993, I)
    assert (account.trust_file, account.system_trust, account.certcheck) == ("/etc/mail/ca.pem", False, True)
    assert account.fingerprints == (FP, FP)  # check_ssl_fingerprints: lower case, colons removed
    assert (account.tls_versions, account.ciphers) == (("TLSv1.2",), "ECDHE+AESGCM:!aNULL")
    assert (account.client_cert, account.client_key) == ("/home/alice/client.pem", "/home/alice/client.key")
    assert account.servername == "mail.example.org"
    assert dict(account.pin_options)["ca_certs"] == "$CERTS/ca.pem"
    assert account.tls_source("trust") == ("ca_certs", "/home/alice/.getmail/getmailrc:7")
    assert account.tls_source("versions") == ("ssl_version", "/home/alice/.getmail/getmailrc:9")
    assert any("sends imap.example.org as SNI" in note for note in account.notes)


def test_without_ca_certs_getmail_checks_nothing_and_mailpin_says_so() -> None:
    pop3s = "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = pop.example.org\nusername = a\n"
    account = one(rc(pop3s))
    assert (account.trust_file, account.system_trust, account.certcheck) == (None, True, False)
    assert account.fingerprints == ()
    assert account.trust == "none (certificate checks off)"
    assert any("checks no certificate chain" in note for note in account.notes)
    pinned = one(rc(f"{pop3s}ssl_fingerprints = ('{FP}',)"))
    assert (pinned.certcheck, pinned.system_trust, pinned.trust) == (True, True, "pinned fingerprint")
    assert one(rc(f"{pop3s}ssl_version = sslv23")).tls_versions == ()  # PROTOCOL_SSLv23: the library's range


def test_a_cleartext_retriever_ignores_tls_options_and_the_notes_never_show_values() -> None:
    account = one(
        rc(f"[retriever]\ntype = SimpleIMAPRetriever\nserver = imap.lan\nusername = a\nca_certs = /x\n"
           f"pasword = {SECRET}\npassword_command = ('pass', 'show', 'mail')\n")
    )  # fmt: skip
    assert (account.mode, account.port, account.trust_file, account.certcheck) == (N, 143, None, True)
    assert any(note.startswith("ca_certs is ignored (line 5)") and "no STARTTLS" in note for note in account.notes)
    assert any(note.startswith("pasword is ignored") for note in account.notes)
    assert "password_command is not run by mailpin" in account.notes
    assert SECRET not in str(account) and "pass" not in " ".join(account.notes).replace("password", "")


def test_configparser_rules_getmail_reads_with() -> None:
    text = rc("""
[DEFAULT]
port = 1
server = default.example
[options]
delete = yes
[retriever]
TYPE: SimpleIMAPSSLRetriever
Server = imap.example.org
username = a
port =
    0x3e1
timeout = 30 # a Python comment, for eval
""")
    account = one(text)  # [DEFAULT] never reaches [retriever]: main() clears the defaults first
    assert (account.host, account.port, account.source) == ("imap.example.org", 993, "/home/alice/.getmail/getmailrc:6")
    config = gm.parse(text, "f", HOME)
    assert (config.rcfiles[0].delete, config.rcfiles[0].read_all) == (True, True)
    for port, value in (("'995'", 995), ("993.9", 993), ("1_993", 1993), ("True", 1)):
        assert one(rc(f"[retriever]\ntype=SimpleIMAPSSLRetriever\nserver=s\nusername=u\nport={port}")).port == value


def test_python_getmail_would_evaluate_is_never_run() -> None:
    error = problem(rc("[retriever]\ntype=SimpleIMAPSSLRetriever\nserver=s\nusername=u\nport=990 + 3"))
    assert error.line == 5 and "getmail evaluates this as Python" in error.problem
    error = problem(rc("[retriever]\ntype=SimpleIMAPSSLRetriever\nserver=s\nusername=u\nssl_fingerprints=('5f'*32,)"))
    assert error.line == 5
    account = one(rc("[retriever]\ntype=SimpleIMAPSSLRetriever\nserver=s\nusername=u\ntimeout=60*3\nmailboxes=ALL"))
    assert "timeout (line 5) is Python that getmail evaluates; mailpin did not" in account.notes


BROKEN = [
    (f"password {SECRET}\n[retriever]\n", 1, "before any [section] header"),
    (f"[retriever]\npassword {SECRET}\n", 2, "cannot read this line"),
    ("[retriever]\n[retriever]\n", 2, "section [retriever] appears twice"),
    ("[retriever]\ntype = a\nType = b\n", 3, "option 'type' appears twice in [retriever]"),
    ("[options]\nverbose = lots\n[retriever]\n", 2, "option verbose must be integer, not lots"),
    ("[DEFAULT]\ndelete = maybe\n[options]\n[retriever]\n", 2, "option delete must be boolean, not maybe"),
    ("[Retriever]\ntype = SimplePOP3Retriever\n", None, "missing section (No section: 'retriever')"),
    ("[retriever]\nserver = s\n", 1, "No option 'type' in section: 'retriever'"),
    ("[retriever]\ntype = IMAPRetrieverBase\n", 2, "'IMAPRetrieverBase' is not a getmail retriever"),
    ("[retriever]\ntype = SimplePOP3Retriever\nusername = u\n", 1, "server: missing required configuration parameter"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\nport=pop3\n", 5, "getmail evaluates this"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\nport='pop3'\n", 5, "not of required type <class"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\nport=(\n", 5, "not of required type <class 'int'>"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\nuse_apop=maybe\n", 5, 'requires value to be one'),
    ("[retriever]\ntype=SimplePOP3SSLRetriever\nserver=s\nusername=u\nca_certs=\n", 5, 'specified file "" does not'),
    ("[retriever]\ntype=SimplePOP3SSLRetriever\nserver=s\nusername=u\nssl_fingerprints='ab'\n", 5, "not a tuple"),
    ("[retriever]\ntype=SimpleIMAPRetriever\nserver=s\nusername=u\nmailboxes=(1,)\n", 5, "a mailbox is text"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\n", None, "No section: 'destination'"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\n[destination]\ntype=Maildirs\n", 6, "not a getmail"),
    ("[retriever]\ntype=SimplePOP3Retriever\nserver=s\nusername=u\n[destination]\ntype=Maildir\n[Filter1]\ntype=x\n",
     None, "No section: 'filter1'"),
]  # fmt: skip
# Checked only when getmail comes to connect (utilities.check_ssl_*): a refusal, not a read error.
REFUSED = [
    ("ssl_version = ", 5, 'unknown or unsupported ssl_version ""'),
    ("ssl_version = sslv3", 5, 'unknown or unsupported ssl_version "sslv3"'),
    ("ssl_version = tlsv1_3", 5, 'unknown or unsupported ssl_version "tlsv1_3"'),
    ("ssl_ciphers = HIGH;rm", 5, "invalid character in ssl_ciphers"),
    ("keyfile = /etc/hostname", 5, "certfile and keyfile must be supplied together"),
    ("ssl_fingerprints = ('ab:cd',)", 5, "ssl_fingerprints must each be the SHA256 certificate hash"),
    ("port = 70000", 5, "port 70000 is not a TCP port"),
    ("port = 0", 5, "port 0 is not a TCP port"),
]


@pytest.mark.parametrize(("text", "line", "words"), BROKEN)
def test_broken_rc_files_stop_getmail_with_a_line(text: str, line: int | None, words: str) -> None:
    config = gm.parse(text, "/g/rc", HOME)
    ((name, error),) = config.problems
    assert (name, error.source, error.line) == ("rc", "/g/rc", line)
    assert words in error.problem
    assert config.rcfiles[0].problem is error and SECRET not in str(error)


@pytest.mark.parametrize(("option", "line", "words"), REFUSED)
def test_settings_getmail_refuses_only_when_it_connects(option: str, line: int, words: str) -> None:
    config = gm.parse(rc(f"[retriever]\ntype=SimplePOP3SSLRetriever\nserver=s\nusername=u\n{option}"), "/g/rc", HOME)
    assert config.rcfiles[0].problem is None
    refusal = config.rcfiles[0].refusal
    assert refusal is not None and (refusal.line, words in refusal.problem) == (line, True)


def test_files_getmail_checks_must_be_there(tmp_path: Path) -> None:
    text = rc("[retriever]\ntype=SimpleIMAPSSLRetriever\nserver=s\nusername=u\nca_certs=ca.pem\n")
    where = {"files": True, "cwd": str(tmp_path), "getmaildir": str(tmp_path)}
    error = problem(text, **where)
    assert (error.line, error.problem) == (5, 'ca_certs: specified file "ca.pem" does not exist')
    (tmp_path / "ca.pem").write_text("")
    assert one(text, **where).trust_file == str(tmp_path / "ca.pem")  # relative to getmail's working directory
    assert "does not exist" in problem(text, **{**where, "getmaildir": str(tmp_path / "gone")}).problem


# --- the getmaildir, -g and -r ---------------------------------------------------------------------

GOOD = rc("[retriever]\ntype = SimpleIMAPSSLRetriever\nserver = imap.example.org\nusername = alice\n")


def test_getmaildir_xdg_first_then_dot_getmail(tmp_path: Path, isolated_env: Path) -> None:
    home = isolated_env
    env = env_for(home)
    config = gm.load([], env)
    assert (config.found, config.accounts, gm.config_paths([], env)) == (False, (), [])
    with pytest.raises(ConfigError, match="Could not find the getmail configuration directory"):
        gm.select(config, [])
    dot = home / ".getmail"
    dot.mkdir()
    (dot / "getmailrc").write_text(GOOD)
    assert gm.config_paths([], env) == [dot / "getmailrc"]
    xdg = home / ".config" / "getmail"
    xdg.mkdir(parents=True)
    assert gm.config_paths([], env) == []  # the XDG directory wins as soon as it exists, even empty
    assert gm.select(gm.load([], env), []) == []  # an empty listing: getmail connects nowhere
    assert gm.config_paths([], env_for(home, XDG_CONFIG_HOME=str(tmp_path / "elsewhere"))) == [dot / "getmailrc"]
    assert gm.config_paths(["-g", "~/.getmail"], env) == [dot / "getmailrc"]
    assert gm.config_paths(["-g", "$MAILDIRS/.getmail"], env_for(home, MAILDIRS=str(home))) == [dot / "getmailrc"]
    with pytest.raises(ConfigError, match=r'Specified config/data dir ".*/nowhere" does not exist'):
        gm.select(gm.load(["-g", "~/nowhere"], env), ["-g", "~/nowhere"])
    nohome = Env(environ={}, stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)
    with pytest.raises(ConfigError, match="HOME is not set"):
        gm.select(gm.load([], nohome), [])


def test_listing_rc_names_and_the_data_handed_over(tmp_path: Path, isolated_env: Path) -> None:
    home = isolated_env
    gd = home / ".getmail"
    gd.mkdir()
    for name in ("work.rc", "home.rc", "oldmail-imap.example.org-993-alice-INBOX", "token.json", ".work.rc.swp"):
        (gd / name).write_text(GOOD.replace("imap.example.org", name))
    env = env_for(home)
    config = gm.load([], env)
    listed = [name for name in os.listdir(gd) if name in ("work.rc", "home.rc")]  # os.listdir's order
    assert [a.name for a in gm.select(config, [])] == listed
    assert set(config.data) == {str(gd / name) for name in listed}
    assert config.data[str(gd / "work.rc")] == (gd / "work.rc").read_bytes()
    (gd / "sub").mkdir()  # a directory in the listing: "is not a file", getmail stops
    with pytest.raises(ConfigError, match="is not a file"):
        gm.select(gm.load([], env), [])
    (gd / "getmailrc").write_text(GOOD)  # now getmail reads getmailrc alone; the others need -r
    config = gm.load([], env)
    assert [a.name for a in gm.select(config, [])] == ["getmailrc"]
    assert {a.name for a in config.accounts} == {"getmailrc", "work.rc", "home.rc"}
    assert [a.host for a in gm.select(config, ["-r", "home.rc"])] == ["home.rc"]
    outside = tmp_path / "rc" / "work"
    outside.parent.mkdir()
    outside.write_text(GOOD)
    argv = ["-r", str(gd / "work.rc"), "-r", "home.rc", "-r", str(outside), "-r", "work.rc"]
    config = gm.load(argv, env)
    assert [a.name for a in gm.select(config, argv)] == ["work.rc", "home.rc", str(outside)]  # twice: once
    assert [str(p) for p in gm.config_paths(argv, env)] == [str(gd / "work.rc"), str(gd / "home.rc"), str(outside),
                                                            str(gd / "work.rc")]  # fmt: skip
    with pytest.raises(ConfigError, match=r"configuration file .*/missing does not exist"):
        gm.select(gm.load(["-r", "missing"], env), ["-r", "missing"])


def test_dormant_rc_problems_are_told_not_errors(tmp_path: Path) -> None:
    gd = tmp_path / ".getmail"
    gd.mkdir()
    (gd / "getmailrc").write_text(GOOD)
    (gd / "old.rc").write_text("[retriever]\ntype = Gone\n")
    (gd / "getmail.log").write_text("2026-12-01 12:00:00 delivered\n")  # no rc file: not an account
    config = gm.load([], env_for(tmp_path))
    assert not config.problems
    ((name, error),) = config.dormant
    assert name == "old.rc" and error.line == 2 and "only for `-r old.rc`" in error.problem
    with pytest.raises(ConfigError, match="'Gone' is not a getmail retriever"):
        gm.select(config, ["-r", "old.rc"])


# --- the command line ------------------------------------------------------------------------------


def test_command_line_as_getmail_parses_it() -> None:
    command = gm.parse_argv(["-g", "~/m", "--rcfile=a", "-rb", "-vv", "--ge", "/x", "--dump"], keyring=False)
    assert (command.rcfile, command.getmaildir, command.dump) == (["a", "b"], "/x", True)
    assert gm.parse_argv(["--version"], keyring=False).stops and gm.parse_argv(["-h"], keyring=False).stops
    assert "no such option" in (gm.parse_argv(["--store-password-in-keyring"], keyring=False).error or "")
    assert gm.parse_argv(["--store-password-in-keyring"], keyring=True).store_keyring
    assert gm.parse_argv(["stray"], keyring=False).error == "unknown argument(s) ['stray'] ; try --help"
    config = gm.parse(GOOD, "/g/getmailrc", HOME)
    with pytest.raises(ToolUsageError):
        gm.select(config, ["--bogus"])
    assert gm.select(config, ["--version"]) == gm.select(config, ["--help"]) == []
    assert gm.needs_message([]) is False


def test_what_go_skips_before_it_connects(tmp_path: Path) -> None:
    gd = tmp_path / ".getmail"
    gd.mkdir()
    (gd / "a").write_text(GOOD)
    (gd / "b").write_text(GOOD.replace("[retriever]", "[options]\ndelete = true\n[retriever]"))
    (gd / "c").write_text(GOOD.replace("[retriever]", "[options]\nskip_imap_fetch_size = 1\nmax_message_size = 9\n"
                                                      "[retriever]"))  # fmt: skip
    env = env_for(tmp_path)

    def names(argv: list[str]) -> list[str]:
        return [a.name for a in gm.select(gm.load(argv, env), argv)]

    assert names(["-r", "a", "-r", "b", "-r", "c"]) == ["a", "b"]
    assert names(["-r", "a", "-i", "INBOX"]) == []  # --idle with read_all and not delete: skipped
    assert names(["-r", "b", "-i", "INBOX"]) == ["b"]
    assert names(["-r", "a", "-i", "INBOX", "-d"]) == ["a"]
    assert names(["-r", "b", "-i", "INBOX", "-l"]) == []
    assert names(["-r", "a", "-i", "INBOX", "-n"]) == ["a"]
    assert names(["-r", "a", "-r", "a", "-i", "INBOX"]) == ["a"]  # more than one rc: --idle is ignored
    assert names(["-r", "a", "--dump"]) == []


def test_a_refusal_counts_only_when_getmail_comes_to_it(tmp_path: Path) -> None:
    gd = tmp_path / ".getmail"
    gd.mkdir()
    (gd / "bad").write_text(GOOD.replace("username = alice", "username = alice\nssl_version = tlsv9"))
    (gd / "skip").write_text(
        GOOD.replace("[retriever]", "[options]\nskip_imap_fetch_size=1\ndelete_bigger_than=1\n[retriever]").replace(
            "username = alice", "username = a\nssl_version = x"
        )
    )
    env = env_for(tmp_path)
    assert gm.select(gm.load(["-r", "skip"], env), ["-r", "skip"]) == []
    with pytest.raises(ConfigError, match='unknown or unsupported ssl_version "tlsv9"'):
        gm.select(gm.load(["-r", "skip", "-r", "bad"], env), ["-r", "skip", "-r", "bad"])


# --- property: any text parses, or its problem is a ConfigError with a line or the file -------------

LINES = st.sampled_from(
    [
        "[retriever]", "[destination]", "[options]", "[DEFAULT]", "[filter1]", "[Filter2]", "type = Maildir",
        "type = SimpleIMAPSSLRetriever", "type = SimplePOP3Retriever", "type = Filter_TMDA", "server = s",
        "username = u", f"password = {SECRET}", f"password {SECRET}", "port = 995", "port = x", "port = (",
        "port = 1 +", "port = -1", "port = 1e999", "port = 9" * 30, "ssl_fingerprints = ('ab',)",
        "ssl_fingerprints = (", "ssl_version = tlsv1", "ssl_ciphers = ;", "ca_certs = ", "keyfile = k",
        "mailboxes = ALL", "mailboxes = ((((((", "port = {[1]: 2}", "ssl_fingerprints = {[1]}",
        "mailboxes = (b'\\xff',)", "port = '\\x00'", "delete = maybe", "verbose = x", "use_netrc = 1",
        "  continued", "= v", "[", "# c", "",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(LINES, st.text(max_size=12)), max_size=14))
def test_property_an_rc_resolves_or_says_why(lines: list[str]) -> None:
    config = gm.parse("\n".join(lines), "/home/alice/.getmail/f", HOME)
    for _, error in config.problems:
        assert error.source == "/home/alice/.getmail/f" and SECRET not in str(error)
    for account in config.accounts:
        assert SECRET not in str(account)
    try:
        gm.select(config, ["-r", "f"])
    except ConfigError as error:
        assert SECRET not in str(error)  # noqa: PT017 (a property, not one expected error)


# --- the oracle: getmail's own main() and go(), connecting nowhere -----------------------------------

ORACLE = r'''
import io, json, os, runpy, socket, ssl, sys

out, err, real_stdout = io.StringIO(), io.StringIO(), sys.stdout
sys.stdout, sys.stderr = out, err
main = runpy.run_path("/usr/bin/getmail", run_name="getmail_oracle")["main"]
from getmailcore import logging as glog, utilities as u
from getmailcore._retrieverbases import RetrieverSkeleton
from getmailcore.exceptions import getmailError

attempts = []

def refuse(address):
    """Every connection getmail starts: the retriever starting it, what its _connect() settled on."""
    frame, retriever, rc = sys._getframe(1), None, None
    while frame is not None:
        me = frame.f_locals.get("self")
        if retriever is None and isinstance(me, RetrieverSkeleton):  # (a retriever has a len(): often 0)
            retriever = me
        rc = frame.f_locals["configfile"] if frame.f_code.co_name == "go" else rc
        frame = frame.f_back
    conf, tls = retriever.conf, bool(getattr(retriever, "SSL", False))
    seen = {"rc": rc, "host": address[0], "port": address[1], "ssl": tls, "with": retriever.received_with,
            "user": conf.get("username")}
    if tls:
        key, cert = u.check_ssl_key_and_cert(conf)
        version = u.check_ssl_version(conf)
        seen.update(trust=u.check_ca_certs(conf), key=key, cert=cert, ciphers=u.check_ssl_ciphers(conf) or None,
                    version=None if version is None else ssl._SSLMethod(version).name,
                    servername=conf.get("ssl_cert_hostname") or None)
        try:  # CertMixIn.ssl_cipher_hash, after the handshake and before the login
            seen["fingerprints"] = list(u.check_ssl_fingerprints(conf))
        except getmailError as exc:
            seen["fingerprint_error"] = str(exc)
    attempts.append(seen)
    raise ConnectionRefusedError(111, "refused by the oracle")

socket.create_connection = lambda address, *args, **kwargs: refuse(address)
socket.getaddrinfo = lambda host, port, *args, **kwargs: refuse((host, port))
results = []
for case in json.load(sys.stdin):
    attempts.clear()
    for stream in (out, err):
        stream.seek(0)
        stream.truncate()
    glog.Logger().clearhandlers()
    glog.Logger().addhandler(out, glog.INFO, maxlevel=glog.INFO)
    glog.Logger().addhandler(err, glog.WARNING)
    os.environ.clear()
    os.environ.update(case["env"])
    os.chdir(case["cwd"])
    sys.argv = ["getmail", *case["argv"]]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    results.append({"exit": code, "attempts": list(attempts), "err": err.getvalue()})
json.dump(results, real_stdout)
'''


def oracle(cases: list[Case]) -> list[dict[str, Any]]:
    """getmail's own reading of each case (one /usr/bin/python3 for all of them)."""
    need("getmail")
    payload = json.dumps([{"argv": c.argv, "env": {**c.env, "PATH": os.defpath}, "cwd": c.cwd} for c in cases])
    done = subprocess.run(
        ["/usr/bin/python3", "-c", ORACLE], input=payload, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@dataclass
class Case:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    files: dict[str, str] = field(default_factory=dict)  # for the report of a divergence


VERSIONS = {"PROTOCOL_TLS": (), "PROTOCOL_TLSv1": ("TLSv1",), "PROTOCOL_TLSv1_1": ("TLSv1.1",),
            "PROTOCOL_TLSv1_2": ("TLSv1.2",)}  # fmt: skip


def view(account: Account) -> tuple[Any, ...]:
    return (
        os.path.basename(account.name), account.protocol.value, account.mode.value, account.host, account.port,
        account.servername, account.trust_file, account.fingerprints, account.tls_versions, account.ciphers,
        account.client_cert, account.client_key, account.user,
    )  # fmt: skip


def seen(attempt: dict[str, Any], cwd: str) -> tuple[Any, ...]:
    def at(path: str | None) -> str | None:
        return None if path is None else os.path.join(cwd, path)

    version = attempt.get("version")
    return (
        attempt["rc"], "imap" if "IMAP" in attempt["with"] else "pop3", "implicit" if attempt["ssl"] else "none",
        attempt["host"], attempt["port"], attempt.get("servername"), at(attempt.get("trust")),
        tuple(attempt.get("fingerprints", ())), VERSIONS[version] if version else (), attempt.get("ciphers"),
        at(attempt.get("cert")), at(attempt.get("key")), attempt["user"],
    )  # fmt: skip


def getmail_sees(result: dict[str, Any], case: Case) -> list[tuple[Any, ...]] | str:
    """What getmail connected to (each rc once), or that it stopped: a usage, configuration or operation
    error, an unhandled exception, or an ssl_fingerprints setting it refuses once the handshake is done."""
    if result["exit"] in (2, 3, 4) or any("fingerprint_error" in a for a in result["attempts"]):
        return "stops"
    return list(dict.fromkeys(seen(attempt, case.cwd) for attempt in result["attempts"]))


def mailpin_sees(case: Case) -> list[tuple[Any, ...]] | str:
    env = Env(environ=dict(case.env), stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)
    before = os.getcwd()
    os.chdir(case.cwd)
    try:
        command = gm.parse_argv(case.argv, keyring=False)
        chosen = gm.select_parsed(gm.load_parsed(command, env), command)
    except ConfigError as error:
        assert SECRET not in str(error)  # noqa: PT017 (any refusal, of many cases)
        return "stops"
    finally:
        os.chdir(before)
    assert all(SECRET not in str(account) for account in chosen)
    return [view(account) for account in chosen]


# --- random getmaildirs, rc files and command lines (seeded) ------------------------------------------

OPTIONS = [
    "delete = true", "delete = 0", "read_all = no", "read_all = yes", "skip_imap_fetch_size = true",
    "max_message_size = 100", "delete_bigger_than = 5", "verbose = 0", "verbose = 2", "message_log = ~/getmail.log",
]  # fmt: skip
FAULTS = [
    "type-unknown", "option", "no-retriever", "no-type", "no-server", "no-username", "garbage", "port", "ca_certs",
    "ssl_fingerprints", "ssl_version", "ssl_ciphers", "mailboxes", "use_peek", "timeout", "client", "envelope",
    "destination", "filter",
]  # fmt: skip
HOSTS = ["imap.example.org", "pop.example.net", "127.0.0.1", "mail.example.com", "::1"]


class Generator:
    def __init__(self, rng: random.Random, root: Path, pki: TestPKI) -> None:
        self.rng, self.root = rng, root
        # Real PEM files: poplib/imaplib load a client certificate before they connect.
        good = pki.directory / "good"
        self.pems = {"ca.pem": pki.ca_pem.read_bytes(), "client.pem": (good / "chain.pem").read_bytes(),
                     "client.key": (good / "key.pem").read_bytes()}  # fmt: skip

    def fingerprint(self) -> str:
        text = "".join(self.rng.choice("0123456789abcdef") for _ in range(64))
        text = text.upper() if self.rng.random() < 0.3 else text
        return ":".join(text[i : i + 2] for i in range(0, 64, 2)) if self.rng.random() < 0.4 else text

    def rc(self, home: Path) -> str:
        """An rc file getmail reads (values in the forms it accepts), or — one time in five — with one fault."""
        rng = self.rng
        fault = rng.choice(FAULTS) if rng.random() < 0.2 else ""
        kind = "SimpleIMAPSSLRetrieverX" if fault == "type-unknown" else rng.choice(list(TYPES))
        out = ["[DEFAULT]", "port = 7", "server = default.example"] if rng.random() < 0.1 else []
        if rng.random() < 0.3 or fault == "option":
            out += ["[options]", *rng.sample(OPTIONS, k=rng.choice([0, 1, 1, 2]))]
            out += [rng.choice(["delete = maybe", "verbose = lots", "use_netrc = 1"])] if fault == "option" else []
        out += [] if fault == "no-retriever" else ["[retriever]"]
        out += [] if fault == "no-type" else [f"{rng.choice(['type', 'Type'])} {rng.choice(['=', ':'])} {kind}"]
        out += [] if fault == "no-server" else [f"{rng.choice(['server', 'Server'])} = {rng.choice(HOSTS)}"]
        out += [] if fault == "no-username" else [f"username = user{rng.randint(1, 9)}@example.org"]
        out.append(f"password {SECRET}" if fault == "garbage" else f"password = {SECRET}")
        good = {
            "port": ["995", "0x3e5", "'1143'", "2e3", "10993", "\n    110"],
            "ca_certs": [str(home / "ca.pem"), "~/ca.pem", "$CERTS/ca.pem", "${CERTS}/ca.pem", "ca.pem"],
            "ssl_fingerprints": [f"('{self.fingerprint()}',)", f"('{self.fingerprint()}', '{self.fingerprint()}')",
                                 "()", ""],
            "ssl_version": ["TLSv1_2", "tlsv1", "SSLv23", "tlsv1_1"],
            "ssl_ciphers": ["HIGH:!aNULL", "ECDHE+AESGCM", ""],
            "ssl_cert_hostname": ["mail.example.net", ""],
            "mailboxes": ["('INBOX', 'Sent')", "ALL", "'ALL'", "(b'INBOX',)"],
            "use_peek": ["no", "1"],
            "timeout": ["30", "1e2"],
        }  # fmt: skip
        bad = {"port": ["pop3s", "'x'"], "ca_certs": ["gone.pem", ""], "ssl_version": ["sslv3", "tlsv1_3", ""],
               "ssl_fingerprints": [f"'{self.fingerprint()}'", "('abcd',)", "("], "ssl_ciphers": ["bad;cipher"],
               "mailboxes": ["(1,)", "('INBOX',"], "use_peek": ["maybe"], "timeout": ["'x'"]}  # fmt: skip
        for option, values in good.items():
            if fault == option:
                out.append(f"{option} = {rng.choice(bad[option])}")
            elif rng.random() < (0.3 if option.startswith(("ca_", "ssl_", "port")) else 0.1):
                out.append(f"{option} = {rng.choice(values)}")
        if fault == "client":
            out += rng.choice([["certfile = ~/client.pem"], ["keyfile = ~/client.key"],
                               ["certfile = ~/client.pem", "keyfile = ~/nokey"]])  # fmt: skip
        elif rng.random() < 0.2:
            out += ["certfile = ~/client.pem", "keyfile = ~/client.key"]
        if "Multidrop" in kind and "SDPS" not in kind and fault != "envelope":
            out.append("envelope_recipient = delivered-to:1")
        if fault == "destination":
            out += rng.choice([[], ["", "[destination]", "type = Maildirr"], ["", "[destination]"]])
        else:
            out += ["", "[destination]", "type = Maildir", "path = ~/Mail/"]
        if fault == "filter":
            out += rng.choice([["[Filter1]", "type = Filter_external"], ["[filter1]", "type = Filter_none"]])
        return "\n".join(out) + "\n"

    def case(self, number: int) -> Case:
        rng = self.rng
        home = self.root / f"case{number}"
        for sub in ("cur", "new", "tmp"):
            (home / "Mail" / sub).mkdir(parents=True)
        for name, pem in self.pems.items():
            (home / name).write_bytes(pem)
        env, argv = {"HOME": str(home), "CERTS": str(home)}, []
        layout = rng.choice(["dot", "dot", "xdg", "xdg-default", "both", "g", "g", "none"])
        if layout in ("xdg", "both"):
            env["XDG_CONFIG_HOME"] = str(home / "cfg")
        gd = {"dot": home / ".getmail", "xdg": home / "cfg" / "getmail", "both": home / "cfg" / "getmail",
              "xdg-default": home / ".config" / "getmail", "g": home / "custom"}.get(layout)  # fmt: skip
        if layout == "both":
            (home / ".getmail").mkdir()
            (home / ".getmail" / "getmailrc").write_text(self.rc(home))
        if layout == "g":
            argv += ["-g", rng.choice(["~/custom", "$CERTS/custom", str(home / "custom"), "custom"])]
        names = rng.sample(["getmailrc", "work.rc", "home", "isp-pop"], k=rng.randint(1, 3))
        files: dict[str, str] = {}
        if gd is not None:
            gd.mkdir(parents=True)
            for name in names:
                files[name] = self.rc(home)
                (gd / name).write_text(files[name])
            for noise in rng.sample(["oldmail-pop.example.net-995-u", "tokens.json", ".work.rc.swp", "notes.txt", "d"],
                                    k=rng.choice([0, 0, 1, 2])):  # fmt: skip
                (gd / noise).mkdir() if noise == "d" else (gd / noise).write_text("not an rc file\n")
        roll = rng.random()
        if roll < 0.45 and gd is not None:
            picked = rng.sample(names, k=rng.randint(1, len(names)))
            picked += [picked[0]] if rng.random() < 0.1 else []
            for name in picked:
                argv += ["-r", str(gd / name) if rng.random() < 0.2 else name]
        elif roll < 0.55:
            outside = home / "elsewhere" / f"out{number}.rc"
            outside.parent.mkdir()
            files[str(outside)] = self.rc(home)
            outside.write_text(files[str(outside)])
            argv += ["-r", str(outside)] + (["-r", "missing"] if rng.random() < 0.2 else [])
        extras = ["-d", "-l", "-a", "-n", "-v", "-q", "--fingerprint", "-s,", "--dump", "-i", "-iINBOX", "--idle=Sent"]
        for extra in rng.sample(extras, k=rng.choice([0, 0, 1, 2])):
            argv += [extra, "INBOX"] if extra == "-i" else [extra]
        if rng.random() < 0.05:
            argv.append(rng.choice(["--version", "--bogus", "stray", "--ge"]))
        return Case(argv, env, str(home), files)


def test_oracle_getmail_connects_where_mailpin_says(tmp_path: Path, pki: TestPKI) -> None:
    rng = random.Random(20261204)
    generator = Generator(rng, tmp_path, pki)
    cases = [generator.case(number) for number in range(60 * SCALE)]
    results = oracle(cases)
    divergences = []
    outcomes = {"connects": 0, "nowhere": 0, "stops": 0}
    for case, result in zip(cases, results, strict=True):
        expected, got = getmail_sees(result, case), mailpin_sees(case)
        outcomes["stops" if expected == "stops" else "connects" if expected else "nowhere"] += 1
        if expected != got:
            divergences.append(f"getmail {case.argv} (HOME={case.env['HOME']}): getmail {expected}, mailpin {got}\n"
                               f"  getmail said: {result['err'][-400:]}\n  files: {case.files}")  # fmt: skip
    assert not divergences, "\n".join(divergences)
    assert min(outcomes.values()) >= 5 * SCALE, outcomes  # each kind of outcome is well represented


def test_oracle_the_retriever_table_is_getmails() -> None:
    """RETRIEVERS/ITEMS against the classes themselves: each `_confitems` (order, ConfItem class,
    required), the default port, TLS or not — and what destination and filter types exist."""
    need("getmail")
    script = r"""
import json, getmailcore.retrievers as r, getmailcore.destinations as d, getmailcore.filters as f
from getmailcore.baseclasses import ConfigurableBase
def usable(module):
    classes = {name: getattr(module, name) for name in dir(module) if isinstance(getattr(module, name), type)}
    return sorted(name for name, c in classes.items() if issubclass(c, ConfigurableBase) and hasattr(c, "_confitems"))
print(json.dumps({"retrievers": {name: {
    "tls": bool(getattr(getattr(r, name), "SSL", False)), "with": getattr(r, name).received_with,
    "items": [[i.name, type(i).__name__, i.required, i.default if i.name == "port" else None]
              for i in getattr(r, name)._confitems]} for name in r.__all__},
    "usable": usable(r), "destinations": usable(d), "filters": usable(f)}))
"""
    done = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, check=True, timeout=60)
    found = json.loads(done.stdout)
    from mailpin.configs.getmail_rc import DESTINATIONS, FILTERS

    kinds = {"ConfDirectory": "dir", "ConfInt": "int", "ConfString": "str", "ConfPassword": "str", "ConfBool": "bool",
             "ConfTupleOfStrings": "tuple", "ConfTupleOfUnicode": "mailboxes", "ConfFile": "file"}  # fmt: skip
    assert sorted(found["retrievers"]) == sorted(RETRIEVERS) == sorted(found["usable"])
    for name, theirs in found["retrievers"].items():
        mine = RETRIEVERS[name]
        items = [(n, kinds[k], req) for n, k, req, _ in theirs["items"] if n != "configparser"]
        assert items == [(item, *ITEMS[item]) for item in mine.items], name
        port = next(default for n, _, _, default in theirs["items"] if n == "port")
        assert (port, theirs["tls"]) == (mine.port, mine.tls), name
        assert mine.protocol is (Protocol.IMAP if "IMAP" in theirs["with"] else Protocol.POP3)
    assert sorted(DESTINATIONS) == found["destinations"] and sorted(FILTERS) == found["filters"]


def test_oracle_where_mailpin_is_stricter_on_purpose(tmp_path: Path) -> None:
    """getmail evaluates `port` as Python and connects to a port out of range; mailpin refuses both."""
    cases = []
    for number, port in enumerate(("990 + 3", "70000", "__import__('os').getpid() and 993")):
        home = tmp_path / f"strict{number}"
        (home / ".getmail").mkdir(parents=True)
        for sub in ("cur", "new", "tmp"):
            (home / "Mail" / sub).mkdir(parents=True)
        text = GOOD.replace("username = alice", f"username = alice\nport = {port}")
        (home / ".getmail" / "getmailrc").write_text(text)
        cases.append(Case([], {"HOME": str(home)}, str(home)))
    for case, result in zip(cases, oracle(cases), strict=True):
        assert [attempt["host"] for attempt in result["attempts"]] == ["imap.example.org"]  # getmail does connect
        assert mailpin_sees(case) == "stops"


def test_getmail_reads_an_rc_handed_as_a_memfd(tmp_path: Path) -> None:
    """What mailpin's hand-over relies on: `getmail -r /proc/self/fd/N` reads an in-memory copy (getmail
    joins the getmaildir with an absolute -r as os.path.join does: the path stays), and its state
    (oldmail-SERVER-PORT-USER[-MAILBOX]) still goes to the getmaildir."""
    getmail = need("getmail")
    gd, mail = tmp_path / "gd", tmp_path / "Mail"
    gd.mkdir()
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True)
    text = f"[retriever]\ntype = SimpleIMAPSSLRetriever\nserver = 127.0.0.1\nport = 9\nusername = alice\n" \
           f"password = {SECRET}\n[destination]\ntype = Maildir\npath = {mail}/\n"  # fmt: skip
    fd = os.memfd_create("getmailrc")
    try:
        os.write(fd, text.encode())
        done = subprocess.run(
            [getmail, "--getmaildir", str(gd), "-r", f"/proc/self/fd/{fd}"], pass_fds=(fd,), capture_output=True,
            text=True, timeout=60, check=False, env={"PATH": os.defpath, "HOME": str(tmp_path)},
        )  # fmt: skip
    finally:
        os.close(fd)
    assert done.returncode == 127, done.stderr  # it read the rc file and tried 127.0.0.1:9
    assert "SimpleIMAPSSLRetriever:alice@127.0.0.1:9" in done.stdout
    assert f"{fd}: socket error" in done.stderr  # getmail labels the rc by its base name
