"""One small dialogue per protocol: the plaintext part before a STARTTLS handshake, the greeting
of an Implicit TLS session, and the capabilities over TLS.

Each dialogue follows its RFC as a careful client must (DESIGN §3, and the client-side attack
classes of Poddebniak et al., "Why TLS is better without STARTTLS", USENIX Security 2021):
nothing learned before TLS is trusted after it, a STARTTLS capability that is missing or an
upgrade that is refused is a block and never a reason to continue in plaintext, and any byte
the server sent after its "go ahead" and before the handshake is an injection attempt.

What the server sent *before* we said STARTTLS is the other side of that line: pre-TLS state,
read and discarded with everything else learned in plaintext (RFC 3207 §4.2, RFC 2595 §4,
RFC 3501 §6.2.1), never taken for the answer to STARTTLS — and found without a round trip, by
taking only the lines already here (`_discard_waiting`).
"""

from __future__ import annotations

from mailpin.errors import ProbeError
from mailpin.model import Protocol
from mailpin.net.channel import MAX_LINES, Channel
from mailpin.net.replies import (
    ImapLine,
    Pop3Status,
    ReplyError,
    SmtpLine,
    SmtpReply,
    join_smtp_reply,
    parse_imap_line,
    parse_pop3_status,
    parse_smtp_line,
    pop3_capa_item,
    printable,
)

EHLO_NAME = b"localhost"  # msmtp's default `domain`; says nothing about the user's machine


def _require_drained(chan: Channel, what: str) -> None:
    """RFC 3207 §4 / RFC 3501 §6.2.1 / RFC 2595 §4: the handshake starts right after the
    server's "go ahead". Bytes already sent by then were not protected by TLS; a client that
    buffers and reads them afterwards processes attacker data as if it came over TLS
    (response injection, CVE-2011-0411 class). A well-behaved server sends nothing here."""
    extra = chan.leftover()
    if extra:
        shown = printable(extra[:60].decode("ascii", "backslashreplace"), 80)
        raise ProbeError("plaintext-injection", f"server sent data after accepting {what}: {shown!r}")


def _discard_waiting(chan: Channel, what: str) -> list[bytes]:
    """The complete lines the server has already sent, consumed before we send `what`.

    RFC 3207 §4.2 / RFC 2595 §4 / RFC 3501 §6.2.1: whatever the server said in plaintext is
    discarded once TLS starts; lines waiting before STARTTLS is even sent cannot be part of its
    answer. Nothing is waited for (no round trip, no timeout): only lines whose end is in our
    buffer or already queued in the kernel are taken. A line still on its way when we look is
    read with the answer and judged there, conservatively, per protocol."""
    lines: list[bytes] = []
    while waiting := chan.leftover().count(b"\n"):
        for _ in range(waiting):  # each line's end is here: readline returns without waiting
            if len(lines) >= MAX_LINES:
                raise ProbeError("protocol-error", f"more than {MAX_LINES} unsolicited lines before {what}")
            lines.append(chan.readline(what))
    return lines


TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Protocol as TypingProtocol

    class Dialogue(TypingProtocol):  # what each protocol's dialogue below does; a type only
        def upgrade(self, chan: Channel) -> str:
            """Plaintext greeting and STARTTLS; on return the server waits for our ClientHello."""

        def greet(self, chan: Channel) -> str:
            """The greeting of an Implicit TLS session (RFC 8314 §3), read over TLS."""

        def capabilities(self, chan: Channel) -> tuple[str, ...]:
            """Capabilities asked again over TLS (knowledge from before TLS is discarded)."""

        def quit(self, chan: Channel) -> None:
            """Say goodbye without waiting for the answer."""


# --- SMTP: RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (submissions) -----------------------------


