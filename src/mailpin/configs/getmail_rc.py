"""One getmail rc file, read the way getmail6 6.18 (Debian 12: 6.18.11) reads it.

`/usr/bin/getmail` `main` reads each rc file with `ConfigParser.RawConfigParser(defaults)` (no
interpolation; its [options] defaults, which — with the file's own [DEFAULT] — are dropped again,
`configparser._defaults = {}`, before [retriever] is read), looks `[retriever] type` up in
`getmailcore.retrievers`, and instantiates that class with every option of [retriever]:
`baseclasses.ConfigurableBase.checkconf` validates each of the class's `_confitems`, converting ints
and tuples with Python's `eval`. mailpin evaluates literals only (`ast.literal_eval`, which gives the
same value for them): a value that needs more is refused where it decides the connection (`port`,
`ssl_fingerprints`) and told otherwise. Nothing the rc asks getmail to run is run
(`password_command`, an `eval`). The TLS rules are those of `_retrieverbases` (`CertMixIn`,
`*SSLinitMixIn._connect`, the module's own `wrap_socket`) and `utilities.check_ssl_*`.
"""

from __future__ import annotations

import ast
import configparser
import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailpin.configs.offlineimap_parsed import LinearConfigParser, LineNumbered
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool


@dataclass(frozen=True)
class Retriever:
    """A class of `getmailcore.retrievers`: what it speaks and the `_confitems` it validates, in order."""

    protocol: Protocol
    tls: bool  # a *SSLinitMixIn class: TLS from the first byte. The others speak cleartext: getmail has no STARTTLS
    port: int  # the default of its `ConfInt(name='port')`
    items: tuple[str, ...]


_POP = "getmaildir timeout server port username password password_command use_apop"
_IMAP = "getmaildir timeout server port username password password_command mailboxes use_peek move_on_delete " \
    "record_mailbox"  # fmt: skip
_SSL = "keyfile certfile ca_certs ssl_fingerprints ssl_version ssl_ciphers"
_AUTH = "use_cram_md5 use_kerberos use_xoauth2"
P3, IM = Protocol.POP3, Protocol.IMAP
# retrievers.py `__all__`, each class's `_confitems` (after `configparser`); ports: poplib/imaplib, POP3_SSL_PORT.
RETRIEVERS: dict[str, Retriever] = {
    name: Retriever(protocol, tls, port, tuple(items.split()))
    for name, protocol, tls, port, items in (
        ("SimplePOP3Retriever", P3, False, 110, f"{_POP} delete_dup_msgids"),
        ("SimplePOP3SSLRetriever", P3, True, 995, f"{_POP} delete_dup_msgids {_SSL} ssl_cert_hostname"),
        ("BrokenUIDLPOP3Retriever", P3, False, 110, _POP),
        ("BrokenUIDLPOP3SSLRetriever", P3, True, 995, f"{_POP} {_SSL} ssl_cert_hostname"),
        ("MultidropPOP3Retriever", P3, False, 110, f"{_POP} envelope_recipient"),
        ("MultidropPOP3SSLRetriever", P3, True, 995, f"{_POP} envelope_recipient {_SSL} ssl_cert_hostname"),
        ("MultidropSDPSRetriever", P3, False, 110, _POP),
        ("SimpleIMAPRetriever", IM, False, 143, f"{_IMAP} {_AUTH} imap_search imap_on_delete"),
        ("SimpleIMAPSSLRetriever", IM, True, 993,
         f"{_IMAP} {_SSL} {_AUTH} ssl_cert_hostname imap_search imap_on_delete"),
        ("MultidropIMAPRetriever", IM, False, 143, f"{_IMAP} {_AUTH} envelope_recipient imap_search imap_on_delete"),
        ("MultidropIMAPSSLRetriever", IM, True, 993,
         f"{_IMAP} {_SSL} {_AUTH} envelope_recipient ssl_cert_hostname imap_search imap_on_delete"),
    )
}  # fmt: skip
# The ConfItem class of each item (baseclasses.py) and whether it is required (no default).
_STR, _INT, _BOOL, _TUPLE, _MAILBOXES, _FILE, _DIR = "str", "int", "bool", "tuple", "mailboxes", "file", "dir"
ITEMS: dict[str, tuple[str, bool]] = {
    "getmaildir": (_DIR, False), "timeout": (_INT, False), "server": (_STR, True), "port": (_INT, False),
    "username": (_STR, True), "password": (_STR, False), "password_command": (_TUPLE, False),
    "use_apop": (_BOOL, False), "delete_dup_msgids": (_BOOL, False), "envelope_recipient": (_STR, True),
    "keyfile": (_FILE, False), "certfile": (_FILE, False), "ca_certs": (_FILE, False),
    "ssl_fingerprints": (_TUPLE, False), "ssl_version": (_STR, False), "ssl_ciphers": (_STR, False),
    "ssl_cert_hostname": (_STR, False), "mailboxes": (_MAILBOXES, False), "use_peek": (_BOOL, False),
    "move_on_delete": (_STR, False), "record_mailbox": (_BOOL, False), "use_cram_md5": (_BOOL, False),
    "use_kerberos": (_BOOL, False), "use_xoauth2": (_BOOL, False), "imap_search": (_STR, False),
    "imap_on_delete": (_STR, False),
}  # fmt: skip
_TLS_ITEMS = (*_SSL.split(), "ssl_cert_hostname")
# Classes `getattr(destinations|filters, type)` finds that can be instantiated (those with `_confitems`).
DESTINATIONS = frozenset(
    {"Maildir", "Mboxrd", "MDA_qmaillocal", "MDA_external", "MDA_lmtp", "MultiDestination", "MultiSorter",
     "MultiGuesser"}
)  # fmt: skip
FILTERS = frozenset({"Filter_external", "Filter_classifier", "Filter_TMDA"})

