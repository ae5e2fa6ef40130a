"""The fetching tools' own sessions held to the profile: mpop, fetchmail, getmail (see run/enforce.py).

- mpop has msmtp's options (`--socket`, `--tls-fingerprint`, `--tls-trust-file`, `--port`,
  `--tls-priorities`): a run of one account gets msmtp's flags after the user's options (the last
  value wins). Command-line settings apply to every account of a run, so a run of several accounts
  (`mpop -a`) gets the same settings per account instead, written at the end of each account's
  section in the in-memory copy of its config (`-C`): the relay's socket for each, or its own TLS
  narrowed to what was verified. An account that inherits (`account b : a`) from one that got such
  lines gets its own values written back first, so nothing of another account's session leaks into
  it. A run of several accounts whose command line sets connection options itself keeps the
  pre-flight check alone (those options would undo the per-account lines).
- fetchmail runs a `plugin` command as its transport: each verified server entry, in the in-memory
  copy of the rc file (`-f /proc/self/fd/N`, after the user's options: fetchmail reads the last), gets
  `plugin` the relay's slot (else `mailpin tunnel`, which verifies a session of its own), and each of
  its users `no ssl sslproto ''` — the TLS is the relay's, none inside it. A run whose command line sets
  TLS or a plugin itself (`--ssl`, `--sslproto`, `--plugin`: forced on every server), a server named only
  on the command line, and an entry whose users connect differently (two accounts of one entry) keep
  the pre-flight check alone.
- getmail (getmail6) has no tunnel, and its state (`oldmail-SERVER-PORT-USER`) is named after the
  server it connects to, so its session cannot be the relay's: it gets each rc file of the run as
  verified, in memory (`-r /proc/self/fd/N`, its other options as they were), with `[retriever]
  ssl_fingerprints` the SHA-256 of the certificate just verified — getmail compares it after the
  handshake, before it logs in (`CertMixIn.ssl_cipher_hash`), with or without `ca_certs`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from mailpin.configs.msmtp_syntax import lines as config_lines
from mailpin.configs.msmtp_syntax import words
from mailpin.model import Account

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.commands.verify import Outcome
    from mailpin.configs.fetchmail import FetchmailConfig
    from mailpin.configs.fetchmail_argv import CommandLine as FetchmailCommand
    from mailpin.configs.getmail import GetmailConfig
    from mailpin.configs.mpop import CommandLine as MpopCommand
    from mailpin.configs.mpop import MpopConfig
    from mailpin.configs.msmtp import Settings
    from mailpin.env import Env
    from mailpin.run.decide import Decision
    from mailpin.run.enforce import Plan, Tunnels
    from mailpin.run.relay import Relayed

# mpop settings that say where and how an account connects: the command line's apply to every account.
_CONNECTION = frozenset(
    words(
        "port socket proxy_host proxy_port tls tls_starttls tls_trust_file tls_crl_file tls_fingerprint tls_key_file "
        "tls_cert_file tls_certcheck tls_priorities tls_host_override tls_min_dh_prime_bits"
    )
)


def mpop(decision: Decision, held: Sequence[Outcome], relayed: Relayed | None, env: Env) -> Plan:
    from mailpin.run.enforce import Plan, memory_file, relayed_flags, session_flags

    invocation = decision.invocation
    config: MpopConfig | None = invocation.config
    command = invocation.command
    plan = Plan([])
    used = list({o.target.key: o.target.account for o in decision.outcomes if o.target.account is not None}.items())
    several = len(used) > 1
    per_file = config is not None and config.found and command.host is None
    why = _no_sections(config, command, [account for _, account in used]) if several and held else None
    if why is not None:
        for outcome in held:
            plan.how[outcome.target.key] = f"pre-flight check only ({why})"
            if outcome.session is not None:
                outcome.session.close()
        held = ()
    flags: dict[str, list[str]] = {}
    for outcome in held:
        account, observation = outcome.target.account, outcome.observation
        assert account is not None and observation is not None
        profile = decision.profiles[outcome.target.key]
        if relayed is not None and outcome.session is not None:
            flags[account.key] = relayed_flags(outcome, relayed, env, plan)
        else:
            flags[account.key] = session_flags(account, profile, observation, plan)
    extra: list[str] = []
    if per_file:
        assert config is not None
        data = config.data
        if several and flags:
            data = _with_sections(config, [account for _, account in used], flags)
        fd = memory_file("mailpin-mpoprc", data)
        plan.keep_fds.append(fd)
        extra.append(f"--file=/proc/self/fd/{fd}")  # after the user's -C: mpop reads the last one
    if not several:
        extra += next(iter(flags.values()), [])
    argv, at = invocation.argv, command.options_end
    plan.argv = [*argv[:at], *extra, *argv[at:]]
    return plan


def _no_sections(config: MpopConfig | None, command: MpopCommand, used: Sequence[Account]) -> str | None:
    """Why a run of several accounts cannot have its own lines per account, or None."""
    if any(key in _CONNECTION for key, _ in command.overrides):
        return "the command line sets connection options for every account"
    if config is None or not config.found:
        return "no config file"
    # An account whose own `eval` lines may set what mailpin would write back: it cannot be restored.
    for account in used:
        settings = next((s for s in config.settings if s.name == account.name), None)
        if settings is not None and settings.evals and _inherits(config, settings):
            return f"account {account.name} inherits and has eval lines mailpin does not run"
    return None


def _inherits(config: MpopConfig, settings: Settings) -> bool:
    header = next((arg for number, command, arg in config_lines(config.data) if number == settings.line), "")
    return ":" in header


def _with_sections(config: MpopConfig, used: Sequence[Account], flags: dict[str, list[str]]) -> bytes:
    """The config with each used account's lines added at the end of its section (before the next
    `account` or `defaults` line): mpop keeps the last value an account sets."""
    text = config.data.decode("utf-8", "surrogateescape")
    rows = text.split("\n")
    starts = sorted(number for number, command, _ in config_lines(config.data) if command in ("account", "defaults"))
    added: dict[int, list[str]] = {}
    for account in used:
        where, _, line = account.source.rpartition(":")
        if where != config.source or not line.isdigit():
            continue
        number = int(line)
        end = next((start - 1 for start in starts if start > number), len(rows))
        settings = next(s for s in config.settings if s.name == account.name)
        lines = _restored(settings, account) if _inherits(config, settings) else []
        lines += [_as_line(flag) for flag in flags.get(account.key, [])]
        added.setdefault(end, []).extend(lines)
    out: list[str] = []
    for number, row in enumerate(rows, start=1):
        out.append(row)
        out.extend(added.get(number, []))
    return "\n".join(out).encode("utf-8", "surrogateescape")


def _restored(settings: Settings, account: Account) -> list[str]:
    """An account that inherits (`account b : a`) may have copied another account's added lines:
    its own connection settings again, as mailpin read them (defaults where it had none)."""
    v = settings.values
    trust = v.get("tls_trust_file", "system")  # mpop.c's default, said explicitly
    lines = [
        f"socket {v.get('socket', '')}".rstrip(),
        f"tls {v.get('tls', 'off') or 'on'}",
        f"tls_starttls {v.get('tls_starttls', 'on') or 'on'}",
        f"tls_certcheck {v.get('tls_certcheck', 'on') or 'on'}",
        f"tls_fingerprint {v.get('tls_fingerprint', '')}".rstrip(),
        f"tls_priorities {v.get('tls_priorities', '')}".rstrip(),
        f"tls_trust_file {trust}".rstrip(),
    ]
    if account.port is not None:
        lines.append(f"port {account.port}")
    return lines


def _as_line(flag: str) -> str:
    """`--tls-trust-file=PATH` as the config line `tls_trust_file PATH`."""
    option, _, value = flag.removeprefix("--").partition("=")
    return f"{option.replace('-', '_')} {value}".rstrip()


# fetchmail command-line options that are forced on every server of the run (cmd_opts) and would
# undo the plugin or the TLS-less session inside it.
_FETCHMAIL_TRANSPORT = frozenset(("use_ssl", "sslproto", "plugin", "via", "service", "protocol"))


def fetchmail(decision: Decision, held: Sequence[Outcome], tunnels: Tunnels) -> Plan:
    """The rc file as verified, in memory, each verified entry's transport the relay (or `mailpin tunnel`)."""
    from mailpin.run.enforce import Plan, memory_file, verified_copy

    invocation = decision.invocation
    config: FetchmailConfig | None = invocation.config
    command = invocation.command
    argv = list(invocation.argv)
    if config is None or not config.found or command.stops:
        return Plan(argv)  # no rc file (servers from the command line alone), or nothing polled
    plan = Plan([])
    why = _fetchmail_whole_run(config, command)
    entries = {  # the rc entry each account of this run comes from (None: named on the command line)
        o.target.key: config.entry(o.target.account.name) for o in decision.outcomes if o.target.account is not None
    }
    accounts_of: dict[int, set[str]] = {}  # entry -> the accounts of this run it holds
    for key, entry in entries.items():
        if entry is not None:
            accounts_of.setdefault(entry.start, set()).add(key)
    verified = verified_copy(plan, "mailpin-fetchmailrc-verified", config.data) if held and why is None else ""
    inserts: list[tuple[int, str]] = []
    for number, outcome in enumerate(held):
        account = outcome.target.account
        entry = entries.get(outcome.target.key)
        reason, plugin = why, ""
        if reason is None and entry is None:
            reason = "a server named only on the command line"
        elif reason is None and entry is not None and len(accounts_of.get(entry.start, ())) > 1:
            reason = "its users connect differently: two accounts of one server entry"
        if reason is None:
            plugin, reason = _plugin(tunnels, outcome, verified, number)
        if reason is not None or entry is None or account is None:
            plan.how[outcome.target.key] = f"pre-flight check only ({reason})"
            if outcome.session is not None:
                outcome.session.close()
            continue
        inserts.append((entry.server_end, f' plugin "{plugin}"'))
        for user in config.users(account.name) or ():
            inserts.append((user.end, " no ssl sslproto ''"))  # the relay's TLS: none inside the plugin
        if not entry.users:
            inserts.append((entry.server_end, " no ssl sslproto ''"))
        plan.how[outcome.target.key] = "relay" if outcome.session is not None else "tunnel"
    text = config.text
    for at, added in sorted(inserts, key=lambda item: item[0], reverse=True):
        text = text[:at] + added + text[at:]
    fd = memory_file("mailpin-fetchmailrc", text.encode("utf-8", "surrogateescape"))
    plan.keep_fds.append(fd)
    # After every option of the user's: fetchmail reads the last -f.
    plan.argv = [*argv[: command.options_end], "-f", f"/proc/self/fd/{fd}", *argv[command.options_end :]]
    return plan


