"""fetchmail's run-control file, parsed the way fetchmail 6.4 parses it (Debian 12: 6.4.37).

`parse` is the bison grammar of `rcfile_y.y` with its actions, over `fetchmail_syntax.tokens`: one
`Query` per user of a server entry (`record_current`), server options shared by the entry's users
(`user_reset` keeps them), relative file names made absolute against the rc file's directory
(`prependdir`). A syntax error is `ConfigError(file, line, fetchmail's words)` — "syntax error at
TOKEN", "server option after user options at TOKEN" — at the token bison reports. The password is
read and dropped, never kept, and the word after it is never quoted in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mailpin.configs.fetchmail_syntax import (
    EOF,
    Setting,
    Token,
    interface_problem,
    names,
    prependdir,
    rc_directory,
    tokens,
)
from mailpin.errors import ConfigError


@dataclass(frozen=True)
class Query:
    """fetchmail's `struct query`: one user of one server entry, with the entry's server options.
    `fields` are fetchmail's member names; a member left unset (NULL, 0) is absent."""

    pollname: str
    skip: bool
    entry: int  # index in RcFile.entries
    fields: Mapping[str, Setting]
    aka: tuple[str, ...] = ()  # server.akalist: matched by name on the command line, never merged


@dataclass(frozen=True)
class UserClause:
    """One user of a server entry, as written (or the entry's implied single user)."""

    remote: str | None  # the remote name as written (`user NAME`, `is NAME there`); None: the login's
    line: int
    end: int  # offset in the text where options for this user can be appended (` sslproto ''`)


@dataclass(frozen=True)
class Entry:
    """One `poll`/`skip`/`defaults` statement: where it is in the text, so it can be rewritten.

    Server options (`plugin`, `via`, `service`) belong before the first user option: `server_end`
    is the offset after the last server option (or the name), where one may be inserted and then
    overrides an earlier one. User options (`sslproto`, `ssl`) belong to each user: append them at
    each `UserClause.end` (an entry without users takes them at `server_end`)."""

    keyword: str  # poll, server, skip, defaults
    pollname: str
    skip: bool
    first_line: int
    last_line: int
    start: int  # offsets into the text: the keyword ... the end of the statement's last token
    end: int
    server_end: int
    users: tuple[UserClause, ...]


@dataclass(frozen=True)
class RcFile:
    queries: tuple[Query, ...]
    entries: tuple[Entry, ...]
    globals: Mapping[str, Setting] = field(default_factory=lambda: MappingProxyType({}))  # `set …`


def parse(text: str, source: str, rcdir: str | None = None) -> RcFile:
    """The grammar over the whole file; `rcdir` defaults to the directory of `source`."""
    return _Grammar(text, source, rc_directory(source) if rcdir is None else rcdir).run()


# Tokens that start a server option / a user option (rcfile_y.y serv_option, user_option), and the
# words `no` may precede in each. A `no` after user options is always a user option's: bison's two
# expected shift/reduce conflicts (%expect 2) resolve to the shift.
_SERVER = names(
    "AKA VIA LOCALDOMAINS PROTOCOL PRINCIPAL ESMTPNAME ESMTPPASSWORD UIDL CHECKALIAS SERVICE PORT INTERVAL "
    "AUTHENTICATE TIMEOUT ENVELOPE QVIRTUAL INTERFACE MONITOR PLUGIN PLUGOUT DNS TRACEPOLLS BADHEADER"
)
_SERVER_NO = names("UIDL CHECKALIAS DNS ENVELOPE TRACEPOLLS")
_USER = names(
    "TO IS PASSWORD FOLDER SMTPHOST FETCHDOMAINS SMTPADDRESS SMTPNAME SPAMRESPONSE MDA BSMTP LMTP PRECONNECT "
    "POSTCONNECT KEEP FLUSH LIMITFLUSH FETCHALL REWRITE FORCECR STRIPCR PASS8BITS DROPSTATUS DROPDELIVERED "
    "MIMEDECODE IDLE SSL SSLKEY SSLCERT SSLPROTO SSLCERTCK SSLCERTFILE SSLCERTPATH SSLCOMMONNAME SSLFINGERPRINT "
    "LIMIT WARNINGS FETCHLIMIT FETCHSIZELIMIT FASTUIDL BATCHLIMIT EXPUNGE PROPERTIES NO"
)
_USER_NO = names(
    "KEEP FLUSH LIMITFLUSH FETCHALL REWRITE FORCECR STRIPCR PASS8BITS DROPSTATUS DROPDELIVERED MIMEDECODE IDLE "
    "SSL SSLCERTCK"
)
_STATEMENT = frozenset({"SET", "POLL", "SKIP", "DEFAULTS", EOF})
_FLAGS = {  # user flags: token -> struct query member
    **{word: word.lower() for word in _USER_NO - {"SSL"}},
    "SSL": "use_ssl",
}
_USER_STRINGS = {
    "SMTPADDRESS": "smtpaddress", "SMTPNAME": "smtpname", "MDA": "mda", "PRECONNECT": "preconnect",
    "POSTCONNECT": "postconnect", "SSLPROTO": "sslproto", "SSLCOMMONNAME": "sslcommonname",
    "SSLFINGERPRINT": "sslfingerprint", "PROPERTIES": "properties",
}  # fmt: skip
_USER_PATHS = {"BSMTP": "bsmtp", "SSLKEY": "sslkey", "SSLCERT": "sslcert", "SSLCERTFILE": "sslcertfile",
               "SSLCERTPATH": "sslcertpath"}  # fmt: skip
