"""state/identity.py: when two outgoing messages are the same message (held once, sent once).

The retries are the ones the real programs make (tests/test_mua_retry.py runs them): neomutt keeps
the Message-ID and writes a new Date; aerc also writes its fields in another order; git send-email
writes a new Date and Message-ID. Every "same" has a sibling that must stay "different".
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailpin.state.identity import identify

ARGV = ("-oi", "--", "bob@example.org")
MESSAGE = (
    b"Date: Fri, 4 Dec 2026 00:48:21 +0000\r\nFrom: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
    b"Subject: quarterly report\r\nMessage-ID: <20261204004821.abc@vm>\r\nMIME-Version: 1.0\r\n\r\n"
    b"Hello Bob,\r\n\r\nthe numbers.\r\n"
)


def same(a: bytes, b: bytes, argv_a: tuple[str, ...] = ARGV, argv_b: tuple[str, ...] = ARGV) -> set[str]:
    """Which kinds of key the two share ("mid", "text")."""
    one, two = identify("msmtp", argv_a, a), identify("msmtp", argv_b, b)
    return {key.partition(":")[0] for key in set(one.keys) & set(two.keys)}


def test_neomutt_retry_a_new_date_is_the_same_message() -> None:
    retry = MESSAGE.replace(b"00:48:21", b"00:48:24")
    assert same(MESSAGE, retry) == {"mid", "text"}
    assert identify("msmtp", ARGV, MESSAGE).message_id == "20261204004821.abc@vm"


def test_aerc_retry_fields_in_another_order_is_the_same_message() -> None:
    head, _, body = MESSAGE.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")
    retry = b"\r\n".join(reversed(fields)).replace(b"00:48:21", b"00:48:30") + b"\r\n\r\n" + body
    assert same(MESSAGE, retry) == {"mid", "text"}


def test_git_retry_a_new_message_id_and_date_is_the_same_text() -> None:
    retry = MESSAGE.replace(b"00:48:21", b"00:48:22").replace(b"abc@vm", b"def@vm")
    assert same(MESSAGE, retry) == {"text"}
    # git send-email threads the rest of a series to the first message's new Message-ID.
    threaded = MESSAGE.replace(b"MIME", b"In-Reply-To: <1@vm>\r\nReferences: <1@vm>\r\nMIME")
    assert same(threaded, threaded.replace(b"<1@vm>", b"<2@vm>").replace(b"abc@vm", b"x@vm")) == {"text"}


def test_an_edited_retry_is_the_same_message_by_its_message_id_only() -> None:
    assert same(MESSAGE, MESSAGE.replace(b"the numbers.", b"the numbers, corrected.")) == {"mid"}


def test_without_a_message_id_the_text_is_the_identity() -> None:
    cron = b"From: root\nTo: alice@example.org\nSubject: backup\n\nok\n"
    assert identify("msmtp", ARGV, cron).keys[0].startswith("text:") and len(identify("msmtp", ARGV, cron).keys) == 1
    assert identify("msmtp", ARGV, cron).message_id == ""
    assert same(cron, b"Date: Mon, 30 Nov 2026 06:00:00 +0000\n" + cron) == {"text"}
    assert same(cron, cron.replace(b"\n", b"\r\n")) == {"text"}  # line endings: msmtp sends CRLF either way
    assert same(cron, b"Received: from x by y; Mon, 30 Nov 2026\nReturn-Path: <r@x>\n" + cron) == {"text"}
    assert same(cron, cron.replace(b"ok", b"disk full")) == set()
    assert same(cron, cron.replace(b"Subject: backup", b"Subject: backup2")) == set()


def test_another_envelope_is_another_message() -> None:
    assert same(MESSAGE, MESSAGE, ARGV, ("-oi", "--", "carol@example.org")) == set()
    assert same(MESSAGE, MESSAGE, ARGV, ("-oi", "--", "bob@example.org", "carol@example.org")) == set()
    assert same(MESSAGE, MESSAGE, ("-f", "alice@example.org", *ARGV), ("-f", "alice2@example.org", *ARGV)) == set()
    # The order of the recipients and options that do not touch the envelope are not the message.
    two = ("-oi", "--", "bob@example.org", "carol@example.org")
    assert same(MESSAGE, MESSAGE, two, ("--", "carol@example.org", "bob@example.org")) == {"mid", "text"}
    assert same(MESSAGE, MESSAGE, ARGV, ("-a", "work", *ARGV)) == {"mid", "text"}


def test_the_envelope_msmtp_reads_from_the_header() -> None:
    read = ("--read-envelope-from", "-t")
    other_from = MESSAGE.replace(b"From: Alice <alice@example.org>", b"From: Alice <alice@work.example>")
    assert same(MESSAGE, other_from, read, read) == set()  # another MAIL FROM
    cc = MESSAGE.replace(b"To: bob@example.org", b"To: bob@example.org\r\nBcc: eve@example.org")
    assert same(MESSAGE, cc, read, read) == set()  # another RCPT TO
    # Without -t the header's recipients are not the envelope: only the text differs (a Bcc line).
    assert same(MESSAGE, cc) == {"mid"}


def test_a_message_id_is_compared_without_its_brackets_and_folding() -> None:
    folded = MESSAGE.replace(b"Message-ID: <20261204004821.abc@vm>", b"Message-ID:\r\n <20261204004821.abc@vm> ")
    assert same(MESSAGE, folded.replace(b"00:48:21 +0000", b"00:49:00 +0000")) >= {"mid"}


@given(st.binary(max_size=2000), st.lists(st.text(max_size=20), max_size=6))
def test_any_message_and_argv_have_an_identity(message: bytes, argv: list[str]) -> None:
    args = [arg.replace("\0", "") for arg in argv]
    found = identify("msmtp", args, message)
    assert found == identify("msmtp", args, message)  # deterministic
    assert 1 <= len(found.keys) <= 2 and found.keys[-1].startswith("text:")
    assert (found.mid_key is not None) == bool(found.message_id)


def test_a_multipart_message_encoded_again_is_the_same_text() -> None:
    """A retry that encodes the parts again draws new boundaries (and here a new Message-ID)."""

    def multipart(outer: bytes, inner: bytes, mid: bytes, attachment: bytes = b"QUJD") -> bytes:
        return (
            b"From: alice@example.org\nTo: bob@example.org\nSubject: files\nMessage-ID: <" + mid + b">\n"
            b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="' + outer + b'"\n\n'
            b"--" + outer + b"\nContent-Type: multipart/alternative; boundary=" + inner + b"\n\n"
            b"--" + inner + b"\nContent-Type: text/plain\n\nhi\n--" + inner + b"--\n"
            b"--"
            + outer
            + b"\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + attachment
            + b"\n--"
            + outer
            + b"--\n"
        )

    first = multipart(b"=-=1a2b3c=-=", b"xyz789", b"1@vm")
    assert same(first, multipart(b"=-=9f8e7d6c5b=-=", b"q1", b"2@vm")) == {"text"}
    assert same(first, multipart(b"=-=9f8e7d6c5b=-=", b"q1", b"2@vm", attachment=b"QUJE")) == set()
