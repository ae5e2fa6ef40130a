"""Hand the tool the session mailpin verified, or hold its own session to the profile.

A probe and the tool's connection would be two TCP connections: an active attacker can let the
first pass and take the second, and a load balancer can hand them different backends (anchors.md
lesson 3). So the tool is handed the verified session itself (`relays`: run/relay.py), without
touching the user's files:

- msmtp: `--socket` to the relay's private socket, where mailpin speaks TLS with its local
  certificate (`--tls-fingerprint`); msmtp's own authentication is unchanged;
- mbsync: the accounts' sections are rewritten, in a private copy of the config handed over as
  `-c /proc/self/fd/N` (an in-memory file), to a `Tunnel` that claims the account's slot in the relay;
- offlineimap: `-k Repository_REMOTE:transporttunnel=…` on the command line, the same command.

Where that cannot be (msmtp with a client certificate or `tls_priorities`; a tool's second
connection to one account; offlineimap repositories -k cannot name), the narrowest the tool has:
`mailpin tunnel` (verifies in-line), and for msmtp its own TLS narrowed to what was just verified —
at level leaf or key the exact certificate (`--tls-fingerprint`), at level ca a trust file holding
only the pinned CA certificates (`--tls-trust-file`); plus the pinned mode, port and TLS version
floor (`--tls-priorities`). Every msmtp run names the verified account (`--account`).

Every tool gets the config bytes this run verified (in-memory files: mbsync and offlineimap `-c`,
msmtp `--file`), and `mailpin tunnel` reads its account from the same bytes: one read per run.

`enforce = no` for an account in mailpin's config leaves its tool on the pre-flight check alone.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailpin.errors import RelayError
from mailpin.model import TLS_VERSIONS, Account, Level, Mode, Observation, Profile, Status, Tool, tls_rank

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from collections.abc import Callable

    from mailpin.commands.verify import Outcome
    from mailpin.configs.mbsync_model import MbsyncConfig
    from mailpin.configs.msmtp import MsmtpConfig
    from mailpin.configs.offlineimap import OfflineimapConfig
    from mailpin.env import Env
    from mailpin.run.decide import Decision
    from mailpin.run.invocation import Invocation
    from mailpin.run.relay import Relayed
    from mailpin.state.settings import Settings

# mbsync keywords that say where and how an account connects: replaced by the tunnel.
_MBSYNC_CONNECTION = {
    "host", "port", "tunnel", "ssltype", "tlstype", "useimaps", "requiressl", "usessl", "sslversions",
    "tlsversions", "usesslv2", "usesslv3", "usetlsv1", "usetlsv1.1", "usetlsv1.2", "usetlsv1.3",
}  # fmt: skip


@dataclass
class Plan:
    argv: list[str]  # the tool's arguments, with mailpin's additions
    keep_fds: list[int] = field(default_factory=list)  # in-memory files the tool opens by /proc/self/fd path
    how: dict[str, str] = field(default_factory=dict)  # account -> how its session is held
    relay: Relayed | None = None  # the verified sessions the tool is handed (run/relay.py), to start
    environ: dict[str, str] = field(default_factory=dict)  # added to the tool's environment

    def tool_environ(self, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, **self.environ}


def memory_file(name: str, data: bytes) -> int:
    """An in-memory file that survives exec (no close-on-exec), readable as /proc/self/fd/N, and
    sealed: nothing the tool starts (a Tunnel, a PassCmd) can change it afterwards. Mode 0600: msmtp
    refuses a config with secrets that others could read (conf.c get_conf, check_secure)."""
    import fcntl

    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
    os.fchmod(fd, 0o600)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    return fd


def plan(env: Env, tool: Tool, argv: Sequence[str], decision: Decision, configured: Settings) -> Plan:
    """`plan_for` another command line than the decision's, over the config the decision read."""
    from dataclasses import replace

    from mailpin.run.invocation import Invocation

    invocation = replace(Invocation.parse(env, tool, argv), config=decision.invocation.config)
    return plan_for(env, replace(decision, invocation=invocation), configured)


