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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailpin.model import Account, Level, Mode, Observation, Profile, Tool

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
    """An in-memory file that survives exec (no close-on-exec), readable as /proc/self/fd/N."""
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def available() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _tunnel_command(mailpin: Sequence[str], key: str, config: Path | None = None) -> str:
    where = ["--config", str(config)] if config is not None else []  # the user's file: its trust settings
    return shlex.join([*mailpin, "tunnel", *where, key])


def mbsync(argv: Sequence[str], accounts: Sequence[Account], config: Path, mailpin: Sequence[str]) -> Plan:
    """A private copy of `config` in which each enforced account connects through `mailpin tunnel`."""
    lines = config.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    plan = Plan([])
    starts: dict[int, str] = {}
    for account in accounts:
        _, _, line = account.source.rpartition(":")
        if line.isdigit() and account.source.startswith(str(config)):
            starts[int(line)] = account.key
    out: list[str] = []
    section: str | None = None
    for number, line in enumerate(lines, start=1):
        if number in starts:
            section = starts[number]
            command = _tunnel_command(mailpin, section, config).replace("\\", "\\\\").replace('"', '\\"')
            out += [line, f'Tunnel "{command}"', "SSLType None"]  # TLS is the tunnel's: none inside it
            plan.how[section] = "tunnel"
            continue
        if not line.strip():
            section = None  # mbsync: a blank line ends a section
        elif section is not None and line.split(None, 1)[0].lower() in _MBSYNC_CONNECTION:
            continue
        out.append(line)
    fd = _memory_file("mailpin-mbsyncrc", "\n".join(out).encode("utf-8", "surrogateescape"))
    plan.keep_fds.append(fd)
    plan.argv = [f"--config=/proc/self/fd/{fd}", *_without_config(argv)]
    return plan


def _without_config(argv: Sequence[str]) -> list[str]:
    """mbsync's arguments minus -c/--config (the private copy replaces it)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--config"):
            skip = True
        elif not (arg.startswith("--config=") or (arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"))):
            kept.append(arg)
    return kept


def offlineimap(argv: Sequence[str], accounts: Sequence[Account], mailpin: Sequence[str], config: Path | None) -> Plan:
    plan = Plan(list(argv))
    extra: list[str] = []
    for account in accounts:
        if account.remote is None or "_" in account.remote:
            continue  # offlineimap's -k reads "_" as a space: such a repository cannot be named there
        section = "Repository_" + account.remote.replace(" ", "_")
        extra += ["-k", f"{section}:transporttunnel={_tunnel_command(mailpin, account.key, config)}"]
        extra += ["-k", f"{section}:ssl=no", "-k", f"{section}:starttls=no"]  # the tunnel's TLS, none inside
        plan.how[account.key] = "tunnel"
    plan.argv = [*extra, *argv]
    return plan


def msmtp(argv: Sequence[str], profile: Profile, observation: Observation) -> Plan:
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
    plan.argv = [*flags, *argv]
    return plan


def _pem(der: bytes) -> str:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def describe(tool: Tool, profile: Profile | None) -> str:
    """How `mailpin run` holds this tool's own session (for `mailpin accounts`)."""
    if tool is not Tool.MSMTP:
        return "tunnel"
    if profile is None:
        return "pre-flight"
    return {Level.LEAF: "certificate", Level.KEY: "certificate", Level.CA: "pinned CA"}.get(profile.level, "mode")
