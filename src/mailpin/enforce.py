"""Hold the tool's own session to the profile, not only mailpin's pre-flight probe.

A probe and the tool's connection are two TCP connections: an active attacker can let the first
pass and take the second, and a load balancer can hand them different backends (anchors.md
lesson 3). Each tool offers a way to close that gap, used here without touching the user's files:

- mbsync: the accounts' sections are rewritten, in a private copy of the config handed over as
  `-c /proc/self/fd/N` (an in-memory file), to `Tunnel "mailpin tunnel mbsync:NAME"` — the session
  that carries the password and the mail is the one `mailpin tunnel` verifies in-line;
- offlineimap: `-k Repository_REMOTE:transporttunnel=…` on the command line, the same tunnel;
- msmtp: its own TLS is kept and narrowed to what was just verified — at level leaf or key the exact
  certificate (`--tls-fingerprint`), at level ca a trust file holding only the pinned CA certificates
  (`--tls-trust-file`), so a load balancer's other certificates from the same CA still pass; plus the
  pinned mode and port. At level pkix msmtp's own checks stand (any trusted CA, as pinned).
  (A relay for msmtp would need mailpin to stay alive beside it; the flags keep `exec`, and with it
  msmtp's own exit status and signals.)

`enforce = no` for an account in mailpin's config leaves its tool on the pre-flight check alone.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mailpin.model import Account, Level, Mode, Observation, Profile, Status, Tool

if TYPE_CHECKING:
    from mailpin.commands.run import Decision
    from mailpin.env import Env
    from mailpin.settings import Settings

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


def _memory_file(name: str, data: bytes) -> int:
    """An in-memory file that survives exec (no close-on-exec), readable as /proc/self/fd/N, and
    sealed: nothing the tool starts (a Tunnel, a PassCmd) can change it afterwards."""
    import fcntl

    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    return fd


def plan(env: Env, tool: Tool, argv: Sequence[str], decision: Decision, configured: Settings) -> Plan:
    """The tool's arguments with the additions that hold its own session to the profile, for the
    accounts this run verified (and whose enforcement the settings leave on)."""
    import sys

    from mailpin.configs.discover import reader

    if not available():
        return Plan(list(argv))  # no in-memory files here (macOS): the pre-flight check alone
    held = [
        o for o in decision.outcomes
        if o.verdict.status in (Status.VERIFIED, Status.PINNED) and o.target.account is not None
        and configured.enforce_for(o.target.key) and o.target.key in decision.profiles
    ]  # fmt: skip
    if not held:
        return Plan(list(argv))
    if tool is Tool.MSMTP:
        outcome = held[0]
        assert outcome.observation is not None
        return msmtp(argv, decision.profiles[outcome.target.key], outcome.observation, env.environ)
    from mailpin.hooks import this_mailpin  # mbsync and offlineimap call `mailpin tunnel` back

    accounts = [o.target.account for o in held if o.target.account is not None]
    paths = reader(tool).config_paths(argv, env)
    mailpin = this_mailpin(sys.argv[0], sys.executable)
    if tool is Tool.MBSYNC:
        return mbsync(argv, accounts, paths[0], mailpin) if paths else Plan(list(argv))
    return offlineimap(argv, accounts, mailpin, paths[0] if paths else None)


def available() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _tunnel_command(mailpin: Sequence[str], key: str, config: Path | None = None) -> str:
    where = ["--config", str(config)] if config is not None else []  # the user's file: its trust settings
    return shlex.join([*mailpin, "tunnel", *where, key])


def mbsync(argv: Sequence[str], accounts: Sequence[Account], config: Path, mailpin: Sequence[str]) -> Plan:
    """A private copy of `config` in which each enforced account connects through `mailpin tunnel`."""
    from mailpin.configs import mbsync_argv
    from mailpin.errors import ConfigError

    try:
        lines = config.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    except OSError as exc:
        raise ConfigError(str(config), None, f"cannot read: {exc.strerror or exc}") from None
    plan = Plan([])
    starts: dict[int, str] = {}
    for account in accounts:
        where, _, line = account.source.rpartition(":")
        if line.isdigit() and where == str(config):
            starts[int(line)] = account.key
    out: list[str] = []
    section: str | None = None

    def close() -> None:
        # Last in the section: mbsync keeps the last value of a keyword, whatever came before.
        assert section is not None
        command = _tunnel_command(mailpin, section, config).replace("\\", "\\\\").replace('"', '\\"')
        out.extend([f'Tunnel "{command}"', "SSLType None"])  # TLS is the tunnel's: none inside it
        plan.how[section] = "tunnel"

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
    fd = _memory_file("mailpin-mbsyncrc", "\n".join(out).encode("utf-8", "surrogateescape"))
    plan.keep_fds.append(fd)
    # After every option of the user's (mbsync reads the last -c), before the first channel or `--`.
    operands = len(mbsync_argv.parse_argv(argv).operands)
    at = len(argv) - operands
    if at > 0 and argv[at - 1] == "--":
        at -= 1
    plan.argv = [*argv[:at], f"--config=/proc/self/fd/{fd}", *argv[at:]]
    return plan


def offlineimap(argv: Sequence[str], accounts: Sequence[Account], mailpin: Sequence[str], config: Path | None) -> Plan:
    plan = Plan(list(argv))
    extra: list[str] = []
    for account in accounts:
        if not offlineimap_can_tunnel(account) or account.remote is None:
            continue
        section = "Repository_" + account.remote.replace(" ", "_")
        extra += ["-k", f"{section}:transporttunnel={_tunnel_command(mailpin, account.key, config)}"]
        extra += ["-k", f"{section}:ssl=no", "-k", f"{section}:starttls=no"]  # the tunnel's TLS, none inside
        plan.how[account.key] = "tunnel"
    plan.argv = [*argv, *extra]  # last: offlineimap applies -k in order, so no -k of the user's undoes these
    return plan


def offlineimap_can_tunnel(account: Account) -> bool:
    """offlineimap's -k reads "_" as a space and splits at the first "=" and ":": a repository
    whose name has one of them cannot be named there, and stays on the pre-flight check."""
    return account.remote is not None and not set(account.remote) & set("_=:")


def msmtp(argv: Sequence[str], profile: Profile, observation: Observation, environ: Mapping[str, str]) -> Plan:
    flags = ["--tls=on", f"--tls-starttls={'on' if profile.mode is Mode.STARTTLS else 'off'}", "--tls-certcheck=on"]
    flags.append(f"--port={profile.port}")
    plan = Plan([])
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
            fd = _memory_file("mailpin-trust", "".join(pems).encode("ascii"))
            plan.keep_fds.append(fd)
            flags.append(f"--tls-trust-file=/proc/self/fd/{fd}")
            plan.how[profile.account] = "pinned CA"
    else:
        plan.how[profile.account] = "mode"
    # After the user's options: msmtp keeps the last value, so a --tls-trust-file or --tls-fingerprint
    # of the user's cannot widen what was verified. Before `--` (what follows it are recipients); with
    # POSIXLY_CORRECT, getopt stops at the first recipient, so the flags go just before it.
    from mailpin.configs.msmtp_argv import options_end

    at = options_end(argv, posix="POSIXLY_CORRECT" in environ)
    plan.argv = [*argv[:at], *flags, *argv[at:]]
    return plan


def _pem(der: bytes) -> str:
    import ssl

    return ssl.DER_cert_to_PEM_cert(der)


def describe(account: Account, profile: Profile | None) -> str:
    """How `mailpin run` holds this tool's own session (for `mailpin accounts`)."""
    if account.tool is Tool.OFFLINEIMAP and not offlineimap_can_tunnel(account):
        return "pre-flight check only (repository name cannot be given to offlineimap -k)"
    if account.tool is not Tool.MSMTP:
        return "tunnel"
    if profile is None:
        return "pre-flight"
    return {Level.LEAF: "certificate", Level.KEY: "certificate", Level.CA: "pinned CA"}.get(profile.level, "mode")