class Smtp:
    def _reply(self, chan: Channel, what: str) -> SmtpReply:
        lines: list[SmtpLine] = []
        while not lines or not lines[-1].last:
            if len(lines) >= MAX_LINES:
                raise ProbeError("protocol-error", f"{what}: reply longer than {MAX_LINES} lines")
            try:
                lines.append(parse_smtp_line(chan.readline(what)))
            except ReplyError as exc:
                raise ProbeError("protocol-error", f"{what}: {exc}") from None
        try:
            return join_smtp_reply(lines)
        except ReplyError as exc:
            raise ProbeError("protocol-error", f"{what}: {exc}") from None

    def greet(self, chan: Channel) -> str:
        reply = self._reply(chan, "greeting")
        if reply.code == 220:
            return reply.summary()
        if reply.code == 421:  # RFC 5321 §3.1: service not available now; try again later
            raise ProbeError("unreachable", f"server is not accepting connections now: {reply.summary()}")
        raise ProbeError("protocol-error", f"server refused the session: {reply.summary()}")

    def _ehlo(self, chan: Channel, what: str) -> SmtpReply:
        chan.send(b"EHLO " + EHLO_NAME + b"\r\n", what)
        return self._reply(chan, what)

    def upgrade(self, chan: Channel) -> str:
        greeting = self.greet(chan)
        ehlo = self._ehlo(chan, "EHLO")
        if ehlo.code == 421:  # RFC 5321 §4.2.2: service not available, closing the channel
            raise ProbeError("unreachable", f"server is not accepting sessions now: {ehlo.summary()}")
        if ehlo.code != 250:
            raise ProbeError("starttls-missing", f"EHLO refused, so STARTTLS is impossible: {ehlo.summary()}")
        if "STARTTLS" not in ehlo.keywords:
            raise ProbeError("starttls-missing", "STARTTLS not offered in the EHLO reply")
        # RFC 5321 §4.2: a reply answers a command; one already here answers none we have sent.
        # Pre-TLS state, discarded (RFC 3207 §4.2), never the answer to STARTTLS.
        _discard_waiting(chan, "STARTTLS")
        chan.send(b"STARTTLS\r\n", "STARTTLS")
        # RFC 5321 §4.2 / RFC 2920 §3.1: one reply per command, in order, and STARTTLS ends any
        # pipelined group, so the first complete reply now *is* the answer. SMTP has nothing like
        # IMAP's untagged data: a stray reply still in flight is taken for it and blocks — as no
        # go-ahead (not 220), or, if it said 220, by the real answer left over after it (below,
        # or where the ServerHello is due).
        answer = self._reply(chan, "STARTTLS")
        if answer.code != 220:  # RFC 3207 §4: 220 ready; 454 / 501 / 5xx: no TLS
            reason = "starttls-refused" if answer.code >= 400 else "protocol-error"
            raise ProbeError(reason, f"STARTTLS refused: {answer.summary()}")
        _require_drained(chan, "STARTTLS")
        return greeting

    def capabilities(self, chan: Channel) -> tuple[str, ...]:
        # RFC 3207 §4.2: discard knowledge from the server before TLS; EHLO again.
        ehlo = self._ehlo(chan, "EHLO over TLS")
        if ehlo.code != 250:
            raise ProbeError("protocol-error", f"EHLO over TLS refused: {ehlo.summary()}")
        return tuple(sorted(ehlo.keywords))

    def quit(self, chan: Channel) -> None:
        chan.send(b"QUIT\r\n", "QUIT")


# --- IMAP: RFC 3501 / RFC 9051, STARTTLS §6.2.1 -----------------------------------------------


