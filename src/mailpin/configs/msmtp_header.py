"""The message header as msmtp 1.8.23 reads it for `--read-envelope-from` (msmtp.c `msmtp_read_headers`).

`read_headers` is msmtp's state machine, transcribed: every CR is dropped wherever it is (not only
before LF), a header name is recognised letter by letter from the start of a line, the first
`From:` that yields an address gives the envelope-from (an empty `From:` does not count, and a later
one is then read), `"..."` and `<...>` and nested `(...)` are handled the way msmtp handles them,
a fold continues the header, a control or space character inside an address becomes `_`, and the
header ends at the first empty line. A `From:` with no address at the very end of the input gives
the empty address. `from_header` and `addresses` are the simpler helpers mailpin's message identity
uses for recipients.
"""

from __future__ import annotations

from collections.abc import Iterator

# msmtp.c's states, same names without the STATE_ prefix.
(FRESH, AFTER_ADDRHDR, OTHER_HDR, DATE1, DATE2, DATE3, DATE4, MSGID1, MSGID2, MSGID3) = range(10)
(MSGID4, MSGID5, MSGID6, MSGID7, MSGID8, MSGID9, MSGID10, FROM1, FROM2, FROM3, TO, CC) = range(10, 22)
(BCC1, BCC2, ADDRHDR_ALMOST, RESENT, ADDR_DEFAULT, ADDR_DQUOTE, BRACKETS_START, IN_BRACKETS) = range(22, 30)
(PARENTH_START, IN_PARENTH, IN_ADDRESS, BACKQUOTE, HEADERS_END) = range(30, 35)

# A header name msmtp spells out letter by letter: state -> (expected letter, next state, then ':').
_WORDS = {
    DATE1: ("a", DATE2), DATE2: ("t", DATE3), DATE3: ("e", DATE4),
    MSGID1: ("e", MSGID2), MSGID2: ("s", MSGID3), MSGID3: ("s", MSGID4), MSGID4: ("a", MSGID5),
    MSGID5: ("g", MSGID6), MSGID6: ("e", MSGID7), MSGID7: ("-", MSGID8), MSGID8: ("i", MSGID9),
    MSGID9: ("d", MSGID10), FROM2: ("o", FROM3), BCC2: ("c", ADDRHDR_ALMOST),
}  # fmt: skip
_RESENT = "esent-"  # after the "r" that entered RESENT
_SPACE = b" \t\n\v\f\r"