# /usr/bin/getmail: `options_bool`, `options_int`, and the `defaults` it hands the parser (bools as str).
OPTIONS_BOOL = (
    "read_all", "delete", "delivered_to", "received", "message_log_verbose", "message_log_syslog", "fingerprint",
    "use_netrc", "skip_imap_fetch_size", "to_oldmail_on_each_mail",
)  # fmt: skip
OPTIONS_INT = (
    "delete_after", "delete_bigger_than", "max_message_size", "max_messages_per_session", "max_bytes_per_session",
    "verbose",
)  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "verbose": 1, "read_all": True, "delete": False, "delete_after": 0, "to_oldmail_on_each_mail": False,
    "delete_bigger_than": 0, "max_message_size": 0, "max_messages_per_session": 0, "max_bytes_per_session": 0,
    "delivered_to": True, "received": True, "logfile": None, "message_log": None, "message_log_verbose": False,
    "message_log_syslog": False, "fingerprint": False, "use_netrc": False, "netrc_file": None,
    "skip_imap_fetch_size": False,
}  # fmt: skip
# "Python's ConfigParser .getboolean() couldn't handle booleans in the defaults": main() hands them as str.
_PARSER_DEFAULTS = {key: str(value) if isinstance(value, bool) else value for key, value in DEFAULTS.items()}
# utilities.check_ssl_version: the names getmail knows, and the versions each lets Python's ssl speak
# (PROTOCOL_SSLv23 is PROTOCOL_TLS, the library's range; Debian's Python has no PROTOCOL_SSLv3).
SSL_VERSIONS: dict[str, tuple[str, ...]] = {"sslv23": (), "tlsv1": ("TLSv1",), "tlsv1_1": ("TLSv1.1",),
                                            "tlsv1_2": ("TLSv1.2",)}  # fmt: skip
_CIPHER_CHARS = re.compile(r"[^a-zA-z0-9, :!\-+@=]")  # utilities.check_ssl_ciphers, `A-z` and all
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # posixpath.expandvars


@dataclass(frozen=True)
class Context:
    getmaildir: str  # what main() hands every retriever as `getmaildir` (an rc may set its own)
    environ: Mapping[str, str]
    cwd: str | None = None  # getmail's working directory: relative paths are relative to it
    files: bool = False  # check the files getmail checks (this machine's rc files, not a sample)


@dataclass(frozen=True)
class Rc:
    """One rc file: the account getmail makes of it, or why getmail stops on it."""

    name: str  # the account name (getmail:NAME)
    path: str  # what getmail opens: os.path.join(getmaildir, the -r argument or listed name)
    account: Account | None = None
    problem: ConfigError | None = None  # getmail stops while it reads its rc files, before any connection
    refusal: ConfigError | None = None  # getmail stops when it comes to this rc's connection (check_ssl_*)
    read_all: bool = True  # [options], before the command line's -a/-n, -d/-l
    delete: bool = False
    fetch_size_skip: bool = False  # skip_imap_fetch_size with a size limit: go() skips the rc, never connects
    retriever: bool = True  # has a [retriever] section (a file in the getmaildir that is no rc file has not)


