"""offlineimap config reader: the corpus, the command line, and proof against the real offlineimap3.

Every non-broken corpus config is run by the real offlineimap against the lab Dovecot, with `-k`
overrides pointing it at the lab (host, port, trust, credentials, local folders). offlineimap's own
`-d imap` log says where it connected ("Establishing connection to HOST:PORT") and how (the
`level 'tls_compat'` line only on its Implicit TLS path, "Using STARTTLS connection" on STARTTLS);
that observed endpoint must equal what `select()` resolves for the very same argv.
"""

from __future__ import annotations

import configparser
import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpin.configs import offlineimap as oi
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode
from tests.conftest import need
from tests.lab.dovecot import Dovecot
from tests.lab.pki import TestPKI, served_leaf

CORPUS = Path(__file__).parent / "data" / "offlineimap"
HOME = "/home/alice"
CA = "/etc/ssl/certs/ca-certificates.crt"
I, S, N = Mode.IMPLICIT, Mode.STARTTLS, Mode.NONE  # noqa: E741


def corpus(name: str) -> oi.OfflineimapConfig:
    path = CORPUS / name
    return oi.parse(path.read_text(), str(path), HOME, environ={}, cwd="/work")


# file -> {account: (host, port, mode, trust_file)}; every account offlineimap would sync.
EXPECTED: dict[str, dict[str, tuple[str | None, int | None, Mode, str | None]]] = {
    "hm-basic.conf": {"work": ("imap.example.org", 993, I, CA)},
    "hm-usestarttls.conf": {"work": ("imap.example.org", 993, I, CA)},  # ssl wins over starttls
    "hm-notls.conf": {"lan": ("mail.home.arpa", 143, N, None)},
    "hm-multi.conf": {
        "personal": ("imap.gmail.com", 993, I, CA),
        "work": ("outlook.office365.com", 993, I, CA),
        "uni": ("imap.uni.example", 143, S, None),
    },
    "default-interpolation.conf": {"main": ("imap.example.net", 10993, I, "/home/alice/certs/example.net.pem")},
    "gmail.conf": {"gmail": ("imap.gmail.com", 993, I, "/etc/ssl/certs/ca-certificates.crt")},  # OS-DEFAULT, Debian
    "fingerprint.conf": {"selfhosted": ("mail.selfhosted.example", 993, I, None)},
    "starttls-opportunistic.conf": {"legacy": ("imap.legacy.example", 143, S, CA)},
    "evals.conf": {"dyn": (None, None, I, CA)},
    "tunnel.conf": {"tunneled": (None, None, N, None)},
    "tls-level.conf": {"strict": ("imap.strict.example", 993, I, CA)},
    "dormant-broken-account.conf": {"main": ("imap.main.example", 993, I, CA)},
    "mbnames-complete.conf": {"main": ("imap.main.example", 993, I, CA)},
    "several-accounts.conf": {
        "home": ("imap.home.example", 993, I, CA),
        "office": ("imap.office.example", 1993, I, CA),
        "archive": ("imap.office.example", 993, I, CA),
    },
}
# file -> (line, words of the problem); raised by parse() or, per account, by select().
BROKEN = {
    "broken-before-section.conf": (1, "before any [section]"),
    "broken-duplicate-option.conf": (7, "'remoterepository' appears twice"),
    "broken-interpolation.conf": (14, "[Repository work-remote] remotehost: %(domain)s"),
    "broken-no-trust.conf": (13, "neither sslcacertfile nor cert_fingerprint"),
    "broken-bad-boolean.conf": (17, "'maybe' is not a boolean"),
    "broken-mbnames-empty.conf": (22, "[mbnames] lacks peritem, header, sep, footer, filename"),
    "broken-status-backend.conf": (8, "status_backend is not supported by offlineimap 8"),
}


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted([*EXPECTED, *BROKEN])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_accounts(name: str) -> None:
    config = corpus(name)
    got = {a.name: (a.host, a.port, a.mode, a.trust_file) for a in config.accounts}
    assert got == EXPECTED[name]
    assert not config.problems
    for account in config.accounts:
        assert account.opportunistic is (account.mode is S)
        assert account.source.startswith(f"{CORPUS / name}:")
        line = int(account.source.rsplit(":", 1)[1])
        assert (CORPUS / name).read_text().splitlines()[line - 1] == f"[Account {account.name}]"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_corpus_broken(name: str) -> None:
    line, words = BROKEN[name]
    with pytest.raises(ConfigError) as caught:
        oi.select(corpus(name), ["-o"])
    assert caught.value.line == line
    assert words in caught.value.problem
    assert str(caught.value).startswith(f"{CORPUS / name}:{line}: ")