class _Reader:
    """One pass of msmtp_read_headers over a message (the fields are its local variables)."""

    def __init__(self, recipients: bool, envelope: bool) -> None:
        self.recipients = recipients
        self.envelope = envelope  # `from`, `have_date` and `have_msgid` asked for (main's call)
        self.state = self.oldstate = FRESH
        self.backquote_save = self.parenth_save = self.folded_save = FRESH
        self.depth = 0
        self.from_hdr = -1  # -1 before, 0 in, 1 after the first From: that gave an address
        self.resent_index = self.resent_block = -1
        self.current: bytearray | None = None
        self.forget = self.finish = False
        self.envelope_from: bytes | None = None
        self.normal: list[bytes] = []
        self.resent: list[bytes] = []

    def line_start(self, c: int) -> int:
        ch = chr(c).lower()
        if self.envelope and ch == "d":
            return DATE1
        if self.envelope and ch == "m":
            return MSGID1
        if self.envelope and self.from_hdr < 0 and ch == "f":
            return FROM1
        if self.recipients and ch in "tcb":
            return {"t": TO, "c": CC, "b": BCC1}[ch]
        if self.recipients and self.resent_block <= 0 and ch == "r":
            self.resent_index = 0
            return RESENT
        return HEADERS_END if c == 0x0A else OTHER_HDR

    def step(self, c: int) -> None:  # one branch per state, as in msmtp.c
        s, ch = self.state, chr(c).lower()
        nl = c == 0x0A
        if s == FRESH:
            self.depth = 0
            self.resent_index = -1
            self.state = self.line_start(c)
        elif s == AFTER_ADDRHDR:
            self.resent_index = -1
            if c not in b" \t":
                if self.current is not None:
                    self.finish = True
                elif self.from_hdr == 0:
                    self.from_hdr = -1  # "the preceding From: header was empty"
            self.state = self.folded_save if c in b" \t" else self.line_start(c)
        elif s == OTHER_HDR:
            self._end_resent_block()
            if nl:
                self.state = FRESH
        elif s == RESENT:
            i = self.resent_index
            if 0 <= i < 6 and ch == _RESENT[i]:
                if i == 5 and self.resent_block == -1:
                    self.resent_block = 0
                self.resent_index += 1
            elif i == 6 and ch in "tcb":
                self.state = {"t": TO, "c": CC, "b": BCC1}[ch]
            else:
                self.state = FRESH if nl else OTHER_HDR
        elif s in (DATE4, MSGID10):
            self.state = FRESH if nl else OTHER_HDR  # a Date: or Message-ID: only sets a flag
        elif s in _WORDS:
            letter, following = _WORDS[s]
            self.state = following if ch == letter else (FRESH if nl else OTHER_HDR)
        elif s in (FROM1, TO, CC, BCC1):
            self._end_resent_block()
            wanted = {FROM1: ("r", FROM2), TO: ("o", ADDRHDR_ALMOST), CC: ("c", ADDRHDR_ALMOST), BCC1: ("c", BCC2)}
            letter, following = wanted[s]
            self.state = following if ch == letter else (FRESH if nl else OTHER_HDR)
        elif s == FROM3:
            if ch == "m":
                self.from_hdr = 0
                self.state = ADDRHDR_ALMOST
            else:
                self.state = FRESH if nl else OTHER_HDR
        elif s == ADDRHDR_ALMOST:
            if self.from_hdr == 0 and c != 0x3A:
                self.from_hdr = -1
            self.state = ADDR_DEFAULT if c == 0x3A else (FRESH if nl else OTHER_HDR)
        else:
            self.address_step(s, c)

    def _end_resent_block(self) -> None:
        if self.resent_block == 0 and self.resent_index != 6:
            self.resent_block = 1

    def _fold(self, save: int) -> None:
        self.folded_save = save
        self.state = AFTER_ADDRHDR

    def _enter(self, save_as: str, target: int) -> None:
        setattr(self, save_as, self.state)
        self.state = target

    def address_step(self, s: int, c: int) -> None:  # the address states of msmtp.c
        char = chr(c)
        if s == ADDR_DEFAULT:
            if char == "\n":
                self.finish = self.finish or self.current is not None
                self._fold(s)
            elif char == "\\":
                self._enter("backquote_save", BACKQUOTE)
            elif char == "(":
                self._enter("parenth_save", PARENTH_START)
            elif char in '"<':
                self.forget = self.forget or self.current is not None
                self.state = ADDR_DQUOTE if char == '"' else BRACKETS_START
            elif char in " \t":
                pass
            elif char == ":":
                self.forget = self.forget or self.current is not None
            elif char in ";,":
                self.finish = self.finish or self.current is not None
            else:
                self.forget = self.forget or self.current is not None
                self.state = IN_ADDRESS
        elif s == ADDR_DQUOTE:
            if char == "\n":
                self._fold(s)
            elif char == "\\":
                self._enter("backquote_save", BACKQUOTE)
            elif char == '"':
                self.state = ADDR_DEFAULT
        elif s == BRACKETS_START:
            if char == "\n":
                self._fold(s)
            elif char == "(":
                self._enter("parenth_save", PARENTH_START)
            else:
                self.state = ADDR_DEFAULT if char == ">" else IN_BRACKETS
        elif s == IN_BRACKETS:
            if char == "\n":
                self._fold(s)
            elif char == "\\":
                self._enter("backquote_save", BACKQUOTE)
            elif char == "(":
                self._enter("parenth_save", PARENTH_START)
            elif char == ">":
                self.finish = True
                self.state = ADDR_DEFAULT
        elif s == PARENTH_START:
            if char == "\n":
                self._fold(s)
            elif char == ")":
                self.state = self.parenth_save
            else:
                self.depth += 1
                self.state = IN_PARENTH
        elif s == IN_PARENTH:
            if char == "\n":
                self._fold(s)
            elif char == "\\":
                self._enter("backquote_save", BACKQUOTE)
            elif char == "(":
                self.state = PARENTH_START
            elif char == ")":
                self.depth -= 1
                if self.depth == 0:
                    self.state = self.parenth_save
        elif s == IN_ADDRESS:
            if char == "\n":
                self._fold(ADDR_DEFAULT)
            elif char == "\\":
                self._enter("backquote_save", BACKQUOTE)
            elif char in '"<':
                self.forget = True
                self.state = ADDR_DQUOTE if char == '"' else BRACKETS_START
            elif char == "(":
                self._enter("parenth_save", PARENTH_START)
            elif char in " \t":
                self.state = ADDR_DEFAULT
            elif char == ":":
                self.forget = True
                self.state = ADDR_DEFAULT
            elif char in ",;":
                self.finish = True
                self.state = ADDR_DEFAULT
        elif s == BACKQUOTE:
            if char == "\n":
                self._fold(ADDR_DEFAULT)
            else:
                self.state = self.backquote_save

    def after(self, c: int | None) -> None:
        """What msmtp does after each character: forget or finish the address, then collect."""
        if self.forget:
            self.current, self.forget = None, False
        if self.finish:
            done = bytes(self.current or b"")
            if self.from_hdr == 0:
                self.envelope_from, self.from_hdr = done, 1
            elif self.recipients:
                (self.resent if self.resent_block == 0 else self.normal).append(done)
            self.current, self.finish = None, False
        if (
            c is not None
            and self.state in (IN_ADDRESS, IN_BRACKETS)
            and self.oldstate not in (PARENTH_START, IN_PARENTH, AFTER_ADDRHDR)
        ):
            if self.current is None:
                self.current = bytearray()
            # "sanitize characters": iscntrl or isspace (C locale: bytes 0-31, 127, and blanks) -> "_"
            self.current.append(0x5F if c < 0x20 or c == 0x7F or c in _SPACE else c)