def _fetchmail_whole_run(config: FetchmailConfig, command: FetchmailCommand) -> str | None:
    """Why no entry of this run can be handed its session, or None."""
    from mailpin.configs.fetchmail_argv import PATH_FIELDS
    from mailpin.configs.fetchmail_grammar import parse as parse_rc

    if _FETCHMAIL_TRANSPORT & set(command.overrides):
        return "the command line sets TLS or a plugin for every server"
    # fetchmail takes a relative file name in the rc file as relative to the rc file's directory
    # (rcfile_y.y prependdir): for the in-memory copy that is /proc/self/fd. Read as written:
    written = parse_rc(config.text, config.source, rcdir="")
    paths = [
        *(str(s.value) for query in written.queries for name, s in query.fields.items() if name in PATH_FIELDS),
        *(str(s.value) for name, s in written.globals.items() if name in ("logfile", "idfile", "pidfile")),
    ]
    if any(path and not path.startswith("/") and path != "-" for path in paths):
        return "the rc file names a file by a relative path, which fetchmail takes relative to the rc file"
    return None


def _plugin(tunnels: Tunnels, outcome: Outcome, verified: str, number: int) -> tuple[str, str | None]:
    """fetchmail's `plugin` for this account, or why there is none. fetchmail runs it without a shell:
    %h and %p replaced anywhere, split at white space, execvp — and a quoted string in its rc file has
    no escaped quote. So the relay's tunnel (a shell command) goes into a script in the relay's private
    directory; without a kept session, `mailpin tunnel` is named word by word."""
    from mailpin.run.enforce import tunnel_args

    relayed = tunnels.relayed
    if relayed is not None and outcome.session is not None:
        script = os.path.join(relayed.directory, f"plugin{number}")
        with open(os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700), "w", encoding="utf-8") as out:
            out.write(f"#!/bin/sh\n{tunnels.command(outcome, verified)}\n")
        words = ["/bin/sh", script]
    else:
        words = tunnel_args(tunnels.mailpin, outcome.target.key, verified)
    if any(not word or any(char.isspace() or char in '%"\\' for char in word) for word in words):
        return "", "the tunnel's command has a blank, %, quote or backslash fetchmail's plugin cannot carry"
    return " ".join(words), None