def handed_over(env: Env, decision: Decision, configured: Settings) -> Plan:
    """`plan_for`, with the relay started beside the tool: this process then becomes the tool (exec)
    or waits for it as a child, and the relay ends with it. A relay that cannot be set up (no room for
    its directory, no process to fork) is `RelayError` (75): the tool is not run, the sessions closed."""
    try:
        plan = plan_for(env, decision, configured)
        if plan.relay is not None:
            plan.relay.start(os.getpid())
    except OSError as exc:
        decision.close()
        tool, why = decision.invocation.tool.value, exc.strerror or str(exc)
        raise RelayError(f"{tool} was not run: cannot hand it the verified session ({why}); try again") from None
    return plan


def plan_for(env: Env, decision: Decision, configured: Settings) -> Plan:
    """The tool's arguments with the additions that hold its own session to the profile, for the
    accounts this run verified (and whose enforcement the settings leave on).

    One read: the tool is handed the config bytes this run verified (`decision.invocation.config`),
    as an in-memory file, never the file again — an edit between the check and the tool's own read
    (a dotfile sync, an attacker racing the run) cannot change what the tool does. One connection:
    an account whose verified session was kept (`relays`) is handed that very session."""
    import sys

    invocation = decision.invocation
    tool, config = invocation.tool, invocation.config
    if not available():
        return Plan(list(invocation.argv))  # no in-memory files here (macOS): the pre-flight check alone
    held = [
        o for o in decision.outcomes
        if o.verdict.status in (Status.VERIFIED, Status.PINNED) and o.target.account is not None
        and configured.enforce_for(o.target.key) and o.target.key in decision.profiles
    ]  # fmt: skip
    relayed = _relayed(env, held)
    if tool is Tool.MPOP:
        from mailpin.run.enforce_fetch import mpop as mpop_plan

        done = mpop_plan(decision, held, relayed, env)
    elif tool is Tool.GETMAIL:
        from mailpin.run.enforce_fetch import getmail as getmail_plan

        done = getmail_plan(decision, held)
    elif tool is Tool.MSMTP:
        outcome = held[0] if held else None
        profile = decision.profiles[outcome.target.key] if outcome is not None else None
        # --version, --help, --configure use no account: msmtp would print the in-memory file's name.
        done = msmtp(invocation, config if decision.outcomes else None, outcome, profile, relayed, env)
    else:
        from mailpin.hooks import this_mailpin  # mbsync, offlineimap and fetchmail call `mailpin tunnel` back

        tunnels = Tunnels(this_mailpin(sys.argv[0], sys.executable), relayed, env, configured)
        if tool is Tool.FETCHMAIL:
            from mailpin.run.enforce_fetch import fetchmail as fetchmail_plan

            done = fetchmail_plan(decision, held, tunnels)
        elif config is None or not config.found:
            done = Plan(list(invocation.argv))  # no config file: the tool refuses to run, nothing to hand over
        else:
            done = (mbsync if tool is Tool.MBSYNC else offlineimap)(invocation, held, tunnels)
    if relayed is not None and relayed.links:
        done.relay = relayed
    elif relayed is not None:
        relayed.abandon()
    return done


def _relayed(env: Env, held: Sequence[Outcome]) -> Relayed | None:
    if not any(o.session is not None for o in held):
        return None
    from mailpin.run.relay import Relayed, private_dir

    return Relayed(private_dir(env.environ))


def relays(configured: Settings) -> Callable[[Account], bool]:
    """Which accounts are handed the very session mailpin verifies (the relay, run/relay.py); the
    others keep the narrowest flags their tool has. msmtp: not an account with a client certificate
    (its own TLS must present it: mailpin's local session cannot) nor one with `tls_priorities` (a
    GnuTLS string that mailpin's OpenSSL session cannot honour exactly); offlineimap: not a
    repository that -k cannot name; getmail: never (no tunnel, and its state is named after the server)."""
    from mailpin.run.relay import supported

    if not available() or not supported():
        return lambda account: False

    def keep(account: Account) -> bool:
        if not configured.enforce_for(account.key) or account.transport is not None:
            return False
        if account.tool in (Tool.MSMTP, Tool.MPOP):
            return account.client_cert is None and account.client_key is None and account.tls_priorities is None
        if account.tool is Tool.OFFLINEIMAP:
            return offlineimap_can_tunnel(account)
        return account.tool is not Tool.GETMAIL  # getmail cannot be pointed at another connection

    return keep