def test_an_account_offlineimap_never_syncs_is_told_not_an_error() -> None:
    config = corpus("dormant-broken-account.conf")
    assert not config.problems
    ((name, problem),) = config.dormant
    assert name == "old" and problem.line == 12 and "remoterepository gone" in problem.problem
    assert "offlineimap reads it only for `-a old`" in problem.problem
    assert [a.name for a in oi.select(config, ["-o"])] == ["main"]
    with pytest.raises(ConfigError, match="remoterepository gone"):
        oi.select(config, ["-o", "-a", "old"])  # named: offlineimap would fail on it, and so does mailpin


def test_accounts_and_check_tell_a_dormant_problem_and_exit_by_the_rest(isolated_env: Path) -> None:
    from tests.test_pins_real import cli

    text = (CORPUS / "dormant-broken-account.conf").read_text()
    (isolated_env / ".offlineimaprc").write_text(text.replace("imap.main.example", "localhost\nremoteport = 9"))
    code, out, err = cli("accounts")
    assert code == 0 and "note: " in out and "`-a old`" in out and not err, out + err
    code, out, err = cli("check")
    assert code == 75 and "old" not in out + err  # unreachable "main" decides; "old" is no error


def test_an_incomplete_mbnames_section_is_refused_also_in_discovery() -> None:
    config = corpus("broken-mbnames-empty.conf")
    ((where, problem),) = config.problems
    assert where == "[mbnames]" and problem.line == 22
    # -k can complete the section: offlineimap applies it before reading [mbnames], and so does mailpin.
    edits = [f"mbnames:{option}=x" for option in ("peritem", "header", "sep", "footer", "filename")]
    argv = ["-o", *(arg for edit in edits for arg in ("-k", edit))]
    assert [a.name for a in oi.select(config, argv)] == ["main"]


def test_details_of_trust_and_notes() -> None:
    fp = corpus("fingerprint.conf").accounts[0]
    assert fp.fingerprints == ("abcdef0123456789" * 4, "0123456789abcdef" * 4)  # colons gone, lower case
    assert not fp.system_trust and fp.trust == "pinned fingerprint"
    assert ("cert_fingerprint", fp.pin_options[0][1]) == fp.pin_options[0]
    gmail = corpus("gmail.conf").accounts[0]
    # OS-DEFAULT: the distribution's bundle that offlineimap picks, that file alone (not SSL_CERT_FILE)
    assert gmail.trust_file is not None and not gmail.system_trust
    assert gmail.pin_options == (("sslcacertfile", "OS-DEFAULT"),)
    uni = corpus("hm-multi.conf").accounts[2]
    assert not uni.certcheck and any("STARTTLS only if the server offers it" in n for n in uni.notes)
    assert any("starttls = yes is ignored" in n for n in corpus("hm-usestarttls.conf").accounts[0].notes)
    dyn = corpus("evals.conf").accounts[0]
    assert any("remotehosteval (line 17)" in n for n in dyn.notes)
    assert any("remoteporteval (line 18)" in n for n in dyn.notes)
    assert any("pythonfile ~/.offlineimap.py" in n for n in dyn.notes)
    tunnel = corpus("tunnel.conf").accounts[0]
    assert tunnel.transport == "tunnel openssl s_client -quiet -connect imap.example.org:993"
    archive = corpus("several-accounts.conf").accounts[2]
    assert any("local repository archive-local is IMAP too" in n for n in archive.notes)


# --- the command line ------------------------------------------------------------------------------


def endpoints(accounts: list[Account]) -> list[tuple[str, str | None, int | None, Mode]]:
    return [(a.name, a.host, a.port, a.mode) for a in accounts]


def test_select_follows_general_accounts_and_dash_a() -> None:
    config = corpus("several-accounts.conf")
    assert [a.name for a in oi.select(config, [])] == ["home", "office"]
    assert [a.name for a in oi.select(config, ["-a", "archive,home,archive"])] == ["archive", "home"]
    assert [a.name for a in oi.select(config, ["-aoffice"])] == ["office"]
    with pytest.raises(ConfigError, match=r"-a home,nope: account 'nope' does not exist; valid accounts: home, "):
        oi.select(config, ["-a", "home,nope"])
    with pytest.raises(ConfigError, match="'office ' does not exist"):  # offlineimap only lstrips names
        oi.select(config, ["-a", "office ,home"])