def expand_user_vars(text: str, environ: Mapping[str, str]) -> str:
    """utilities.expand_user_vars: os.path.expanduser(os.path.expandvars(s)), over `environ`."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        name = name[1:-1] if name.startswith("{") and name.endswith("}") else name
        return environ.get(name, match.group(0))

    path = _VAR.sub(variable, text) if "$" in text else text
    if not path.startswith("~"):
        return path
    end = path.find("/", 1)
    end = len(path) if end < 0 else end
    try:  # posixpath.expanduser: $HOME for `~`, else the password database
        home = environ["HOME"] if end == 1 and "HOME" in environ else None
        if home is None:
            home = pwd.getpwuid(os.getuid()).pw_dir if end == 1 else pwd.getpwnam(path[1:end]).pw_dir
    except KeyError:
        return path
    return (home.rstrip("/") + path[end:]) or "/"


# --- the parser getmail builds, with the line each section and option came from ---------------------


class _Parser(configparser.RawConfigParser):
    OPTCRE = LinearConfigParser.OPTCRE  # configparser's own regex, in linear time (see offlineimap_parsed)

    def _handle_error(self, exc: Any, fpname: str, lineno: int, line: str) -> Any:
        return exc or super()._handle_error(exc, fpname, lineno, line)  # type: ignore[misc]


class _Stop(Exception):
    """getmail stops on this rc file (a ConfigError inside, raised where the reading found it)."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(error.message)
        self.error = error


class _File(LineNumbered):
    def __init__(self, text: str, path: str) -> None:
        super().__init__()
        self.path = path
        self.parser = _Parser(_PARSER_DEFAULTS, dict_type=self.recording_dict())
        try:
            self.read(self.parser, text, path)
        except configparser.MissingSectionHeaderError as exc:
            # Never the line's text in a message: it may be a password written without `=`.
            raise self.stop(exc.lineno, "this line comes before any [section] header (getmail: \"File contains no "
                            "section headers\")") from None  # fmt: skip
        except configparser.ParsingError as exc:
            raise self.stop(exc.errors[0][0], "cannot read this line: expected `option = value`, a [section] header "
                            "or a # comment (getmail: \"Source contains parsing errors\")") from None  # fmt: skip
        except configparser.DuplicateSectionError as exc:
            raise self.stop(exc.lineno, f"section [{exc.section}] appears twice") from None
        except configparser.DuplicateOptionError as exc:
            raise self.stop(exc.lineno, f"option {exc.option!r} appears twice in [{exc.section}]") from None

    def line(self, section: str, option: str = "") -> int | None:
        found = self.lines.get((section, option))
        return found if found is not None or not option else self.lines.get((section, ""))

    def stop(self, line: int | None, problem: str) -> _Stop:
        return _Stop(ConfigError(self.path, line, problem))

    def where(self, section: str, option: str = "") -> str:
        line = self.line(section, option)
        return f"{self.path}:{line}" if line is not None else self.path


# --- eval, for literals ------------------------------------------------------------------------------


class _NotLiteral(Exception):
    """getmail would evaluate this value as Python code; mailpin runs none."""


def _python(text: str) -> object:
    """`eval(text)` as ConfItem.validate calls it, for literals; ValueError/SyntaxError as eval raises them."""
    try:
        tree = ast.parse(text.lstrip(" \t"), "<string>", mode="eval")  # eval() skips leading blanks too
    except (RecursionError, MemoryError):
        raise ValueError("too deeply nested") from None
    try:
        return ast.literal_eval(tree)
    except ValueError:  # a name, a call, an operator: code to run, not a literal
        raise _NotLiteral from None
    except TypeError as exc:  # `{[1]: 2}`: eval's TypeError stops getmail too (caught for an int, not a tuple)
        raise ValueError(str(exc)) from None
    except (RecursionError, MemoryError):
        raise ValueError("too deeply nested") from None


# --- one rc file, the way main() reads it ------------------------------------------------------------


def read(text: str, path: str, name: str, ctx: Context) -> Rc:
    """The rc file `text` (read from `path`) as getmail's main() reads it, then as its go() connects."""
    try:
        rc = _File(text, path)
    except _Stop as stop:  # told for a file of the getmaildir only when it looks like an rc file
        return Rc(name, path, problem=stop.error, retriever="[retriever]" in text)
    options: dict[str, Any] = {}
    try:
        options = _options(rc, ctx)
        return _account(rc, name, options, ctx)
    except _Stop as stop:
        return Rc(name, path, problem=stop.error, retriever=rc.parser.has_section("retriever"),
                  read_all=options.get("read_all", True), delete=options.get("delete", False))  # fmt: skip