def getmail(decision: Decision, held: Sequence[Outcome]) -> Plan:
    """Each rc file of the run, as verified, in memory; a verified account's with its certificate pinned."""
    from mailpin.configs.getmail import without_rcfiles
    from mailpin.run.enforce import Plan, memory_file

    invocation = decision.invocation
    config: GetmailConfig | None = invocation.config
    command = invocation.command
    argv = list(invocation.argv)
    if config is None or config.getmaildir is None or command.options is None or command.stops:
        return Plan(argv)  # getmail stops before it reads an rc file: nothing to hand over
    plan = Plan([])
    verified = {o.target.key: o for o in held if o.observation is not None}
    paths = [os.path.join(config.getmaildir, name) for name in command.rcfile] or list(config.run)
    known = {rc.path: rc for rc in config.rcfiles}
    rcfiles: list[str] = []
    for path in paths:
        data = config.data.get(path)
        if data is None:
            return Plan(argv)  # not read by this run (select refused it already)
        account = known[path].account if path in known else None
        outcome = verified.get(account.key) if account is not None else None
        if outcome is not None and outcome.observation is not None:
            data = with_fingerprint(data, outcome.observation.leaf.sha256)
            plan.how[outcome.target.key] = "certificate"
        fd = memory_file("mailpin-getmailrc", data)
        plan.keep_fds.append(fd)
        rcfiles += ["-r", f"/proc/self/fd/{fd}"]
    plan.argv = [*without_rcfiles(argv), *rcfiles]
    return plan