class Tunnels:
    """The Tunnel / transporttunnel command of each account: the relay's slot when its verified
    session was kept, else `mailpin tunnel` (which verifies a session of its own)."""

    def __init__(self, mailpin: Sequence[str], relayed: Relayed | None, env: Env, configured: Settings) -> None:
        self.mailpin, self.relayed, self.env, self.configured = mailpin, relayed, env, configured

    def command(self, outcome: Outcome, config: str, edits: Sequence[str] = ()) -> str:
        fallback = tunnel_args(self.mailpin, outcome.target.key, config, edits)
        if self.relayed is None or outcome.session is None:
            return shlex.join(fallback)
        from mailpin.run.relay import reopen

        again = reopen(self.env, self.configured, outcome)
        return self.relayed.tunnel_for(outcome, fallback, again)


def available() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def tunnel_args(mailpin: Sequence[str], key: str, config: str, edits: Sequence[str] = ()) -> list[str]:
    # The tunnel reads the account's trust settings from the bytes verified here, not the file again,
    # with the run's own offlineimap -k edits on top (a -k …:ssl_version= holds on its session too).
    return [*mailpin, "tunnel", "--config", config, *(arg for edit in edits for arg in ("-k", edit)), key]


def verified_copy(plan: Plan, name: str, data: bytes) -> str:
    """The verified bytes as a path any descendant of the tool can open: /proc/PID/fd/N of this
    process, which becomes the tool (exec keeps the pid and the descriptor). Not /proc/self: the
    tunnel runs as a child of the tool, and offlineimap closes inherited descriptors (close_fds)."""
    fd = memory_file(name, data)
    plan.keep_fds.append(fd)
    return f"/proc/{os.getpid()}/fd/{fd}"


def mbsync(invocation: Invocation, held: Sequence[Outcome], tunnels: Tunnels) -> Plan:
    """mbsync's config as verified, handed over in memory; in it each enforced account connects
    through a Tunnel: its verified session in the relay, or `mailpin tunnel`."""
    config: MbsyncConfig = invocation.config
    plan = Plan([])
    lines = config.data.decode("utf-8", "surrogateescape").split("\n")
    starts: dict[int, Outcome] = {}
    for outcome in held:
        assert outcome.target.account is not None
        where, _, line = outcome.target.account.source.rpartition(":")
        if line.isdigit() and where == config.source:
            starts[int(line)] = outcome
    verified = verified_copy(plan, "mailpin-mbsyncrc-verified", config.data) if starts else ""
    out: list[str] = []
    section: Outcome | None = None

    def close() -> None:
        # Last in the section: mbsync keeps the last value of a keyword, whatever came before.
        assert section is not None
        command = tunnels.command(section, verified).replace("\\", "\\\\").replace('"', '\\"')
        out.extend([f'Tunnel "{command}"', "SSLType None"])  # TLS is the tunnel's: none inside it
        plan.how[section.target.key] = "relay" if section.session is not None else "tunnel"

    # Line numbers and text are of the same read: the accounts' lines are where they were verified.
    for number, line in enumerate(lines, start=1):
        if number in starts:
            if section is not None:
                close()
            section = starts[number]
        elif section is not None and not line.strip():
            close()  # mbsync: a blank line ends a section
            section = None
        elif section is not None and line.split(None, 1)[0].strip('"').lower() in _MBSYNC_CONNECTION:
            continue  # where and how it connected: the tunnel's now
        out.append(line)
    if section is not None:
        close()
    fd = memory_file("mailpin-mbsyncrc", "\n".join(out).encode("utf-8", "surrogateescape"))
    plan.keep_fds.append(fd)
    # After every option of the user's (mbsync reads the last -c), before the first channel or `--`.
    argv = invocation.argv
    at = len(argv) - len(invocation.command.operands)
    if at > 0 and argv[at - 1] == "--":
        at -= 1
    plan.argv = [*argv[:at], f"--config=/proc/self/fd/{fd}", *argv[at:]]
    return plan