def test_k_overrides_resolve_like_offlineimap() -> None:
    config = corpus("hm-basic.conf")
    argv = ["-k", "Repository_work-remote:remoteport=1143", "-k", "Repository_work-remote:ssl=no"]
    (work,) = oi.select(config, argv)
    assert (work.port, work.mode, work.opportunistic) == (1143, N, False)  # the file says starttls = no
    (work,) = oi.select(config, [*argv, "-k", "Repository_work-remote:starttls=yes"])
    assert (work.port, work.mode, work.opportunistic) == (1143, S, True)
    assert "-k Repository_work-remote:ssl=no applied (command line)" in work.notes
    assert endpoints(oi.select(config, ["-k", "accounts=work"])) == [("work", "imap.example.org", 993, I)]
    with pytest.raises(ConfigError, match=r"there is no \[Repository nope\] section"):
        oi.select(config, ["-k", "Repository_nope:ssl=no"])
    with pytest.raises(ConfigError, match="expected"):
        oi.select(config, ["-k", "ssl"])
    with pytest.raises(ConfigError, match="interpolation"):  # configparser's before_set check
        oi.select(config, ["-k", "Repository_work-remote:remotehost=100%"])
    with pytest.raises(ConfigError, match="does not exist"):
        oi.select(config, ["-k", "accounts=other"])
    (dflt,) = oi.select(config, ["-k", "DEFAULT:remoteport=2993", "-k", "Repository_work-remote:remoteport=3993"])
    assert dflt.port == 3993  # a section's own value beats [DEFAULT]


def test_modes_that_do_not_connect_or_fail_first() -> None:
    config = corpus("hm-basic.conf")
    for argv in (["--help"], ["-h"], ["--version"], ["-V"], ["--mbnames-prune"], ["--migr"]):
        assert oi.select(config, argv) == [], argv
    assert [a.name for a in oi.select(config, ["--info"])] == ["work"]  # --info connects
    assert [a.name for a in oi.select(config, ["--delete-folder", "x", "-a", "work"])] == ["work"]
    assert oi.select(config, ["--delete-folder", "x", "--dry-run"]) == []
    with pytest.raises(ConfigError, match="offlineimap would reject it"):
        oi.select(config, ["-a"])
    with pytest.raises(ConfigError, match="offlineimap would reject it"):
        oi.select(config, ["--d"])  # ambiguous: --dry-run, --delete-folder
    with pytest.raises(ConfigError, match="UI 'fancy' does not exist"):
        oi.select(config, ["-u", "fancy"])
    assert [a.name for a in oi.select(config, ["-o", "-q", "-1", "-s", "-d", "imap", "-f", "INBOX", "-u", "basic"])]


def test_general_section_rules() -> None:
    nogeneral = oi.parse("[Account a]\nremoterepository = r\n", "f", HOME)
    with pytest.raises(ConfigError, match=r"no \[general\] section"):
        oi.select(nogeneral, ["-a", "a"])
    noaccounts = oi.parse("[general]\n[Account a]\nremoterepository = r\n", "f", HOME)
    with pytest.raises(ConfigError, match="no accounts option"):
        oi.select(noaccounts, ["-a", "a"])  # offlineimap reads [general] accounts even with -a


def test_gmail_port_stays_993_without_ssl_and_preauth_tunnel_is_clear() -> None:
    text = (CORPUS / "gmail.conf").read_text().replace("type = Gmail", "type = Gmail\nssl = no")
    (gmail,) = oi.parse(text, "f", HOME).accounts
    assert (gmail.port, gmail.mode) == (993, S)  # Gmail.getport ignores ssl
    text = (CORPUS / "tunnel.conf").read_text().replace("transporttunnel", "preauthtunnel")
    (pre,) = oi.parse(text + "ssl = no\n", "f", HOME).accounts
    assert (pre.host, pre.mode, pre.transport) == (
        None,
        N,
        "preauth tunnel openssl s_client -quiet -connect imap.example.org:993",
    )
    both = oi.parse(text + "transporttunnel = x\n", "f", HOME)
    assert "sets both preauthtunnel and transporttunnel" in both.problems[0][1].problem