class Imap:
    def __init__(self) -> None:
        self._count = 0
        self._greeting_caps: frozenset[str] | None = None

    def _tag(self) -> str:
        self._count += 1
        return f"m{self._count}"

    def _line(self, chan: Channel, what: str) -> ImapLine:
        try:
            return parse_imap_line(chan.readline(what))
        except ReplyError as exc:
            raise ProbeError("protocol-error", f"{what}: {exc}") from None

    @staticmethod
    def _untagged(line: ImapLine, what: str) -> None:
        """Untagged data the server may send at any time (RFC 3501 §7, §2.2.2: EXISTS, LIST,
        CAPABILITY, an `OK [REFERRAL …]`…); only the ones that end or contradict the session stop us."""
        if line.tag == "+":
            raise ProbeError("protocol-error", f"unexpected continuation request ({what})")
        if line.tag != "*":
            raise ProbeError("protocol-error", f"answer with a foreign tag ({what}): {line.summary()}")
        if line.status == "BYE":  # RFC 3501 §7.1.5: the server is closing the connection
            raise ProbeError("unreachable", f"server closed the session ({what}): {line.summary()}")
        if line.status == "PREAUTH":  # RFC 3501 §7.1.4: only ever a greeting
            raise ProbeError("protocol-error", f"PREAUTH after the greeting ({what}): {line.summary()}")

    def _command(self, chan: Channel, command: str) -> tuple[ImapLine, list[ImapLine]]:
        tag = self._tag()
        chan.send(f"{tag} {command}\r\n".encode("ascii"), command)
        untagged: list[ImapLine] = []
        while True:
            line = self._line(chan, command)
            if line.tag == tag:
                return line, untagged
            self._untagged(line, command)
            if len(untagged) >= MAX_LINES:
                raise ProbeError("protocol-error", f"more than {MAX_LINES} untagged lines for {command}")
            untagged.append(line)

    def _discard_unasked(self, chan: Channel, what: str) -> None:
        """Lines that came after the greeting, unasked, are untagged data (RFC 3501 §7): a tagged
        line answers no command of ours (RFC 3501 §2.2.2)."""
        for raw in _discard_waiting(chan, what):
            try:
                line = parse_imap_line(raw)
            except ReplyError as exc:
                raise ProbeError("protocol-error", f"before {what}: {exc}") from None
            self._untagged(line, f"before {what}")

    @staticmethod
    def _announced(done: ImapLine, untagged: list[ImapLine]) -> frozenset[str] | None:
        """Capabilities from `* CAPABILITY` data, else from a `[CAPABILITY …]` code on the tagged OK."""
        found = [line.capabilities for line in untagged if line.capabilities is not None]
        return frozenset().union(*found) if found else done.capabilities

    def _greeting(self, chan: Channel, implicit: bool) -> ImapLine:
        line = self._line(chan, "greeting")
        if line.tag != "*" or line.status not in ("OK", "PREAUTH", "BYE"):
            raise ProbeError("protocol-error", f"not an IMAP greeting: {line.summary()}")
        if line.status == "BYE":  # RFC 3501 §7.1.5: server will not take this connection now
            raise ProbeError("unreachable", f"server closed the session in its greeting: {line.summary()}")
        if line.status == "PREAUTH" and not implicit:
            # RFC 3501 §6.2.1: STARTTLS is only valid in the not-authenticated state; a PREAUTH
            # greeting makes the upgrade impossible, so a client would carry on in plaintext.
            raise ProbeError("preauth", f"PREAUTH greeting on a STARTTLS connection: {line.summary()}")
        self._greeting_caps = line.capabilities
        return line

    def greet(self, chan: Channel) -> str:
        return self._greeting(chan, implicit=True).summary()

    def upgrade(self, chan: Channel) -> str:
        greeting = self._greeting(chan, implicit=False)
        caps = self._greeting_caps
        if caps is None:
            done, untagged = self._command(chan, "CAPABILITY")
            if done.status != "OK":
                raise ProbeError("protocol-error", f"CAPABILITY failed: {done.summary()}")
            caps = self._announced(done, untagged)
        if not caps or "STARTTLS" not in caps:
            raise ProbeError("starttls-missing", "STARTTLS not offered in the IMAP capabilities")
        self._discard_unasked(chan, "STARTTLS")
        # RFC 3501 §7 / §6.2.1: untagged data may come before the tagged answer — sent before the
        # server read our STARTTLS, it cannot tell us apart from a line waiting above. It is
        # plaintext, read before the handshake and discarded with the rest (never shown: an
        # [ALERT] here is the attacker's text). Only what follows the tagged OK is an injection.
        done, _ = self._command(chan, "STARTTLS")
        if done.status != "OK":
            raise ProbeError("starttls-refused", f"STARTTLS refused: {done.summary()}")
        _require_drained(chan, "STARTTLS")
        return greeting.summary()

    def capabilities(self, chan: Channel) -> tuple[str, ...]:
        done, untagged = self._command(chan, "CAPABILITY")
        if done.status != "OK":
            raise ProbeError("protocol-error", f"CAPABILITY over TLS failed: {done.summary()}")
        caps = self._announced(done, untagged) or frozenset()
        return tuple(sorted(caps))

    def quit(self, chan: Channel) -> None:
        chan.send(f"{self._tag()} LOGOUT\r\n".encode("ascii"), "LOGOUT")