def offlineimap(invocation: Invocation, held: Sequence[Outcome], tunnels: Tunnels) -> Plan:
    """offlineimap's config as verified, in memory (`-c`), and each enforced account's transport
    (`-k …:transporttunnel=`) through its verified session in the relay, or `mailpin tunnel`."""
    config: OfflineimapConfig = invocation.config
    plan = Plan([])
    verified = verified_copy(plan, "mailpin-offlineimaprc", config.data)
    # offlineimap takes the last -c; -k edits apply after the file is read, in order, so no -k of the
    # user's undoes these.
    extra = ["-c", verified]
    edits = invocation.command.edits
    for outcome in held:
        account = outcome.target.account
        if account is None or not offlineimap_can_tunnel(account) or account.remote is None:
            continue
        section = "Repository_" + account.remote.replace(" ", "_")
        extra += ["-k", f"{section}:transporttunnel={tunnels.command(outcome, verified, edits)}"]
        extra += ["-k", f"{section}:ssl=no", "-k", f"{section}:starttls=no"]  # the tunnel's TLS, none inside
        plan.how[account.key] = "relay" if outcome.session is not None else "tunnel"
    plan.argv = [*invocation.argv, *extra]
    return plan


def offlineimap_can_tunnel(account: Account) -> bool:
    """offlineimap's -k reads "_" as a space and splits at the first "=" and ":": a repository
    whose name has one of them cannot be named there, and stays on the pre-flight check."""
    return account.remote is not None and not set(account.remote) & set("_=:")


# GnuTLS priority-string names of the versions below each pinned floor (model.TLS_VERSIONS order).
_GNUTLS_VERSIONS = {"SSLv3": "SSL3.0", "TLSv1": "TLS1.0", "TLSv1.1": "TLS1.1", "TLSv1.2": "TLS1.2", "TLSv1.3": "TLS1.3"}


def msmtp_priorities(account: Account, floor: str) -> str | None:
    """msmtp's `--tls-priorities`: the account's own priority string (GnuTLS's default, NORMAL, when
    it has none) with every TLS version below the pinned floor taken out — the last word in a GnuTLS
    priority string wins, so the user's string keeps everything else it says (RFC 8314 §5.2: never
    less than what was set up). None when the floor is unknown: nothing to take out."""
    rank = tls_rank(floor)
    if rank <= 0:
        return None
    below = [f"-VERS-{_GNUTLS_VERSIONS[version]}" for version in TLS_VERSIONS[:rank]]
    return ":".join([account.tls_priorities or "NORMAL", *below])


def msmtp(
    invocation: Invocation,
    config: MsmtpConfig | None,
    outcome: Outcome | None,
    profile: Profile | None,
    relayed: Relayed | None,
    env: Env,
) -> Plan:
    from mailpin.configs.msmtp_argv import CLI

    plan = Plan([])
    flags: list[str] = []
    if config is not None and config.user_file is not None:
        # msmtp reads the user file given last with -C; /etc/msmtprc it reads itself (it has no option
        # to skip it), so only the user's file is handed over.
        fd = memory_file("mailpin-msmtprc", config.user_file[1])
        plan.keep_fds.append(fd)
        flags.append(f"--file=/proc/self/fd/{fd}")
    if outcome is not None and profile is not None:
        account, observation = outcome.target.account, outcome.observation
        assert account is not None and observation is not None
        if not account.source.startswith((CLI, "environment")):
            # Name the verified account: should msmtp's own choice ever differ from mailpin's reading
            # of its -f / From: matching, msmtp still sends through the account that was verified.
            # msmtp.c: -a skips the envelope-from match; -f / --read-envelope-from still set the
            # envelope sender (override_account), so nothing else changes.
            flags.append(f"--account={account.name}")
        if relayed is not None and outcome.session is not None:
            flags += relayed_flags(outcome, relayed, env, plan)
        else:
            flags += session_flags(account, profile, observation, plan)
    # After the user's options: msmtp keeps the last value, so a --tls-trust-file or --tls-fingerprint
    # of the user's cannot widen what was verified. Before `--` (what follows it are recipients); with
    # POSIXLY_CORRECT, getopt stops at the first recipient, so the flags go just before it.
    argv, at = invocation.argv, invocation.command.options_end
    plan.argv = [*argv[:at], *flags, *argv[at:]]
    return plan