def test_errors_carry_lines() -> None:
    with pytest.raises(ConfigError) as caught:
        oi.parse("[general]\r\naccounts = a\r\n[general]\r\n", "f", HOME)
    assert (caught.value.line, caught.value.problem) == (3, "section [general] appears twice")
    with pytest.raises(ConfigError) as caught:
        oi.parse("[general]\nno delimiter here\n", "f", HOME)
    assert caught.value.line == 2
    config = oi.parse((CORPUS / "tls-level.conf").read_text().replace("ssl_version = tls1_2\n", ""), "f", HOME)
    assert config.problems[0][1].line == 19 and "needs ssl_version" in config.problems[0][1].problem


# --- where offlineimap looks -----------------------------------------------------------------------


def env_for(home: Path, **environ: str) -> Env:
    return Env(environ={"HOME": str(home), **environ}, stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)


def test_config_paths_and_load(isolated_env: Path, tmp_path: Path) -> None:
    home = isolated_env
    env = env_for(home)
    assert oi.config_paths([], env) == []
    empty = oi.load([], env)
    assert (empty.accounts, empty.found) == ((), False)
    with pytest.raises(ConfigError, match="no offlineimap config file"):
        oi.select(empty, [])
    rc = home / ".offlineimaprc"
    rc.write_text((CORPUS / "hm-basic.conf").read_text())
    assert oi.config_paths([], env) == [rc]
    xdg = home / ".config" / "offlineimap" / "config"
    xdg.parent.mkdir(parents=True)
    xdg.write_text((CORPUS / "gmail.conf").read_text())
    assert oi.config_paths([], env) == [xdg]  # XDG first, when it exists
    assert oi.load([], env).accounts[0].name == "gmail"
    other = tmp_path / "xdg"
    assert oi.config_paths([], env_for(home, XDG_CONFIG_HOME=str(other))) == [rc]
    assert oi.config_paths(["-c", "~/missing"], env) == [home / "missing"]  # explicit: even if missing
    with pytest.raises(ConfigError, match="missing: no such file"):
        oi.load(["-c", "~/missing"], env)
    assert oi.config_paths(["-c", ""], env) == [xdg]  # `-c ''` is no -c for offlineimap
    bad = tmp_path / "latin1"
    bad.write_bytes(b"[general]\naccounts = caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        oi.load(["-c", str(bad)], env)
    assert caught.value.line == 2
    assert oi.needs_message(["-a", "x"]) is False


# --- property: any text parses or raises ConfigError with a line ------------------------------------

LINES = st.sampled_from(
    [
        "[general]", "[DEFAULT]", "[Account a]", "[Account  a]", "[Repository r]", "[Repository l]", "accounts = a",
        "accounts = a, b", "remoterepository = r", "localrepository = l", "type = IMAP", "type = Gmail",
        "type = Maildir", "remotehost = h", "remotehost = %(x)s", "x = %(remotehost)s", "remoteport = 99",
        "remoteport = x", "ssl = no", "ssl = maybe", "starttls = off", "sslcacertfile = OS-DEFAULT",
        "cert_fingerprint = AA:bb, ,", "tls_level = tls_secure", "ssl_version = tls1_2", "transporttunnel = c",
        "preauthtunnel = p", "remotehosteval = h()", "auth_mechanisms = GSSAPI", "proxy = SOCKS5:h:1080",
        "  continued", "= v", "[", "100%", "# c", ";", "", "remoteport = 70000",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(LINES, st.text(max_size=12)), max_size=14), argv=st.lists(st.sampled_from(
    ["-o", "-a", "a", "a,b", "-k", "ssl=no", "Repository_r:ssl=no", "--info", "-V", "-c", "--dry-run", "-f", "x"]
), max_size=5))  # fmt: skip
def test_property_parse_and_select_raise_only_config_errors(lines: list[str], argv: list[str]) -> None:
    text = "\n".join(lines)
    try:
        config = oi.parse(text, "f", HOME)
    except ConfigError as exc:
        assert exc.line is not None or exc.source == "f"  # noqa: PT017 (a property, not one expected error)
        return
    for _, problem in config.problems:
        assert isinstance(problem, ConfigError)
    try:
        oi.select(config, argv)
    except ConfigError:
        pass


# --- the real offlineimap --------------------------------------------------------------------------

CONNECTED = re.compile(r"^Establishing connection(?: to (?P<host>[^:]+):(?P<port>.+?))? \((?P<repo>[^)]+)\)$", re.M)
PASS_PY = 'def get_pass(*args):\n    return b"secret"\n\ndef get_user(*args):\n    return "test"\n'


@dataclass
class Lab:
    dovecot: Dovecot
    pki: TestPKI
    tmp: Path

    def argv(
        self, path: Path, account: Account, *, port: int | None = None, fingerprint: str | None = None
    ) -> list[str]:
        """offlineimap's argv for one account, pointed at the lab by -k overrides only."""
        raw = configparser.ConfigParser()
        raw.read(path)
        remote = raw.get(f"Account {account.name}", "remoterepository")
        local = raw.get(f"Account {account.name}", "localrepository")
        (self.tmp / "mail" / account.name).mkdir(parents=True, exist_ok=True)
        (self.tmp / "pass.py").write_text(PASS_PY)
        k = [f"metadata={self.tmp / 'meta'}", f"pythonfile={self.tmp / 'pass.py'}"]
        k.append(f"Repository_{local}:localfolders={self.tmp / 'mail' / account.name}")
        r = f"Repository_{remote}:"
        if port is None:
            port = self.dovecot.imaps_port if account.mode is I else self.dovecot.imap_port
        if account.transport:
            ca, lab = self.pki.ca_pem, f"localhost:{self.dovecot.imaps_port}"
            k.append(f"{r}transporttunnel=openssl s_client -quiet -verify_return_error -CAfile {ca} -connect {lab}")
        elif raw.has_option(remote.join(("Repository ", "")), "remotehosteval"):
            k += [f'{r}remotehosteval="localhost"', f"{r}remoteporteval={port}"]
        else:
            k += [f"{r}remotehost=localhost", f"{r}remoteport={port}"]
        k += [f"{r}remoteuser=test", f"{r}remotepass=secret"]
        if raw.has_option(f"Account {account.name}", "synclabels"):
            # Gmail's X-GM-LABELS are not Dovecot's: with mail in the lab INBOX (other tests deliver
            # some) offlineimap would FETCH them and fail. The endpoint is what is checked here.
            k.append(f"Account_{account.name}:synclabels=no")
        if fingerprint is not None or account.fingerprints:
            k.append(
                f"{r}cert_fingerprint={fingerprint or hashlib.sha256(served_leaf(self.dovecot.imaps_port)).hexdigest()}"
            )
        elif account.mode is I:
            k.append(f"{r}sslcacertfile={self.pki.ca_pem}")
        argv = ["-o", "-u", "basic", "-c", str(path), "-a", account.name]
        argv += [] if account.transport else ["-d", "imap"]  # offlineimap3: -d imap crashes its tunnel code
        return argv + [arg for item in k for arg in ("-k", item)]

    def run(self, argv: list[str], timeout: int = 60, tries: int = 1) -> subprocess.CompletedProcess[str]:
        """Run offlineimap under `timeout -k` (SIGTERM alone only makes it "prepare to shutdown").

        offlineimap3 sometimes stalls for minutes after connecting on its non-TLS/STARTTLS path
        (real-components.md: ~1 run in 15); such runs get a short timeout and another try.
        """
        command = ["timeout", "-k", "2", str(timeout), need("offlineimap"), *argv]
        for _ in range(tries):
            result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.tmp)
            # timeout's "timed out" / killed after -k; and SIGSEGV: offlineimap3 itself crashes now and then
            # on its STARTTLS path (imaplib2 wraps the socket while its reader thread polls it; seen in CI).
            if result.returncode not in (124, 137, -9, -11):
                break
        return result