def read_headers(message: bytes, recipients: bool = False, envelope: bool = True) -> tuple[bytes | None, list[bytes]]:
    """(envelope-from of the first From header or None, the To/Cc/Bcc recipients when `recipients`).
    `envelope=False` is msmtp_cmdline's call for the recipients of the command line."""
    reader = _Reader(recipients, envelope)
    for c in message:
        if c == 0x0D:  # "Convert CRLF to LF [...] just ignoring CRs is ok": every CR, anywhere
            continue
        reader.oldstate = reader.state
        reader.step(c)
        reader.after(c)
        if reader.state == HEADERS_END:
            break
    else:  # EOF
        reader.oldstate = reader.state
        reader.state = HEADERS_END
        reader.finish = reader.finish or reader.current is not None
        reader.after(None)
    if reader.envelope and reader.from_hdr == 0:  # "Corner case: we saw a "From: " header without a recipient."
        reader.envelope_from = b""
    found = reader.resent if reader.resent_block >= 0 else reader.normal
    return reader.envelope_from, found


def envelope_from(message: bytes, read_recipients: bool = False) -> str | None:
    """The envelope-from msmtp takes from the message with --read-envelope-from (None: no From)."""
    address = read_headers(message, read_recipients)[0]
    return None if address is None else address.decode("utf-8", "surrogateescape")


def from_header(message: bytes) -> str | None:
    """The (unfolded) value of the first From header, or None; headers end at the first empty line."""
    text = message.decode("utf-8", "surrogateescape")
    value: list[str] | None = None
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if value is not None:
            if line[:1] in (" ", "\t"):
                value.append("\n" + line)  # RFC 5322 §2.2.3 folding; "\n" marks where it was
                continue
            break
        if not line:
            break
        if line[:5].lower() == "from:":
            value = [line[5:]]
    return None if value is None else "".join(value)


def _skip_comment(text: str, i: int) -> int | None:
    """Index after the (nested) comment starting at text[i] == "(", or None if unterminated."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        i += 1
        if depth == 0:
            return i
    return None


def _bracket(text: str, i: int) -> tuple[str, int]:
    """The address inside <...> starting after text[i] == "<", and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(text[i + 1 : i + 2])
            i += 2
        elif char == "(":
            end = _skip_comment(text, i)
            if end is None:
                return "".join(out), len(text)
            i = end
        elif char == ">":
            return "".join(out), i + 1
        elif char == "\n":  # a fold inside brackets vanishes with its leading white space (measured)
            i += 1
            while i < len(text) and text[i] in " \t":
                i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out), i


def addresses(value: str) -> Iterator[str]:
    """The non-empty addresses of a header value, in order, msmtp-style (white space becomes "_")."""
    found: list[str] = []
    current: list[str] = []
    bracket: str | None = None
    ended = False  # white space ends a word; the next word replaces it ("Joe joe@example.com")
    i = 0
    while i < len(value):
        char = value[i]
        if char == "(":
            end = _skip_comment(value, i)
            if end is None:
                break
            i = end
            continue
        if char == '"':
            end = i + 1
            while end < len(value) and value[end] != '"':
                end += 2 if value[end] == "\\" else 1
            if end >= len(value):  # an unterminated quoted string loses the address it is in
                yield from _non_empty(found)
                return
            current, ended, i = [], False, end + 1
            continue
        if char == "<":
            address, i = _bracket(value, i)
            bracket = address if bracket is None else bracket
            continue
        if char in ",;":
            found.append(bracket if bracket is not None else "".join(current))
            current, bracket, ended = [], None, False
        elif char in " \t\n":
            ended = True
        elif char == ":":  # "group: a@x, b@y;"
            current, ended = [], False
        else:
            if char == "\\":
                i += 1
                char = value[i : i + 1]
            if ended:
                current, ended = [], False
            current.append(char)
        i += 1
    found.append(bracket if bracket is not None else "".join(current))
    yield from _non_empty(found)


def _non_empty(found: list[str]) -> Iterator[str]:
    for address in found:
        if address:
            yield address.replace(" ", "_").replace("\t", "_")