# --- POP3: RFC 1939, RFC 2449 (CAPA), RFC 2595 §4 (STLS) --------------------------------------


class Pop3:
    def _status(self, chan: Channel, what: str) -> Pop3Status:
        try:
            return parse_pop3_status(chan.readline(what))
        except ReplyError as exc:
            raise ProbeError("protocol-error", f"{what}: {exc}") from None

    def greet(self, chan: Channel) -> str:
        status = self._status(chan, "greeting")
        if not status.ok:
            raise ProbeError("unreachable", f"server refused the session in its greeting: {status.summary()}")
        return status.summary()

    def _capa(self, chan: Channel, what: str) -> frozenset[str] | None:
        chan.send(b"CAPA\r\n", what)
        if not self._status(chan, what).ok:
            return None
        try:
            items: set[str] = set()
            for _ in range(MAX_LINES):
                item = pop3_capa_item(chan.readline(what))
                if item is None:
                    return frozenset(items)
                items.add(item)
        except ReplyError as exc:
            raise ProbeError("protocol-error", f"{what}: {exc}") from None
        raise ProbeError("protocol-error", f"{what}: listing longer than {MAX_LINES} lines")

    def upgrade(self, chan: Channel) -> str:
        greeting = self.greet(chan)
        caps = self._capa(chan, "CAPA")
        if caps is None or "STLS" not in caps:
            raise ProbeError("starttls-missing", "STLS not offered in the POP3 capabilities")
        # RFC 1939 §3: a status line answers a command; one already here answers none of ours.
        # Pre-TLS state, discarded (RFC 2595 §4), never the answer to STLS.
        _discard_waiting(chan, "STLS")
        chan.send(b"STLS\r\n", "STLS")
        # RFC 1939 §3 / RFC 2449 §6.6: responses come in order, so the next status line is the
        # answer; a stray one still in flight is taken for it and blocks (-ERR: no go-ahead; +OK:
        # the real answer is left over after it, below or where the ServerHello is due).
        answer = self._status(chan, "STLS")
        if not answer.ok:
            raise ProbeError("starttls-refused", f"STLS refused: {answer.summary()}")
        _require_drained(chan, "STLS")
        return greeting

    def capabilities(self, chan: Channel) -> tuple[str, ...]:
        caps = self._capa(chan, "CAPA over TLS")  # RFC 2595 §4: discard pre-TLS capabilities
        return tuple(sorted(caps or ()))

    def quit(self, chan: Channel) -> None:
        chan.send(b"QUIT\r\n", "QUIT")


_DIALOGUES: dict[Protocol, type[Smtp] | type[Imap] | type[Pop3]] = {
    Protocol.SMTP: Smtp,
    Protocol.IMAP: Imap,
    Protocol.POP3: Pop3,
}


def dialogue_for(protocol: Protocol) -> Dialogue:
    """A fresh dialogue (IMAP keeps a tag counter, so one per connection)."""
    return _DIALOGUES[protocol]()