RELAYED = "MAILPIN_RELAYED"  # the socket of msmtp's relayed session, for a `mailpin run` inside the tool


def relayed_already(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Is this msmtp command line one an outer `mailpin run` made (a wrapper such as msmtpq, named
    as the real msmtp, calling msmtp through the shim again)? Its session is the relay's, verified
    by that run: it is handed over as it is, not verified again (nor refused for its `--socket`)."""
    socket = environ.get(RELAYED)
    return bool(socket) and f"--socket={socket}" in argv


def relayed_flags(outcome: Outcome, relayed: Relayed, env: Env, plan: Plan) -> list[str]:
    """msmtp's (or mpop's: the same options) session is the verified one: it connects to the relay's
    private socket and speaks TLS to mailpin's local certificate there, exactly that one (a
    fingerprint: msmtp then checks nothing else, and needs nothing else). STARTTLS: the relay has
    done the server's already, and greets msmtp itself (net/relay.py). msmtp's authentication is its
    own, unchanged."""
    from mailpin.state.local_cert import local_identity

    identity = local_identity(env.state_home / "mailpin")
    path = relayed.socket_for(outcome, identity)
    plan.how[outcome.target.key] = "relay"
    plan.environ[RELAYED] = path
    return [
        f"--socket={path}", "--tls=on", "--tls-starttls=off", "--tls-certcheck=on",
        f"--tls-fingerprint={identity.fingerprint}",
    ]  # fmt: skip


def session_flags(account: Account, profile: Profile, observation: Observation, plan: Plan) -> list[str]:
    """msmtp's (or mpop's) own TLS held to the profile: mode, port, TLS version floor, and the
    certificate or CAs."""
    flags = ["--tls=on", f"--tls-starttls={'on' if profile.mode is Mode.STARTTLS else 'off'}", "--tls-certcheck=on"]
    flags.append(f"--port={profile.port}")
    priorities = msmtp_priorities(account, profile.tls_version)
    if priorities is not None:
        flags.append(f"--tls-priorities={priorities}")
    if profile.level in (Level.LEAF, Level.KEY):
        # The exact certificate this run verified (msmtp: SHA-256 of the DER, colon hex).
        flags.append(f"--tls-fingerprint={observation.leaf.sha256_colon}")
        plan.how[profile.account] = "certificate"
    elif profile.level is Level.CA:
        pinned = set(profile.ca_spki_sha256)
        pems = [
            _pem(der) for facts, der in zip(observation.chain.ca_certs, observation.chain.ca_der, strict=False)
            if facts.spki_sha256 in pinned
        ]  # fmt: skip
        if pems:
            fd = memory_file("mailpin-trust", "".join(pems).encode("ascii"))
            plan.keep_fds.append(fd)
            flags.append(f"--tls-trust-file=/proc/self/fd/{fd}")
            plan.how[profile.account] = "pinned CA"
    else:
        plan.how[profile.account] = "mode"
    return flags


def _pem(der: bytes) -> str:
    import ssl

    return ssl.DER_cert_to_PEM_cert(der)


def describe(account: Account, profile: Profile | None, configured: Settings) -> str:
    """How `mailpin run` holds this tool's own session (for `mailpin accounts`): handed the verified
    session itself (the relay), or, where it cannot be, the narrowest flags and why."""
    if relays(configured)(account):
        return "relay (the verified session itself)"
    if not available():
        return "pre-flight check only (no in-memory files here)"
    if account.tool is Tool.OFFLINEIMAP:
        return "pre-flight check only (repository name cannot be given to offlineimap -k)"
    if account.tool is Tool.GETMAIL:
        return "certificate pinned in getmail's own TLS (ssl_fingerprints): getmail has no tunnel"
    if account.tool not in (Tool.MSMTP, Tool.MPOP):
        return "tunnel (mailpin tunnel)"
    why = "client certificate" if account.client_cert or account.client_key else "tls_priorities"
    tool = account.tool.value
    if profile is None:
        return f"pre-flight check, then {tool}'s own TLS ({why})"
    flags = {Level.LEAF: "certificate", Level.KEY: "certificate", Level.CA: "pinned CA"}.get(profile.level, "mode")
    return f"{flags} flags on {tool}'s own TLS ({why})"
