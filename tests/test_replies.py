"""Reply parsers: the table of what servers send, and the property that nothing else escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpin.net import replies
from mailpin.net.replies import ReplyError


def test_smtp_multiline_reply_and_keywords() -> None:
    lines = [
        replies.parse_smtp_line(raw) for raw in (b"250-mx.example", b"250-PIPELINING", b"250-starttls", b"250 8BITMIME")
    ]
    reply = replies.join_smtp_reply(lines)
    assert reply.code == 250
    assert reply.keywords == {"PIPELINING", "STARTTLS", "8BITMIME"}  # case-insensitive keywords


def test_smtp_code_alone_ends_a_reply() -> None:
    line = replies.parse_smtp_line(b"220")
    assert (line.code, line.last, line.text) == (220, True, "")


@pytest.mark.parametrize("raw", [b"", b"22", b"2200 x", b"abc", b"220x", b"650 nope", b"\xff\xfe"])
def test_smtp_rejects_malformed_lines(raw: bytes) -> None:
    with pytest.raises(ReplyError):
        replies.parse_smtp_line(raw)


def test_smtp_reply_with_mixed_codes_is_an_error() -> None:
    lines = [replies.parse_smtp_line(b"250-a"), replies.parse_smtp_line(b"251 b")]
    with pytest.raises(ReplyError, match="mixes codes"):
        replies.join_smtp_reply(lines)


@pytest.mark.parametrize(
    ("raw", "tag", "status", "code"),
    [
        (b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "*", "OK", "CAPABILITY IMAP4rev1 STARTTLS"),
        (b"* PREAUTH logged in", "*", "PREAUTH", None),
        (b"* BYE go away", "*", "BYE", None),
        (b"a1 ok done", "a1", "OK", None),
        (b"a1 NO [ALERT] no", "a1", "NO", "ALERT"),
        (b"* CAPABILITY IMAP4rev1 STARTTLS", "*", None, None),
        (b"+ go ahead", "+", None, None),
        # Untagged data servers send unasked after the greeting (the STARTTLS suite's controls).
        (b'* LIST (\\HasNoChildren) "/" INBOX', "*", None, None),
        (b"* 54321 EXISTS", "*", None, None),
        (b"* OK [REFERRAL imap://user;AUTH=*@imap2.example/] there too", "*", "OK",
         "REFERRAL imap://user;AUTH=*@imap2.example/"),
    ],
)  # fmt: skip
def test_imap_lines(raw: bytes, tag: str, status: str | None, code: str | None) -> None:
    line = replies.parse_imap_line(raw)
    assert (line.tag, line.status, line.code) == (tag, status, code)


def test_imap_capabilities_from_data_and_from_response_code() -> None:
    assert replies.parse_imap_line(b"* CAPABILITY IMAP4rev1 starttls").capabilities == {"IMAP4REV1", "STARTTLS"}
    assert replies.parse_imap_line(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi").capabilities == {
        "IMAP4REV1",
        "STARTTLS",
    }
    assert replies.parse_imap_line(b"* OK hi").capabilities is None


@pytest.mark.parametrize("raw", [b"", b"*", b"a1", b"a1 FOO x", b"a1 PREAUTH x", b"* OK [unterminated", b"a(1 OK"])
def test_imap_rejects_malformed_lines(raw: bytes) -> None:
    with pytest.raises(ReplyError):
        replies.parse_imap_line(raw)


def test_pop3_status_and_capa() -> None:
    assert replies.parse_pop3_status(b"+OK POP3 ready") == replies.Pop3Status(True, "POP3 ready")
    assert replies.parse_pop3_status(b"-ERR no") == replies.Pop3Status(False, "no")
    assert replies.parse_pop3_status(b"+OK") == replies.Pop3Status(True, "")
    assert replies.pop3_capa_item(b"stls") == "STLS"
    assert replies.pop3_capa_item(b"..odd") == ".ODD"  # byte-stuffed (RFC 1939 §3)
    assert replies.pop3_capa_item(b".") is None
    with pytest.raises(ReplyError):
        replies.parse_pop3_status(b"+OKAY")


def test_server_text_shown_to_people_is_escaped_and_capped() -> None:
    line = replies.parse_imap_line(b"* OK \x1b[31mred\x07" + b"x" * 500)
    shown = line.summary()
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert len(shown) <= 201


# Property: any bytes either parse or raise the parser's own error, never anything else.
_lines = st.binary(max_size=300) | st.builds(
    lambda head, tail: head + tail,
    st.sampled_from([b"250-", b"250 ", b"* OK ", b"a1 NO [", b"+OK ", b"-ERR", b"* ", b"+ ", b"."]),
    st.binary(max_size=100),
)


@given(_lines)
def test_smtp_line_parses_or_raises_reply_error(raw: bytes) -> None:
    try:
        replies.parse_smtp_line(raw)
    except ReplyError:
        pass


@given(st.lists(_lines, min_size=1, max_size=5))
def test_smtp_reply_joins_or_raises_reply_error(raws: list[bytes]) -> None:
    parsed = []
    for raw in raws:
        try:
            parsed.append(replies.parse_smtp_line(raw))
        except ReplyError:
            return
    try:
        reply = replies.join_smtp_reply(parsed)
    except ReplyError:
        return
    assert isinstance(reply.keywords, frozenset)
    assert isinstance(reply.summary(), str)


@given(_lines)
def test_imap_line_parses_or_raises_reply_error(raw: bytes) -> None:
    try:
        line = replies.parse_imap_line(raw)
    except ReplyError:
        return
    assert line.capabilities is None or isinstance(line.capabilities, frozenset)
    assert isinstance(line.summary(), str)


@given(_lines)
def test_pop3_parses_or_raises_reply_error(raw: bytes) -> None:
    for parse in (replies.parse_pop3_status, replies.pop3_capa_item):
        try:
            parse(raw)
        except ReplyError:
            pass