_SECTION = re.compile(r"\[(?P<header>.+)\]")  # configparser's SECTCRE, on a line's stripped text
_OPTION = re.compile(r"(?P<option>.*?)\s*[=:]")  # configparser's OPTCRE: the name up to the first = or :


def with_fingerprint(data: bytes, sha256: str) -> bytes:
    """The rc file with `[retriever] ssl_fingerprints` the one certificate verified: the first line of
    the section, an `ssl_fingerprints` of the file's own (and its continuation lines) taken out —
    RawConfigParser refuses an option given twice in a section."""
    out: list[str] = []
    section, dropping = None, False
    for line in data.decode("utf-8", "surrogateescape").splitlines(keepends=True):
        indented = line[:1] in (" ", "\t")
        if dropping and indented and line.strip():
            continue  # a continuation line of the option taken out
        dropping = False
        header = None if indented else _SECTION.fullmatch(line.strip())
        if header is not None:
            section = header.group("header")
            out.append(line if line.endswith("\n") else line + "\n")
            if section == "retriever":
                out.append(f"ssl_fingerprints = ('{sha256}',)\n")
            continue
        option = None if indented or section != "retriever" else _OPTION.match(line)
        if option is not None and option.group("option").strip().lower() == "ssl_fingerprints":
            dropping = True
            continue
        out.append(line)
    return "".join(out).encode("utf-8", "surrogateescape")
