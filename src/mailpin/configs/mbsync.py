"""mbsync (isync): its config, read the way mbsync reads it into `mbsync_model`; the command line is `mbsync_argv`.

The grammar is isync 1.4's (`src/config.c` `get_arg`/`getcline`/`load_config`, `src/drv_imap.c`
`imap_parse_store`, `src/drv_maildir.c`, `src/driver.c` `parse_generic_store`; Debian 12 ships
1.4.4), widened to what isync 1.5 also accepts (`TLSType`, `TLSVersions`, `ExpungeSolo`,
`ExpireSide`, the Old/Upgrade/Gone operations; 1.5 `man mbsync`).  A config only one version takes
is read, and its account carries a note saying which version refuses it.  Nothing the config asks
mbsync to run (`PassCmd`, `UserCmd`, `Tunnel`) is run here.  Lines, arguments, values, TLS versions
and the options that decide nothing about a connection are read by `mbsync_syntax`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mailpin.configs import mbsync_argv
from mailpin.configs.mbsync_model import Channel, Group, MbsyncConfig, Store
from mailpin.configs.mbsync_syntax import (
    LEGACY_SSL,
    V10,
    V11,
    V12,
    V13,
    Lines,
    channel_option,
    check_maildir_store,
    expand,
    fold,
    global_option,
    imap_store_option,
    legacy_versions,
    old_tls_note,
    parse_bool,
    parse_int,
    parse_size,
    ssl_versions,
    tls_mode,
    tls_versions,
)
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool

# --- IMAPAccount and IMAPStore: drv_imap.c imap_parse_store() --------------------------------------------

_SSL_TYPES = {"none": Mode.NONE, "starttls": Mode.STARTTLS, "imaps": Mode.IMPLICIT}
_EXTENSIONS = frozenset(
    {"logindisabled", "sasl-ir", "uidplus", "literal+", "move", "namespace", "starttls", "compress=deflate"}
)
_ACCOUNT_WORDS = frozenset(
    {"host", "port", "timeout", "pipelinedepth", "disableextension", "disableextensions", "certificatefile"}
    | {"systemcertificates", "clientcertificate", "clientkey", "cipherstring", "ssltype", "tlstype", "sslversion"}
    | {"sslversions", "tlsversions", "usesslv2", "usesslv3", "authmech", "authmechs", "requirecram", "tunnel"}
    | {"user", "usercmd", "pass", "passcmd", "usekeychain", *LEGACY_SSL}
)

_FILE_WORDS = {"certificatefile": "CertificateFile", "clientcertificate": "ClientCertificate", "clientkey": "ClientKey"}
_Files = list[tuple[str, int, str]]


def _imap(
    lines: Lines, home: str, servers: dict[str, Account], is_store: bool
) -> tuple[Account | None, Account | None, _Files]:
    """An IMAPAccount, or an IMAPStore (with `Account NAME` or the account options inline).

    Returns the account this section defines itself (None for a store with `Account`), the account
    its store connects with, and the local files mbsync would open while reading it.
    """
    kind = "IMAP store" if is_store else "IMAP account"
    name, start = lines.value, lines.number
    seen: dict[str, int] = {}  # account keyword -> last line it was on
    host = tunnel = trust_file = user = None
    port, ssl_type, versions = 0, None, None
    flags: dict[str, bool] = {}  # yes/no account options that decide how TLS is set up
    system_trust = True
    ciphers: str | None = None
    client: dict[str, str] = {}  # clientcertificate / clientkey -> expanded path
    sources: dict[str, tuple[str, str]] = {}  # versions/ciphers/client/trust -> (keyword as written, FILE:LINE)
    pins: list[tuple[str, str]] = []
    notes: list[str] = []
    files: _Files = []
    referenced: Account | None = None
    while lines.section():
        keyword, value, line = fold(lines.cmd or ""), lines.value, lines.number
        if keyword not in _ACCOUNT_WORDS:
            if not is_store:
                lines.fail(f"keyword '{lines.cmd}' is not recognized in IMAPAccount sections")
            if keyword == "account":
                if (referenced := servers.get(value)) is None:
                    lines.fail(f"unknown IMAP account '{value}' (an account must be defined above the store)")
            else:
                imap_store_option(lines, keyword)
            continue
        seen[keyword] = line
        if keyword in ("tlstype", "tlsversions"):  # 1.5
            section = "IMAPStore" if is_store else "IMAPAccount"
            lines.newer.append((line, f"keyword '{lines.cmd}' is not recognized in {section} sections"))
        if keyword == "host":
            # drv_imap.c: "imap:" / "imaps:" URL prefixes are a deprecated compatibility hack.
            host = value.removeprefix("imap:")
            if value.startswith("imaps:"):
                host, ssl_type = value[len("imaps:") :], Mode.IMPLICIT
                versions = V10 | V11 | V12 | V13 if versions is None else versions
            host = host.removeprefix("//")
            if host != value:
                notes.append(f"Host on line {line} uses the deprecated URL notation; mbsync reads it as {host}")
        elif keyword == "user":
            user = value
        elif keyword == "port":
            if not 0 <= (port := parse_int(lines)) <= 0xFFFF:
                lines.fail(f"invalid port number '{value}'")
        elif keyword in ("timeout", "pipelinedepth"):
            if parse_int(lines) < 1 and keyword == "pipelinedepth":
                lines.fail("PipelineDepth must be at least 1")
        elif keyword in ("disableextension", "disableextensions"):
            for word in [value, *lines.rest()]:
                if fold(word) not in _EXTENSIONS:
                    lines.fail(f"unrecognized IMAP extension '{word}' for {lines.cmd}")
                if fold(word) == "starttls":
                    notes.append(f"DisableExtension STARTTLS (line {line}): mbsync cannot start TLS in band")
        elif keyword in ("certificatefile", "clientcertificate", "clientkey"):
            path = expand(value, home, f"{lines.cmd} on line {line}", notes)
            files.append((_FILE_WORDS[keyword], line, path))
            if keyword == "certificatefile":
                trust_file = path
                pins.append(("CertificateFile", value))
            else:
                client[keyword] = path
                sources["client"] = (lines.cmd or keyword, f"{lines.source}:{line}")
        elif keyword == "systemcertificates":
            system_trust = parse_bool(lines)
            pins.append(("SystemCertificates", value))
            sources["trust"] = (lines.cmd or keyword, f"{lines.source}:{line}")
        elif keyword == "cipherstring":
            ciphers = value  # socket.c: SSL_CTX_set_cipher_list(ctx, CipherString), checked when connecting
            sources["ciphers"] = (lines.cmd or keyword, f"{lines.source}:{line}")
        elif keyword in ("ssltype", "tlstype"):
            if (ssl_type := _SSL_TYPES.get(fold(value))) is None:
                lines.fail(f"invalid {lines.cmd} '{value}' (None, STARTTLS or IMAPS)")
        elif keyword in ("sslversion", "sslversions"):
            versions = ssl_versions(lines)
            sources["versions"] = (lines.cmd or keyword, f"{lines.source}:{line}")
        elif keyword == "tlsversions":
            versions = tls_versions(lines, versions)
            sources["versions"] = (lines.cmd or keyword, f"{lines.source}:{line}")
        elif keyword in (*LEGACY_SSL, "requirecram", "usekeychain"):
            flags[keyword] = parse_bool(lines)
            if keyword in LEGACY_SSL:
                sources.setdefault("versions", (lines.cmd or keyword, f"{lines.source}:{line}"))
        elif keyword in ("authmech", "authmechs"):
            lines.rest()
        elif keyword == "tunnel":
            tunnel = value
    if referenced is not None:
        if seen:
            lines.fail(f"{kind} '{name}' has both Account and account-specific options", start)
        return None, referenced, files
    for problem, bad in (
        ("neither Tunnel nor Host", tunnel is None and host is None),
        ("both User and UserCmd", {"user", "usercmd"} <= seen.keys()),
        ("both Pass and PassCmd", {"pass", "passcmd"} <= seen.keys()),
        ("both RequireCRAM and AuthMechs", "requirecram" in seen and bool({"authmech", "authmechs"} & seen.keys())),
    ):
        if bad:
            lines.fail(f"{kind} '{name}' has {problem}", start)
    mode = tls_mode(lines, f"{kind} '{name}'", start, tunnel, ssl_type, versions, flags, seen, notes)
    if mode is not Mode.NONE and (versions is not None or {*LEGACY_SSL} & flags.keys()):
        old_tls_note(versions, flags, notes)
    if {*LEGACY_SSL} & flags.keys():
        versions = legacy_versions(flags)
    for word, note in (
        ("tlstype", "TLSType needs isync 1.5 (1.4 rejects the config; SSLType works in both)"),
        ("tlsversions", "TLSVersions needs isync 1.5 (1.4 rejects the config)"),
        ("usekeychain", "UseKeychain is accepted by macOS builds of mbsync only"),
        ("tunnel", "Tunnel: mbsync runs this command and speaks IMAP over it; it opens no connection itself"),
    ):
        if word in seen:
            notes.append(f"line {seen[word]}: {note}")
    account = Account(
        tool=Tool.MBSYNC,
        name=name,
        protocol=Protocol.IMAP,
        # drv_imap.c: with a Tunnel, Host and Port are not connected to; Host is only the name
        # the certificate is checked against when TLS runs over the tunnel.
        host=None if tunnel is not None else host,
        port=None if tunnel is not None else port or (993 if mode is Mode.IMPLICIT else 143),
        mode=mode,
        source=f"{lines.source}:{start}",
        servername=host if tunnel is not None and mode is not Mode.NONE else None,
        trust_file=trust_file,
        system_trust=system_trust,
        transport=None if tunnel is None else f"tunnel {tunnel}",
        pin_options=tuple(pins),
        notes=tuple(notes),
        user=user,
        tls_versions=() if versions is None else offered_versions(versions) or ("none",),
        ciphers=ciphers,
        # socket.c: the certificate is presented only with its key (SSL_CTX_use_certificate_chain_file,
        # SSL_CTX_use_PrivateKey_file): one without the other presents nothing.
        client_cert=client.get("clientcertificate") if len(client) == 2 else None,
        client_key=client.get("clientkey") if len(client) == 2 else None,
        tls_sources=tuple((role, setting, where) for role, (setting, where) in sources.items()),
    )
    return account, account, files


def offered_versions(versions: int) -> tuple[str, ...]:
    """The TLS versions OpenSSL offers when mbsync turns the others off (socket.c: SSL_OP_NO_TLSv1*):
    `ssl_get_min_max_version` walks down from the highest version and starts afresh after each gap,
    so only the lowest contiguous run of enabled versions is used (TLSv1 + TLSv1.3: TLS 1.0 alone)."""
    run: list[str] = []
    for bit, name in ((V13, "TLSv1.3"), (V12, "TLSv1.2"), (V11, "TLSv1.1"), (V10, "TLSv1")):
        if versions & bit:
            run.insert(0, name)
        elif run and any(versions & lower for lower in (V10, V11, V12, V13) if lower < bit):
            run = []  # a gap with enabled versions below it: OpenSSL starts again from there
    return tuple(run)


# --- the file -----------------------------------------------------------------------------------------


def parse(text: str, source: str, home: str) -> MbsyncConfig:
    """Read an mbsync config; the first error mbsync would report raises `ConfigError`."""
    lines = Lines(text, source)
    accounts: list[Account] = []
    servers: dict[str, Account] = {}  # IMAPAccount names; Account lookups take the first (strcmp loop)
    stores: dict[str, Store] = {}
    channels: list[Channel] = []
    groups: list[Group] = []
    files: list[tuple[str, int, str]] = []
    global_ok = True  # config.c: "global options may not follow sections"
    while lines.next():
        if lines.cmd is None:
            continue
        keyword, name, start = fold(lines.cmd), lines.value, lines.number
        if keyword in ("imapaccount", "imapstore"):
            own, used, found_files = _imap(lines, home, servers, keyword == "imapstore")
            files += found_files
            # A second definition of a name is read (and checked) but never used: lookups take the first.
            known = servers if keyword == "imapaccount" else stores
            accounts += [own] if own is not None and name not in known else []
            if keyword == "imapaccount" and own is not None:
                servers.setdefault(name, own)
            else:
                stores.setdefault(name, Store(name, start, used))
        elif keyword == "maildirstore":
            check_maildir_store(lines)
            stores.setdefault(name, Store(name, start, None))
        elif keyword == "channel":
            channels.append(_channel(lines, stores))
        elif keyword == "group":
            groups.append(_group(lines))
        else:
            global_option(lines, keyword)
            if not global_ok:
                lines.fail(f"global option '{lines.cmd}' may not follow sections: move it to the top")
            continue
        global_ok = False
    return MbsyncConfig(
        tuple(accounts), source, tuple(stores.values()), tuple(channels), tuple(groups), tuple(files),
        newer=tuple(lines.newer),
    )  # fmt: skip


def _channel(lines: Lines, stores: dict[str, Store]) -> Channel:
    """A Channel section; `Far`/`Near` may only name stores defined above it (config.c)."""
    name, start = lines.value, lines.number
    sides: dict[str, Store] = {}
    patterns = False
    while lines.section():
        keyword = fold(lines.cmd or "")
        if keyword in ("far", "near", "master", "slave"):  # Master/Slave: pre-1.4 names, still read
            spec = lines.value
            end = spec.find(":", 1)
            if not spec.startswith(":") or end < 0:
                lines.fail(f"malformed mailbox spec '{spec}' (write {lines.cmd} :STORE:[MAILBOX])")
            if (store := stores.get(spec[1:end])) is None:
                lines.fail(f"unknown store '{spec[1:end]}' (a store must be defined above the channel)")
            sides["far" if keyword in ("far", "master") else "near"] = store
        elif keyword in ("pattern", "patterns"):
            lines.rest()
            patterns = True
        elif keyword == "maxsize":
            parse_size(lines)
        elif not channel_option(lines, keyword):
            lines.fail(f"keyword '{lines.cmd}' is not recognized in Channel sections")
    for side in ("far", "near"):
        if side not in sides:
            lines.fail(f"channel '{name}' refers to no {side} side store (add {side.title()} :STORE:)", start)
    return Channel(name, start, sides["far"], sides["near"], patterns)


def _group(lines: Lines) -> Group:
    name, start = lines.value, lines.number
    members = lines.rest()
    while lines.section():
        if fold(lines.cmd or "") not in ("channel", "channels"):
            lines.fail(f"keyword '{lines.cmd}' is not recognized in Group sections")
        members += [lines.value, *lines.rest()]
    return Group(name, start, tuple(members))


# --- the file mbsync would read, and the accounts one invocation uses ------------------------------------


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """`-c FILE`, else (isync ≥ 1.5) `$XDG_CONFIG_HOME/isyncrc` if it exists, else `~/.mbsyncrc`.

    isync 1.4 (Debian 12) reads only `~/.mbsyncrc`: when an XDG file exists, the installed mbsync's
    version decides which file it reads (home-manager writes the XDG file).
    """
    return _paths(mbsync_argv.parse_argv(argv), env)


def _paths(command: mbsync_argv.Invocation, env: Env) -> list[Path]:
    explicit = command.config
    if explicit is not None:
        return [Path(explicit)]
    xdg, legacy = env.config_home / "isyncrc", env.home / ".mbsyncrc"
    candidates = (xdg, legacy) if xdg.is_file() and _reads_xdg_config(env) else (legacy,)
    return [path for path in candidates if path.exists()][:1]  # a directory there: load() says so


def _reads_xdg_config(env: Env) -> bool:
    """Does the mbsync on PATH read `$XDG_CONFIG_HOME/isyncrc` (isync ≥ 1.5)? Unknown: assume it does."""
    from mailpin.configs.tool_version import installed

    version = installed("mbsync", env)
    return version is None or version >= (1, 5)


def load(argv: Sequence[str], env: Env) -> MbsyncConfig:
    return load_parsed(mbsync_argv.parse_argv(argv), env)


def load_parsed(command: mbsync_argv.Invocation, env: Env) -> MbsyncConfig:
    """The config file `command` makes mbsync read, read (the command line as `mbsync_argv` read it)."""
    paths = _paths(command, env)
    if not paths:
        return MbsyncConfig((), str(env.home / ".mbsyncrc"), found=False)
    try:
        data = paths[0].read_bytes()
    except IsADirectoryError:
        # config.c load_config: fopen() opens a directory and reads nothing from it; mbsync then
        # stops with "No channels defined".
        raise ConfigError(str(paths[0]), None, "is a directory, not an mbsync config file") from None
    except OSError as exc:
        raise ConfigError(str(paths[0]), None, f"cannot read this mbsync config file: {exc.strerror}") from None
    config = replace(parse(data.decode("utf-8", "surrogateescape"), str(paths[0]), str(env.home)), data=data)
    if config.newer:
        # The grammar above is 1.4's widened to 1.5's: what only 1.5 takes is refused by the mbsync
        # that is installed when it is older — with its own words, as it would refuse the file.
        from mailpin.configs.tool_version import installed

        version = installed("mbsync", env)
        if version is not None and version < (1, 5):
            line, refusal = config.newer[0]
            raise ConfigError(
                config.source, line, f"{refusal} (isync {version[0]}.{version[1]} is installed; this needs isync 1.5)"
            )
    for keyword, line, file in config.local_files:
        # drv_imap.c checks access(R_OK) while reading the config and refuses the config otherwise.
        if not os.access(file, os.R_OK):
            raise ConfigError(config.source, line, f"{keyword} '{file}' cannot be read: mbsync refuses this config")
    return config


def select(config: MbsyncConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, mbsync_argv.parse_argv(argv), message)


def select_parsed(config: MbsyncConfig, command: mbsync_argv.Invocation, message: bytes | None = None) -> list[Account]:
    """The IMAP accounts of the stores this `mbsync ARGV…` opens (see `mbsync_argv.select`)."""
    return mbsync_argv.select(config, command)


def needs_message(argv: Sequence[str]) -> bool:
    return False  # mbsync reads no message: the command line alone decides