_USER_LISTS = {"FOLDER": ("mailboxes", "STRING"), "SMTPHOST": ("smtphunt", "STRING"),
               "FETCHDOMAINS": ("domainlist", "STRING"), "SPAMRESPONSE": ("antispam", "NUMBER")}  # fmt: skip
_USER_NUMBERS = names("LIMIT WARNINGS FETCHLIMIT FETCHSIZELIMIT FASTUIDL BATCHLIMIT EXPUNGE")
_SERVER_STRINGS = {"VIA": "via", "PRINCIPAL": "principal", "ESMTPNAME": "esmtp_name",
                   "QVIRTUAL": "qvirtual", "MONITOR": "monitor",
                   "PLUGIN": "plugin", "PLUGOUT": "plugout"}  # fmt: skip
_SERVER_FLAGS = {"UIDL": "uidl", "CHECKALIAS": "checkalias", "DNS": "dns", "TRACEPOLLS": "tracepolls"}


class _Grammar:
    """rcfile_y.y as recursive descent, taking the decisions bison's LALR(1) tables take."""

    def __init__(self, text: str, source: str, rcdir: str) -> None:
        self.toks = tokens(text)
        self.source, self.rcdir, self.pos = source, rcdir, 0
        self.queries: list[Query] = []
        self.entries: list[Entry] = []
        self.globals: dict[str, Setting] = {}
        self.server: dict[str, Setting] = {}
        self.user: dict[str, Setting] = {}
        self.aka: list[str] = []
        self.users: list[UserClause] = []
        self.remote: str | None = None
        self.pollname, self.skip = "", False

    # -- tokens --

    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def take(self, *kinds: str) -> Token:
        token = self.peek()
        if kinds and token.kind not in kinds:
            raise self.error(token)
        self.pos += 1
        return token

    def error(self, token: Token, what: str = "syntax error") -> ConfigError:
        """yyerror: "%s at %s" with yytext, or "end of input". The word after a password is not shown:
        it may be the rest of a password written with a space in it."""
        before = self.toks[token.index - 2].kind if token.index >= 2 else ""
        if before in ("PASSWORD", "ESMTPPASSWORD") and token.kind != EOF:
            return ConfigError(self.source, token.line, f"{what} after the password (the word there is not shown)")
        return ConfigError(self.source, token.line, f"{what} at {token.text or 'end of input'}")

    def setting(self, value: str | int | bool | tuple[str | None, ...], first: Token, last: Token) -> Setting:
        raw = self.toks[first.index : last.index + 1]
        return Setting(value, f"{self.source}:{first.line}", " ".join(token.text for token in raw))

    # -- statements --

    def run(self) -> RcFile:
        while self.peek().kind != EOF:
            if self.peek().kind == "SET":
                self.set_statement()
            else:
                self.server_statement()
        return RcFile(tuple(self.queries), tuple(self.entries), MappingProxyType(self.globals))

    def set_statement(self) -> None:
        first = self.take("SET")
        word = self.take(
            "LOGFILE", "IDFILE", "PIDFILE", "DAEMON", "POSTMASTER", "PROPERTIES", "BOUNCEMAIL", "SPAMBOUNCE",
            "SOFTBOUNCE", "SYSLOG", "INVISIBLE", "SHOWDOTS", "NO",
        )  # fmt: skip
        if word.kind == "NO":
            last = self.take("BOUNCEMAIL", "SPAMBOUNCE", "SOFTBOUNCE", "SYSLOG", "INVISIBLE", "SHOWDOTS")
            self.globals[last.kind.lower()] = self.setting(False, first, last)
            return
        if word.kind in ("BOUNCEMAIL", "SPAMBOUNCE", "SOFTBOUNCE", "SYSLOG", "INVISIBLE", "SHOWDOTS"):
            self.globals[word.kind.lower()] = self.setting(True, first, word)
            return
        if self.peek().kind == "MAP":  # optmap; `=` puts the scanner in NAME: `set daemon = 300` fails
            self.take()
        last = self.take("NUMBER" if word.kind == "DAEMON" else "STRING")
        value = last.value if last.kind == "NUMBER" else str(last.value)
        if word.kind in ("LOGFILE", "IDFILE", "PIDFILE"):
            value = prependdir(str(value), self.rcdir)
        self.globals[word.kind.lower()] = self.setting(value if value is not None else 0, first, last)

    def server_statement(self) -> None:
        first = self.take("POLL", "SKIP", "DEFAULTS")
        name = "defaults" if first.kind == "DEFAULTS" else str(self.take("STRING").value)
        # reset_server: a fresh record with this name
        self.server, self.user, self.aka, self.users, self.remote = {}, {}, [], [], None
        self.pollname, self.skip = name, first.kind == "SKIP"
        entry_at = len(self.entries)
        while self.peek().kind in _SERVER or (self.peek().kind == "NO" and self.peek(1).kind in _SERVER_NO):
            self.server_option()
        server_end = self.toks[self.pos - 1].end
        kind = self.peek().kind
        if kind == "USERNAME":
            while self.peek().kind == "USERNAME":  # explicits: userdef user0opts, each one user
                self.userdef()
                self.user_options()
                self.record(entry_at)
        elif kind in _USER:
            self.user_options()  # user1opts: the entry's one user
            self.record(entry_at)
        else:
            self.record(entry_at)  # define_server serverspecs: one query, no user options
            if kind not in _STATEMENT:
                raise self.error(self.peek())
        after = self.peek()
        if after.kind in _SERVER:
            raise self.server_after_users()
        if after.kind not in _STATEMENT:
            raise self.error(after)
        last = self.toks[self.pos - 1]
        self.entries.append(
            Entry(first.text, name, self.skip, first.line, last.line, first.start, last.end, server_end,
                  tuple(self.users))
        )  # fmt: skip

    def server_after_users(self) -> ConfigError:
        """`define_server serverspecs userspecs serv_option`: yyerror at the reduction. bison reduces a
        serv_option without reading ahead unless it ends in a list (`aka`, `localdomains`)."""
        start = self.pos
        self.server_option()
        ended_by_list = self.toks[start].kind in ("AKA", "LOCALDOMAINS")
        return self.error(self.peek() if ended_by_list else self.toks[self.pos - 1], "server option after user options")

    def record(self, entry: int) -> None:
        """record_current + user_reset: the user's options end, the server's stay."""
        fields = MappingProxyType({**self.server, **self.user})
        self.queries.append(Query(self.pollname, self.skip, entry, fields, tuple(self.aka)))
        last = self.toks[self.pos - 1]
        self.users.append(UserClause(self.remote, last.line, last.end))
        self.user, self.remote = {}, None

    # -- server options --

    def server_option(self) -> None:
        first = self.take()
        kind = first.kind
        if kind == "NO":
            last = self.take(*_SERVER_NO)
            field_name = "envelope" if last.kind == "ENVELOPE" else _SERVER_FLAGS[last.kind]
            self.server[field_name] = self.setting(False, first, last)
        elif kind in _SERVER_FLAGS:
            self.server[_SERVER_FLAGS[kind]] = self.setting(True, first, first)
        elif kind in ("AKA", "LOCALDOMAINS"):
            names = [str(self.take("STRING").value)]
            while self.peek().kind == "STRING":
                names.append(str(self.take().value))
            if kind == "AKA":
                self.aka.extend(names)
            else:
                self.server["localdomains"] = self.setting(tuple(names), first, self.toks[self.pos - 1])
        elif kind == "ESMTPPASSWORD":
            self.take("STRING")  # read and dropped, like the user's password
            self.server["esmtp_password"] = Setting(True, f"{self.source}:{first.line}", "esmtppassword …")
        elif kind in _SERVER_STRINGS:
            last = self.take("STRING")
            self.server[_SERVER_STRINGS[kind]] = self.setting(str(last.value), first, last)
        elif kind == "PROTOCOL":
            self.protocol(first)
        elif kind in ("SERVICE", "PORT"):
            last = self.take("STRING", "NUMBER") if kind == "SERVICE" else self.take("NUMBER")
            # snprintf(buf, 10, "%d"): a number is kept as at most 9 characters
            value = str(last.value) if last.kind == "STRING" else str(last.value)[:9]
            self.server["service"] = self.setting(value, first, last)
        elif kind in ("INTERVAL", "TIMEOUT"):
            last = self.take("NUMBER")
            self.number(self.server, kind.lower(), first, last)
        elif kind == "AUTHENTICATE":
            last = self.take("AUTHTYPE")
            if last.value == "any":  # A_ANY is 0: the same as unset, so `defaults` may still set it
                self.server.pop("authenticate", None)
            else:
                self.server["authenticate"] = self.setting(str(last.value), first, last)
        elif kind == "ENVELOPE":
            if self.peek().kind == "NUMBER":
                self.take()
            last = self.take("STRING")
            self.server["envelope"] = self.setting(str(last.value), first, last)
        elif kind == "INTERFACE":
            last = self.take("STRING")
            problem = interface_problem(str(last.value))
            if problem is not None:  # interface_parse exits at once, mid-parse
                raise ConfigError(self.source, last.line, f"{problem} (interface {last.text}); fetchmail exits")
            self.server["interface"] = self.setting(str(last.value), first, last)
        elif kind == "BADHEADER":
            last = self.take("ACCEPT", "REJECT")
            self.server["badheader"] = self.setting(last.kind.lower(), first, last)

    def protocol(self, first: Token) -> None:
        last = self.take("PROTO", "KPOP", "SDPS")
        if last.kind == "PROTO":
            self.server["protocol"] = self.setting(str(last.value), first, last)
            return
        self.server["protocol"] = self.setting("pop3", first, last)
        if last.kind == "SDPS":
            self.server["sdps"] = self.setting(True, first, last)
            return
        # PROTOCOL KPOP: Kerberos only in place of an explicit `auth password` (KERBEROS_V5 is built in)
        auth = self.server.get("authenticate")
        if auth is not None and auth.value == "password":
            self.server["authenticate"] = self.setting("kerberos_v5", first, last)
        self.server["service"] = self.setting("kpop", first, last)

    def number(self, into: dict[str, Setting], name: str, first: Token, last: Token) -> None:
        if last.value:  # 0 is fetchmail's "unset"
            into[name] = self.setting(int(last.value or 0), first, last)
        else:
            into.pop(name, None)

    # -- users --

    def userdef(self) -> None:
        """USERNAME STRING | USERNAME STRING THERE | USERNAME mapping_list HERE."""
        self.take("USERNAME")
        name = self.take("STRING")
        if self.peek().kind == "THERE":
            self.take()
            self.remote_name(name)
        elif self.peek().kind in ("STRING", "MAP", "HERE"):
            self.mappings(name)
            self.take("HERE")
        else:
            self.remote_name(name)

    def remote_name(self, token: Token) -> None:
        self.user["remotename"] = self.setting(str(token.value), token, token)
        self.remote = str(token.value)

    def mappings(self, first: Token) -> None:
        """mapping_list: STRING or STRING MAP STRING, repeated (local names; `*` is the wildcard)."""
        names: list[str | None] = []
        token: Token | None = first
        while token is not None:
            if self.peek().kind == "MAP":
                self.take()
                self.take("STRING")
            names.append(str(token.value))
            token = self.take() if self.peek().kind == "STRING" else None
        had = self.user.get("localnames")
        old = had.value if had is not None and isinstance(had.value, tuple) else ()
        self.user["localnames"] = self.setting((*old, *names), first, self.toks[self.pos - 1])

    def user_options(self) -> None:
        while self.peek().kind in _USER:
            self.user_option()

    def user_option(self) -> None:
        first = self.take()
        kind = first.kind
        if kind == "NO":
            last = self.take(*_USER_NO)
            self.user[_FLAGS[last.kind]] = self.setting(False, first, last)
        elif kind in _FLAGS:
            self.user[_FLAGS[kind]] = self.setting(True, first, first)
        elif kind == "LMTP":
            self.user["listener"] = self.setting("lmtp", first, first)
        elif kind in ("IS", "TO"):
            token = self.take("STRING")
            if kind == "IS" and self.peek().kind == "THERE":
                self.take()
                self.remote_name(token)
                return
            self.mappings(token)
            if self.peek().kind == "HERE":
                self.take()
        elif kind == "PASSWORD":
            self.take("STRING")  # read and dropped: mailpin never keeps a password
            self.user["password"] = Setting(True, f"{self.source}:{first.line}", "password …")
        elif kind in _USER_LISTS:
            member, item = _USER_LISTS[kind]
            values: list[str | None] = [str(self.take(item).value)]
            while self.peek().kind == item:
                values.append(str(self.take().value))
            self.user[member] = self.setting(tuple(values), first, self.toks[self.pos - 1])
        elif kind in _USER_STRINGS:
            last = self.take("STRING")
            self.user[_USER_STRINGS[kind]] = self.setting(str(last.value), first, last)
        elif kind in _USER_PATHS:
            last = self.take("STRING")
            self.user[_USER_PATHS[kind]] = self.setting(prependdir(str(last.value), self.rcdir), first, last)
        elif kind in _USER_NUMBERS:
            last = self.take("NUMBER")
            self.user[kind.lower()] = self.setting(int(last.value or 0), first, last)
