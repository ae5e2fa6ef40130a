"""The demo's SMTP server: RFC 5321 with STARTTLS (RFC 3207) and AUTH PLAIN (RFC 4954, RFC 4616).

It accepts mail for anyone and keeps what it received, so the demo can show what got through — and
that a blocked send delivered nothing and sent no password.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from mailpin.demo.ca import DemoPKI
from mailpin.demo.servers import MAX_DATA, Conn, Gone, Server

USER, PASSWORD = "demo", "demo"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes  # CRLF line endings, dots unstuffed, without the final "."
    implicit: bool = False  # it came over Implicit TLS


class SmtpServer(Server):
    name = "smtp"

    def __init__(self, pki: DemoPKI) -> None:
        super().__init__(pki)
        self.received: list[Received] = []
        self.logins = 0  # AUTH commands received: each carried a password

    def session(self, conn: Conn) -> None:
        _Session(self, conn).run()


class _Session:
    def __init__(self, server: SmtpServer, conn: Conn) -> None:
        self.server, self.conn = server, conn
        self.greeted = False
        self.sender: str | None = None
        self.recipients: list[str] = []

    def reply(self, code: int, *lines: str) -> None:
        text = [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}"]
        self.conn.send("".join(f"{line}\r\n" for line in text).encode("utf-8"))

    def run(self) -> None:
        self.reply(220, "localhost ESMTP mailpin demo server")
        while True:
            verb, _, argument = self.conn.readline().decode("utf-8", "replace").partition(" ")
            handler = getattr(self, f"cmd_{verb.lower()}", None) if verb.isalpha() else None
            if handler is None:
                self.reply(502, "5.5.2 command not recognized")
            elif handler(argument.strip()) is False:
                return

    def _reset(self) -> None:
        self.sender, self.recipients = None, []

    def cmd_ehlo(self, argument: str) -> None:
        self.greeted = True
        self._reset()
        extensions = ["8BITMIME", f"SIZE {MAX_DATA}"]
        if self.conn.tls:
            extensions.append("AUTH PLAIN")  # RFC 4954 §4: no password in the clear
        elif self.server.offer_starttls:
            extensions.append("STARTTLS")
        self.reply(250, f"localhost greets {argument or 'you'}", *extensions)

    def cmd_helo(self, argument: str) -> None:
        self.greeted = True
        self._reset()
        self.reply(250, "localhost")

    def cmd_starttls(self, argument: str) -> None:
        if self.conn.tls or not self.server.offer_starttls:
            self.reply(502 if not self.server.offer_starttls else 503, "5.5.1 STARTTLS not available")
            return
        self.reply(220, "2.0.0 ready to start TLS")
        self.conn.start_tls()
        self.greeted = False  # RFC 3207 §4.2: both sides forget what was said before TLS
        self._reset()

    def cmd_auth(self, argument: str) -> None:
        mechanism, _, initial = argument.partition(" ")
        with self.server.lock:
            self.server.logins += 1
        if not self.conn.tls:
            self.reply(538, "5.7.11 encryption required for AUTH")
            return
        if mechanism.upper() != "PLAIN":
            self.reply(504, "5.5.4 only AUTH PLAIN here")
            return
        if not initial:
            self.reply(334, "")
            initial = self.conn.readline().decode("ascii", "replace").strip()
        try:
            _, user, password = base64.b64decode(initial, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            self.reply(501, "5.5.2 cannot decode the PLAIN response")
            return
        if (user, password) != (USER.encode(), PASSWORD.encode()):
            self.reply(535, "5.7.8 authentication failed")
            return
        self.reply(235, "2.7.0 authenticated")

    def cmd_mail(self, argument: str) -> None:
        if not self.greeted:
            self.reply(503, "5.5.1 EHLO first")
        elif not argument.upper().startswith("FROM:"):
            self.reply(501, "5.5.4 MAIL FROM:<address>")
        else:
            self._reset()
            self.sender = argument[5:].strip().partition(" ")[0].strip("<>")
            self.reply(250, "2.1.0 sender ok")

    def cmd_rcpt(self, argument: str) -> None:
        if self.sender is None:
            self.reply(503, "5.5.1 MAIL first")
        elif not argument.upper().startswith("TO:"):
            self.reply(501, "5.5.4 RCPT TO:<address>")
        else:
            self.recipients.append(argument[3:].strip().partition(" ")[0].strip("<>"))
            self.reply(250, "2.1.5 recipient ok")

    def cmd_data(self, argument: str) -> None:
        if self.sender is None or not self.recipients:
            self.reply(503, "5.5.1 RCPT first")
            return
        self.reply(354, "end with <CRLF>.<CRLF>")
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.conn.readline()
            if line == b".":
                break
            line = line[1:] if line.startswith(b".") else line  # RFC 5321 §4.5.2: dot-unstuffing
            size += len(line) + 2
            if size <= MAX_DATA:
                lines.append(line)
        if size > MAX_DATA:
            self.reply(552, "5.3.4 message too big")
        else:
            data = b"".join(line + b"\r\n" for line in lines)
            message = Received(self.sender, tuple(self.recipients), data, self.conn.implicit)
            with self.server.lock:
                self.server.received.append(message)
                number = len(self.server.received)
            self.reply(250, f"2.0.0 queued as demo-{number}")
        self._reset()

    def cmd_rset(self, argument: str) -> None:
        self._reset()
        self.reply(250, "2.0.0 reset")

    def cmd_noop(self, argument: str) -> None:
        self.reply(250, "2.0.0 ok")

    def cmd_quit(self, argument: str) -> bool:
        try:
            self.reply(221, "2.0.0 bye")
        except Gone:
            pass  # a client that says QUIT need not wait for the answer (mailpin's probe does not)
        return False