def observed(output: str) -> tuple[str | None, int | None, Mode]:
    """Where and how offlineimap really connected, from its own log (`-d imap`)."""
    found = CONNECTED.search(output)
    assert found, output
    host, port = found["host"], found["port"]
    if host == "tunnel":  # ui.connecting(repo, "tunnel", COMMAND)
        return None, None, S if "Using STARTTLS connection" in output else N
    mode = I if "level 'tls_compat'" in output or "level 'tls_secure'" in output else N
    mode = S if "Using STARTTLS connection" in output else mode
    return host, int(port), mode


@pytest.fixture
def lab(dovecot_server: Dovecot, pki: TestPKI, tmp_path: Path, isolated_env: Path) -> Lab:
    need("offlineimap")
    (isolated_env / ".config" / "mutt").mkdir(parents=True)  # hm-multi's mbnames file goes there
    return Lab(dovecot_server, pki, tmp_path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_offlineimap_connects_where_mailpin_resolves(lab: Lab, name: str) -> None:
    path = CORPUS / name
    config = oi.parse(path.read_text(), str(path), HOME)
    for written in oi.select(config, ["-o"]):
        if name == "several-accounts.conf" and written.name == "office":
            continue  # same shape as "home"; one real run per config keeps the suite fast
        argv = lab.argv(path, written)
        (resolved,) = oi.select(config, argv)
        result = lab.run(argv, 60) if resolved.mode is I else lab.run(argv, timeout=8, tries=3)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ERROR" not in result.stdout + result.stderr
        seen = observed(result.stdout + result.stderr)
        if resolved.transport:
            assert seen == (None, None, resolved.mode) and resolved.transport.startswith("tunnel openssl")
        elif resolved.host is None:  # remotehosteval: mailpin never runs it, offlineimap did
            assert (resolved.port, seen[1:]) == (None, (lab.dovecot.imaps_port, resolved.mode))
        else:
            assert seen == (resolved.host, resolved.port, resolved.mode)
            assert seen != (written.host, written.port, written.mode)  # the -k edits were honoured by both


def test_real_offlineimap_fails_when_mode_and_port_disagree(lab: Lab) -> None:
    path = CORPUS / "hm-basic.conf"
    (work,) = corpus("hm-basic.conf").accounts
    argv = lab.argv(path, work, port=lab.dovecot.imap_port)  # Implicit TLS spoken to the plain port
    (resolved,) = oi.select(corpus("hm-basic.conf"), argv)
    assert (resolved.port, resolved.mode) == (lab.dovecot.imap_port, I)
    result = lab.run(argv, timeout=20)
    assert result.returncode != 0 and "ERROR" in result.stdout + result.stderr


def test_real_offlineimap_enforces_cert_fingerprint_on_implicit_tls(lab: Lab) -> None:
    path = CORPUS / "fingerprint.conf"
    (account,) = corpus("fingerprint.conf").accounts
    result = lab.run(lab.argv(path, account, fingerprint="00" * 32))
    assert result.returncode != 0 and "does not match configured fingerprint" in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_real_offlineimap_fails_on_broken_corpus(lab: Lab, name: str) -> None:
    (lab.tmp / "meta").mkdir(exist_ok=True)
    argv = ["-o", "-u", "basic", "-c", str(CORPUS / name), "-k", f"metadata={lab.tmp / 'meta'}"]
    if name in ("broken-before-section.conf", "broken-duplicate-option.conf"):
        argv = argv[:-2]  # offlineimap dies reading the file, before -k
    result = lab.run(argv, timeout=20)
    assert result.returncode != 0 or "ERROR" in result.stdout + result.stderr, result.stdout + result.stderr
    if name in TOOL_SAYS:  # the tool's own reason, which mailpin's message quotes
        assert TOOL_SAYS[name] in result.stdout + result.stderr and TOOL_SAYS[name] in refusal(name)


TOOL_SAYS = {
    "broken-mbnames-empty.conf": "No option 'peritem' in section: 'mbnames'",
    "broken-status-backend.conf": "the 'status_backend' configuration option is not supported anymore",
}


@pytest.mark.parametrize("present", [False, True], ids=["missing", "present"])
def test_a_missing_sslcacertfile_is_refused_as_offlineimap_refuses_it(
    isolated_env: Path, tmp_path: Path, present: bool
) -> None:
    """IMAP.getsslcacertfile: a named CA file that is not there stops the account before it connects
    (checked on this machine's files: `load`, not a sample's `parse`)."""
    need("offlineimap")
    ca = tmp_path / "ca.pem"
    if present:
        ca.write_bytes(Path(CA).read_bytes())
    text = (CORPUS / "mbnames-complete.conf").read_text().split("\n[mbnames]")[0]
    rc = isolated_env / ".offlineimaprc"
    rc.write_text(text.replace(CA, str(ca)).replace("imap.main.example", "localhost\nremoteport = 9"))
    alone = subprocess.run(
        ["timeout", "-k", "2", "20", need("offlineimap"), "-o", "-u", "basic", "-k", f"metadata={tmp_path / 'm'}"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    said = "couldn't be found" in alone.stdout + alone.stderr
    assert said is not present, alone.stdout + alone.stderr
    env = Env.from_os()
    if present:
        assert [a.name for a in oi.select(oi.load([], env), ["-o"])] == ["main"]
    else:
        with pytest.raises(ConfigError, match="couldn't be found") as caught:
            oi.select(oi.load([], env), ["-o"])
        assert caught.value.line == 19  # the sslcacertfile line (remoteport 9 was added above it)


def refusal(name: str) -> str:
    with pytest.raises(ConfigError) as caught:
        oi.select(corpus(name), ["-o"])
    return str(caught.value)