def _options(rc: _File, ctx: Context) -> dict[str, Any]:
    """main(): [options] through getboolean/getint (over the parser's defaults and the file's [DEFAULT])."""
    parser, options = rc.parser, dict(DEFAULTS)
    for option, kind, get in (
        *((option, "boolean", parser.getboolean) for option in OPTIONS_BOOL),
        *((option, "integer", parser.getint) for option in OPTIONS_INT),
    ):
        if parser.has_option("options", option):
            try:
                options[option] = get("options", option)
            except ValueError:
                value = parser.get("options", option)
                line = rc.lines.get(("options", option)) or rc.lines.get((configparser.DEFAULTSECT, option))
                raise rc.stop(line, f"option {option} must be {kind}, not {value}") from None
    for option in ("message_log", "netrc_file"):
        if parser.has_option("options", option):
            options[option] = parser.get("options", option)
    if options["use_netrc"] and ctx.files:
        # netrc.netrc(netrc_file or None): a missing file stops getmail (FileNotFoundError, unhandled).
        given = options["netrc_file"]
        netrc = expand_user_vars(given, ctx.environ) if given else expand_user_vars("~/.netrc", ctx.environ)
        if not os.path.isfile(_at(netrc, ctx)):
            raise rc.stop(rc.line("options", "use_netrc"), f"use_netrc: {netrc}: no such file (getmail stops)")
    # "Clear out the ConfigParser defaults before processing further sections".
    for key in list(parser.defaults()):
        parser.remove_option(configparser.DEFAULTSECT, key)
    return options


def _account(rc: _File, name: str, options: dict[str, Any], ctx: Context) -> Rc:
    parser = rc.parser
    if not parser.has_section("retriever"):
        raise rc.stop(None, "missing section (No section: 'retriever')")
    header = rc.line("retriever")
    if not parser.has_option("retriever", "type"):
        raise rc.stop(header, "missing option (No option 'type' in section: 'retriever')")
    kind = parser.get("retriever", "type")
    retriever = RETRIEVERS.get(kind)
    if retriever is None:
        raise rc.stop(rc.line("retriever", "type"), f"[retriever] type {kind!r} is not a getmail retriever; getmail "
                      f"knows {', '.join(RETRIEVERS)}")  # fmt: skip
    args = {key: value for key, value in parser.items("retriever") if key not in ("type", "configparser")}
    notes: list[str] = []
    if options["use_netrc"]:
        if "server" not in args:  # main(): netrc_object.authenticators(retriever_args['server'])
            raise rc.stop(header, "use_netrc needs [retriever] server (getmail stops: KeyError 'server')")
        notes.append(f"use_netrc: getmail takes the username (and password) for {args['server']} from "
                     f"{options['netrc_file'] or '~/.netrc'} when it has them; mailpin did not read it")  # fmt: skip
    conf = _validate(rc, retriever, args, options["use_netrc"], ctx, notes)
    _sections(rc)
    refusal, tls = None, {}
    try:
        tls = _tls(rc, retriever, conf, ctx, notes) if retriever.tls else {}
    except _Stop as stop:
        refusal = stop.error
    server, port = conf["server"], conf["port"]
    if refusal is None and not server:
        refusal = ConfigError(rc.path, rc.line("retriever", "server"), "server is empty: getmail connects nowhere")
    if refusal is None and not 0 < port < 65536:
        refusal = ConfigError(rc.path, rc.line("retriever", "port"), f"port {port} is not a TCP port")
    for ignored in sorted(set(args) - set(retriever.items)):
        # ConfigurableBase: 'Warning: ignoring unknown parameter' (its value is never shown: it may be a password)
        why = (
            f"{kind} has no TLS (getmail has no STARTTLS)" if ignored in _TLS_ITEMS else f"{kind} knows no such option"
        )
        notes.append(f"{ignored} is ignored (line {rc.line('retriever', ignored)}): {why}")
    if conf.get("password_command"):
        notes.append("password_command is not run by mailpin")
    if conf.get("use_kerberos"):
        notes.append("use_kerberos: getmail stops unless python3-kerberos (GSS) is installed")
    account = Account(
        tool=Tool.GETMAIL, name=name, protocol=retriever.protocol, host=server or None, port=port,
        mode=Mode.IMPLICIT if retriever.tls else Mode.NONE, source=rc.where("retriever"),
        user=conf["username"], notes=tuple(notes), **tls,
    )  # fmt: skip
    skip = options["skip_imap_fetch_size"] and bool(
        options["max_message_size"] or options["max_bytes_per_session"] or options["delete_bigger_than"]
    )
    return Rc(name, rc.path, account, refusal=refusal, read_all=options["read_all"], delete=options["delete"],
              fetch_size_skip=skip)  # fmt: skip


