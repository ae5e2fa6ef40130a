"""The demo's IMAP server: the part of RFC 3501 that mbsync uses to sync one INBOX, and STARTTLS
(§6.2.1). One mailbox, INBOX, pre-loaded with a few messages; LOGIN only over TLS.

Commands are read as one line plus any literals (`{n}` / `{n+}`, RFC 3501 §4.3, RFC 7888), each
bounded; what is not implemented is answered BAD rather than guessed at.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from mailpin.demo.ca import DemoPKI
from mailpin.demo.servers import Conn, Gone, Server

USER, PASSWORD = "demo", "demo"
UIDVALIDITY = 1
_DATE = "29-Nov-2026 09:00:00 +0000"
_FLAGS = r"\Answered \Flagged \Deleted \Seen \Draft"
_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|([()])|([^\s()"\[]+(?:\[[^\]]*\])?[^\s()"]*)', re.S)
_LITERAL = re.compile(rb"\{(\d{1,9})(\+?)\}$")
_MAX_LITERALS = 8
_MAX_SPANS = 1000


@dataclass
class Message:
    uid: int
    data: bytes  # CRLF line endings
    flags: set[str] = field(default_factory=set)


class ImapServer(Server):
    name = "imap"

    def __init__(self, pki: DemoPKI, messages: list[bytes]) -> None:
        super().__init__(pki)
        self.inbox = [Message(uid, data) for uid, data in enumerate(messages, start=1)]
        self.logins = 0  # LOGIN / AUTHENTICATE commands received: each carried a password
        self.fetched = 0  # message bodies sent

    def session(self, conn: Conn) -> None:
        _Session(self, conn).run()


class _Session:
    def __init__(self, server: ImapServer, conn: Conn) -> None:
        self.server, self.conn = server, conn
        self.user = False
        self.selected = False

    def untagged(self, text: str) -> None:
        self.conn.send(f"* {text}\r\n".encode())

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR"]
        if self.conn.tls:
            caps.append("AUTH=PLAIN")
        elif self.server.offer_starttls:
            caps += ["STARTTLS", "LOGINDISABLED"]  # RFC 3501 §6.2.3: no password before TLS
        return " ".join(caps)

    def run(self) -> None:
        self.untagged(f"OK [CAPABILITY {self.capabilities()}] mailpin demo IMAP server ready")
        while True:
            tokens = self.command()
            if len(tokens) < 2:
                self.conn.send(b"* BAD expected: tag command\r\n")
                continue
            tag, name, args = tokens[0], tokens[1].upper(), tokens[2:]
            if name == "UID" and args:
                name, args = "UID " + args[0].upper(), args[1:]
            handler = getattr(self, "cmd_" + name.lower().replace(" ", "_"), None)
            if handler is None:
                self.conn.send(f"{tag} BAD {name} is not implemented here\r\n".encode())
                continue
            try:
                answer = handler(args)
            except (IndexError, ValueError):
                answer = f"BAD arguments of {name}"
            self.conn.send(f"{tag} {answer}\r\n".encode())
            if name == "LOGOUT":
                return
            if name == "STARTTLS" and answer.startswith("OK"):
                self.conn.start_tls()

    def command(self) -> list[str]:
        """One command: a line, and every literal it announces with the lines that follow it."""
        raw = self.conn.readline()
        for _ in range(_MAX_LITERALS):
            match = _LITERAL.search(raw)
            if match is None:
                break
            if not match.group(2):
                self.conn.send(b"+ go ahead\r\n")
            data = self.conn.read_exact(int(match.group(1)))
            quoted = b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            raw = raw[: match.start()] + quoted + self.conn.readline()
        found = _TOKEN.findall(raw)
        return [(paren or atom or re.sub(rb"\\(.)", rb"\1", quoted)).decode("utf-8", "replace")
                for quoted, paren, atom in found]  # fmt: skip

    # -- any state -------------------------------------------------------------------------------

    def cmd_capability(self, args: list[str]) -> str:
        self.untagged(f"CAPABILITY {self.capabilities()}")
        return "OK CAPABILITY completed"

    def cmd_noop(self, args: list[str]) -> str:
        return "OK NOOP completed"

    def cmd_logout(self, args: list[str]) -> str:
        try:
            self.untagged("BYE logging out")
        except Gone:
            pass
        return "OK LOGOUT completed"

    # -- not authenticated -----------------------------------------------------------------------

    def cmd_starttls(self, args: list[str]) -> str:
        if self.conn.tls or not self.server.offer_starttls:
            return "BAD STARTTLS not available"
        return "OK begin TLS negotiation now"  # nothing more until the handshake (§6.2.1)

    def cmd_login(self, args: list[str]) -> str:
        return self._login(args[0], args[1], "LOGIN")

    def cmd_authenticate(self, args: list[str]) -> str:
        if args[0].upper() != "PLAIN":
            return "NO only AUTHENTICATE PLAIN here"
        answer = args[1] if len(args) > 1 else ""
        if not answer:  # RFC 4959 (SASL-IR) not used: ask for the response
            self.conn.send(b"+ \r\n")
            answer = self.conn.readline().decode("ascii", "replace").strip()
        try:
            _, user, password = base64.b64decode(answer, validate=True).decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "BAD cannot decode the PLAIN response"
        return self._login(user, password, "AUTHENTICATE")

    def _login(self, user: str, password: str, command: str) -> str:
        with self.server.lock:
            self.server.logins += 1
        if not self.conn.tls:
            return f"NO [PRIVACYREQUIRED] {command} only over TLS"
        if (user, password) != (USER, PASSWORD):
            return "NO [AUTHENTICATIONFAILED] wrong user name or password"
        self.user = True
        return f"OK [CAPABILITY {self.capabilities()}] {command} completed"

    # -- authenticated ---------------------------------------------------------------------------

    def _authenticated(self) -> None:
        if not self.user:
            raise ValueError("LOGIN first")

    def cmd_list(self, args: list[str]) -> str:
        self._authenticated()
        if args[1] == "":
            self.untagged('LIST (\\Noselect) "/" ""')  # §6.3.8: the hierarchy delimiter
        elif re.fullmatch(re.escape(args[1]).replace(r"\*", ".*").replace("%", "[^/]*"), "INBOX", re.I):
            self.untagged('LIST (\\HasNoChildren) "/" INBOX')
        return "OK LIST completed"

    def cmd_lsub(self, args: list[str]) -> str:
        return self.cmd_list(args).replace("LIST", "LSUB")

    def _status_items(self) -> dict[str, int]:
        inbox = self.server.inbox
        unseen = sum(1 for message in inbox if "\\Seen" not in message.flags)
        uidnext = max((message.uid for message in inbox), default=0) + 1
        return {"MESSAGES": len(inbox), "RECENT": 0, "UIDNEXT": uidnext, "UIDVALIDITY": UIDVALIDITY, "UNSEEN": unseen}

    def cmd_select(self, args: list[str], mode: str = "READ-WRITE") -> str:
        self._authenticated()
        if args[0].upper() != "INBOX":
            self.selected = False
            return "NO no such mailbox"
        items = self._status_items()
        self.untagged(f"FLAGS ({_FLAGS})")
        self.untagged(f"OK [PERMANENTFLAGS ({_FLAGS} \\*)] flags")
        self.untagged(f"{items['MESSAGES']} EXISTS")
        self.untagged("0 RECENT")
        self.untagged(f"OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {items['UIDNEXT']}] predicted next UID")
        self.selected = True
        return f"OK [{mode}] {'SELECT' if mode == 'READ-WRITE' else 'EXAMINE'} completed"

    def cmd_examine(self, args: list[str]) -> str:
        return self.cmd_select(args, "READ-ONLY")

    def cmd_status(self, args: list[str]) -> str:
        self._authenticated()
        if args[0].upper() != "INBOX":
            return "NO no such mailbox"
        items = self._status_items()
        wanted = [item.upper() for item in args[1:] if item not in ("", "(", ")")]
        self.untagged(f"STATUS INBOX ({' '.join(f'{item} {items[item]}' for item in wanted if item in items)})")
        return "OK STATUS completed"

    # -- selected --------------------------------------------------------------------------------

    def _messages(self, sequence_set: str, by_uid: bool) -> list[tuple[int, Message]]:
        if not self.selected:
            raise ValueError("SELECT first")
        inbox = list(enumerate(self.server.inbox, start=1))
        largest = (inbox[-1][1].uid if by_uid else len(inbox)) if inbox else 0
        spans = []  # RFC 3501 §9 sequence-set: ranges in either order, "*" the largest number in use
        for part in sequence_set.split(",")[:_MAX_SPANS]:
            first, _, last = part.partition(":")
            low, high = (largest if n == "*" else int(n) for n in (first, last or first))
            spans.append((min(low, high), max(low, high)))
        return [(seq, message) for seq, message in inbox
                if any(low <= (message.uid if by_uid else seq) <= high for low, high in spans)]  # fmt: skip

    def cmd_fetch(self, args: list[str], by_uid: bool = False) -> str:
        items = {item.upper() for item in args[1:] if item not in ("", "(", ")")}
        items = {"FLAGS", "INTERNALDATE", "RFC822.SIZE"} if items & {"ALL", "FAST"} else items
        sections = sorted(item for item in items if item.startswith(("BODY", "RFC822")) and item != "RFC822.SIZE")
        if len(sections) > 1 or items - {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", *sections}:
            raise ValueError("FETCH items not implemented here")
        for seq, message in self._messages(args[0], by_uid):
            parts = [f"UID {message.uid}"] if by_uid or "UID" in items else []
            parts += [f"FLAGS ({' '.join(sorted(message.flags))})"] if "FLAGS" in items else []
            parts += [f'INTERNALDATE "{_DATE}"'] if "INTERNALDATE" in items else []
            parts += [f"RFC822.SIZE {len(message.data)}"] if "RFC822.SIZE" in items else []
            if not sections:
                self.untagged(f"{seq} FETCH ({' '.join(parts)})")
                continue
            name, content = _section(sections[0], message.data)
            if ".PEEK" not in sections[0] and sections[0] != "RFC822.HEADER":
                message.flags.add("\\Seen")  # RFC 3501 §6.4.5: fetching the text marks it read
            head = f"* {seq} FETCH ({' '.join([*parts, name])} {{{len(content)}}}\r\n"
            self.conn.send(head.encode() + content + b")\r\n")
            if content is message.data:
                with self.server.lock:
                    self.server.fetched += 1
        return "OK FETCH completed"

    def cmd_uid_fetch(self, args: list[str]) -> str:
        return self.cmd_fetch(args, by_uid=True)

    def cmd_store(self, args: list[str], by_uid: bool = False) -> str:
        action, flags = args[1].upper(), {flag for flag in args[2:] if flag not in ("", "(", ")")}
        for seq, message in self._messages(args[0], by_uid):
            if action.startswith("+FLAGS"):
                message.flags |= flags
            elif action.startswith("-FLAGS"):
                message.flags -= flags
            elif action.startswith("FLAGS"):
                message.flags = set(flags)
            else:
                raise ValueError(action)
            if not action.endswith(".SILENT"):
                self.untagged(f"{seq} FETCH (UID {message.uid} FLAGS ({' '.join(sorted(message.flags))}))")
        return "OK STORE completed"

    def cmd_uid_store(self, args: list[str]) -> str:
        return self.cmd_store(args, by_uid=True)

    def cmd_check(self, args: list[str]) -> str:
        return "OK CHECK completed"

    def cmd_close(self, args: list[str]) -> str:
        self.selected = False
        return "OK CLOSE completed"  # nothing is ever deleted here: nothing to expunge


def _section(item: str, data: bytes) -> tuple[str, bytes]:
    """The response name and content of one BODY[...] / RFC822* fetch item (whole message, header,
    or HEADER.FIELDS (...)); partial fetches (`<start.count>`) are not offered."""
    header = data[: data.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in data else data
    if item in ("RFC822", "BODY[]", "BODY.PEEK[]"):
        return ("RFC822" if item == "RFC822" else "BODY[]"), data
    if item in ("RFC822.HEADER", "BODY[HEADER]", "BODY.PEEK[HEADER]"):
        return ("RFC822.HEADER" if item == "RFC822.HEADER" else "BODY[HEADER]"), header
    match = re.fullmatch(r"BODY(?:\.PEEK)?\[HEADER\.FIELDS \(([^)]*)\)\]", item)
    if match is None:
        raise ValueError(item)
    names = {name.encode().lower() for name in match.group(1).split()}
    fields = re.findall(rb"[^\r\n]+\r\n(?:[ \t][^\r\n]*\r\n)*", header)
    chosen = b"".join(f for f in fields if f.split(b":", 1)[0].strip().lower() in names) + b"\r\n"
    return f"BODY[HEADER.FIELDS ({match.group(1)})]", chosen