def _validate(
    rc: _File, retriever: Retriever, args: dict[str, str], netrc: bool, ctx: Context, notes: list[str]
) -> dict[str, Any]:
    """ConfigurableBase.checkconf: each of the class's `_confitems`, in order, as its ConfItem validates it."""
    conf: dict[str, Any] = {}
    given = {"getmaildir": ctx.getmaildir, **args}  # main(): retriever_args = {'getmaildir': getmaildir, ...}
    for item in retriever.items:
        kind, required = ITEMS[item]
        line = rc.line("retriever", item)
        value = given.get(item)
        if value is None:
            if required and not (netrc and item == "username"):
                raise rc.stop(rc.line("retriever"), f"{item}: missing required configuration parameter")
            conf[item] = retriever.port if item == "port" else 180 if item == "timeout" else None
            continue
        try:
            conf[item] = _convert(rc, item, kind, value, line, ctx)
        except _NotLiteral:
            if item in ("port", "ssl_fingerprints"):  # they decide where and to what getmail connects
                raise rc.stop(
                    line,
                    f"{item} = {value}: getmail evaluates this as Python; mailpin runs no code from "
                    "a config and so cannot tell what getmail would do: write it as a literal",
                ) from None
            notes.append(f"{item} (line {line}) is Python that getmail evaluates; mailpin did not")
            conf[item] = None
    return conf


def _convert(rc: _File, item: str, kind: str, value: str, line: int | None, ctx: Context) -> Any:
    if kind == _INT:
        try:
            return int(_python(value))  # type: ignore[call-overload]
        except (ValueError, SyntaxError, TypeError, OverflowError) as exc:
            raise rc.stop(line, f"{item}: configuration value ({value}) not of required type <class 'int'> "
                          f"({exc})") from None  # fmt: skip
    if kind == _BOOL:
        if value.lower() not in _BOOLS:  # utilities.eval_bool
            raise rc.stop(line, f'{item}: boolean parameter requires value to be one of true or false, not "{value}"')
        return _BOOLS[value.lower()]
    if kind in (_TUPLE, _MAILBOXES):
        return _tuple(rc, item, kind, value, line)
    if kind in (_FILE, _DIR):  # ConfFile / ConfDirectory: expand_user_vars, then the file must be there
        path = expand_user_vars(value, ctx.environ)
        check, what = (os.path.isfile, "file") if kind == _FILE else (os.path.isdir, "directory")
        if not path or (ctx.files and not check(_at(path, ctx))):
            raise rc.stop(line, f'{item}: specified {what} "{path}" does not exist')
        return _at(path, ctx)
    return value


def _tuple(rc: _File, item: str, kind: str, value: str, line: int | None) -> tuple[str, ...]:
    """ConfTupleOfStrings, or ConfTupleOfUnicode for `mailboxes` (where ALL, bare or quoted, means every one)."""
    if kind == _MAILBOXES and value.strip() == "ALL":
        return ("ALL",)
    try:
        found = _python(value or "()")
        if kind == _MAILBOXES and found == "ALL":
            return ("ALL",)
        if not isinstance(found, tuple):
            raise ValueError("not a tuple")
        if kind == _MAILBOXES:  # each item str, or bytes that are UTF-8 (anything else: a TypeError stops getmail)
            return tuple(part if isinstance(part, str) else _mailbox(part) for part in found)
    except (ValueError, SyntaxError) as exc:
        raise rc.stop(line, f"{item}: incorrect format ({exc})") from None
    return tuple(str(part) for part in found)


def _mailbox(part: object) -> str:
    if not isinstance(part, bytes):
        raise ValueError(f"a mailbox is text, not {type(part).__name__} (getmail stops with a TypeError)")
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"not ascii or utf-8: {part!r}") from None


def _sections(rc: _File) -> None:
    """main() after the retriever: [destination] and the filter sections, whose classes must exist."""
    parser = rc.parser
    for section, known, what in (
        ("destination", DESTINATIONS, "destination"),
        *((section, FILTERS, "filter") for section in sorted(s.lower() for s in parser.sections()
                                                              if s.lower().startswith("filter"))),
    ):  # fmt: skip
        if not parser.has_section(section):  # a [Filter1] is looked up as [filter1]
            raise rc.stop(None, f"missing section (No section: {section!r})")
        if not parser.has_option(section, "type"):
            raise rc.stop(rc.line(section), f"missing option (No option 'type' in section: {section!r})")
        kind = parser.get(section, "type")
        if kind not in known:
            raise rc.stop(rc.line(section, "type"), f"[{section}] type {kind!r} is not a getmail {what}; getmail "
                          f"knows {', '.join(sorted(known))}")  # fmt: skip


def _tls(rc: _File, retriever: Retriever, conf: dict[str, Any], ctx: Context, notes: list[str]) -> dict[str, Any]:
    """*SSLinitMixIn._connect and CertMixIn.ssl_cipher_hash: what getmail's TLS session does.

    Without ca_certs, getmail's context checks nothing (poplib/imaplib's unverified stdlib context, or
    its own `wrap_socket` with CERT_NONE); with it, CERT_REQUIRED against that one file only (a fresh
    SSLContext: no system store), then `ssl_match_hostname(cert, ssl_cert_hostname or server)`.
    `ssl_fingerprints` are compared with the SHA-256 of the leaf's DER, in lower-case hex, either way.
    The name sent as SNI is always `server`."""
    keyfile, certfile, ca_certs = conf["keyfile"], conf["certfile"], conf["ca_certs"]
    if (keyfile is None) ^ (certfile is None):  # check_ssl_key_and_cert
        raise rc.stop(rc.line("retriever", "keyfile" if certfile is None else "certfile"),
                      "optional certfile and keyfile must be supplied together")  # fmt: skip
    version = conf["ssl_version"]
    if version is not None and version.lower() not in SSL_VERSIONS:  # check_ssl_version, even when empty
        raise rc.stop(rc.line("retriever", "ssl_version"), f'unknown or unsupported ssl_version "{version}"')
    ciphers = conf["ssl_ciphers"]
    if ciphers and _CIPHER_CHARS.search(ciphers):
        raise rc.stop(rc.line("retriever", "ssl_ciphers"), "invalid character in ssl_ciphers")
    fingerprints = tuple(fpr.lower().replace(":", "") for fpr in conf["ssl_fingerprints"] or ())
    if any(len(fpr) != 64 for fpr in fingerprints):  # check_ssl_fingerprints, once the handshake is done
        raise rc.stop(rc.line("retriever", "ssl_fingerprints"), "ssl_fingerprints must each be the SHA256 "
                      "certificate hash in hex (with or without colons)")  # fmt: skip
    hostname = conf["ssl_cert_hostname"] or None
    if not ca_certs:
        notes.append("without ca_certs getmail checks no certificate chain and no name"
                     + (" (only ssl_fingerprints)" if fingerprints else "")
                     + "; mailpin checks the chain against the system store")  # fmt: skip
    if hostname is not None:
        notes.append(f"ssl_cert_hostname: getmail sends {conf['server']} as SNI and checks the certificate for "
                     f"{hostname}" + ("" if ca_certs else " only with ca_certs"))  # fmt: skip
    sources = [("trust", "ca_certs"), ("versions", "ssl_version"), ("ciphers", "ssl_ciphers"),
               ("client", "certfile"), ("client", "keyfile")]  # fmt: skip
    return {
        "servername": hostname,
        "trust_file": ca_certs,
        "system_trust": not ca_certs,
        "certcheck": bool(ca_certs or fingerprints),
        "fingerprints": fingerprints,
        "tls_versions": SSL_VERSIONS[version.lower()] if version else (),
        "ciphers": ciphers or None,
        "client_cert": certfile,
        "client_key": keyfile,
        "pin_options": tuple(
            (option, rc.parser.get("retriever", option))
            for option in ("ca_certs", "ssl_fingerprints", "ssl_cert_hostname")
            if rc.parser.has_option("retriever", option)
        ),
        "tls_sources": tuple(
            (role, option, rc.where("retriever", option))
            for role, option in sources
            if rc.parser.has_option("retriever", option)
        ),
    }


def _at(path: str, ctx: Context) -> str:
    """A path as getmail's working directory sees it (absolute when that directory is known)."""
    return os.path.join(ctx.cwd, path) if ctx.cwd is not None and path else path
