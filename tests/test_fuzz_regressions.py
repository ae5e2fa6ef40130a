"""Inputs the long fuzz run (bench/fuzz_parsers.py → bench/results-fuzz.md) found slow: each must now
be answered at once, with a result or the parser's own error."""

from __future__ import annotations

import time

import pytest

from mailpin.configs import offlineimap
from mailpin.configs.offlineimap_parsed import LinearConfigParser
from mailpin.errors import ConfigError
from mailpin.state import settings, store

BLANKS = [
    b" " * 945 + b"$" + b" " * 521,
    b" " * 1174 + b"CA" + b" " * 147,
    b" " * 3000 + b"CA" + b" " * 3000,
    b"a" + b" " * 3000 + b"b",
    b"\t " * 2000 + b"level = ca",
]


@pytest.mark.parametrize("data", BLANKS, ids=range(len(BLANKS)))
@pytest.mark.parametrize("parser", ["settings", "store"])
def test_long_runs_of_blanks_are_answered_at_once(parser: str, data: bytes) -> None:
    started = time.monotonic()
    try:
        if parser == "settings":
            settings.parse(data.decode(), "fuzz")
        else:
            store._parse(data, "fuzz")
    except ConfigError:
        pass
    assert time.monotonic() - started < 0.5


# --- the quadratic, cubic and exponential regexes still open after the blank-strip fix ---------------------
# configobj's section-marker, keyword and value regexes (settings, pin store) and configparser's option regex
# (offlineimap). Times before the fix, on this machine: in the comments.

CONFIGOBJ_SLOW = [
    b"a" + b" " * 48_000 + b"b",  # keyword regex: 4 s (settings), 8 s (store)
    b"a = b" + b" " * 100_000 + b"c",  # value regex: 2.3 s at 10 000 blanks, quadratic
    b"[" * 100_000,  # section marker: 1 s at 6 875
    b"[ " * 50_000,  # section marker: 4.7 s at 20 000 bytes
    b"[a" + b"]" * 4817 + b":::" + b"]" * 439,  # the settings reproducer of the last run: 1 s
    b"[a" + (b" " * 16 + b"]") * 6000 + b"x",  # a run of blanks and brackets: 220 s at 100 KB
    b"[" * 300 + b"a" + b"]" * 300 + b"x",  # cubic
    b"a = " + b'"x", ' * 18 + b'"y" z',  # a list that does not parse: 31 s (exponential)
    b"a = " + b'"x" ,  ' * 30 + b'"y" z',  # 8 s at 10 items
    b"a = " + b"x,  " * 30 + b'"y" z',
    b'a = "x" # ' + b'"x", ' * 30 + b'"y" z',  # the same inside a comment
    b"a = '''x\n" * 30_000,  # unclosed multi-line values: configobj scans to the end for each
    b"k =" + b" " * 100_000 + b'", ',  # quadratic in the first version of the check before configobj
]


@pytest.mark.parametrize("data", CONFIGOBJ_SLOW, ids=range(len(CONFIGOBJ_SLOW)))
@pytest.mark.parametrize("parser", ["settings", "store"])
def test_configobj_shapes_are_answered_at_once(parser: str, data: bytes) -> None:
    def read() -> object:
        if parser == "settings":
            return settings.parse(data.decode(), "fuzz")
        return store._parse(b"version = 1\n" + data + b"\n# end of mailpin pins\n", "fuzz")

    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read()
    assert time.monotonic() - started < 0.5
    assert str(caught.value).startswith("fuzz") and len(str(caught.value)) < 500


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("a" + " " * 48_000 + "b", "invalid line ('a  "),
        ("level = b" + " " * 100 + "c", "100 blanks in a row inside a name or a value (at most 8; "),
        ("[[msmtp:my" + " " * 20 + "account]]", "20 blanks in a row inside a name or a value"),
        ("notmuch_tags = " + '"+a", ' * 20 + '"+b" x', "parse error in value"),
    ],
)
def test_a_refused_line_names_the_file_the_line_and_the_fix(line: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.parse(f"level = ca\n[accounts]\n{line}\n", "/home/u/.config/mailpin/config")
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"/home/u/.config/mailpin/config:3: {problem}")
    with pytest.raises(ConfigError) as caught:
        store._parse(f"version = 1\n{line}\n# end of mailpin pins\n".encode(), "pins.conf")
    assert caught.value.line == 2 and "restore it from your dotfiles" in str(caught.value)


def test_blanks_around_separators_and_comments_are_not_refused() -> None:
    text = "level   =   key          # aligned\ntimeout =10#no blank\n[ accounts ]\n  [[ msmtp:work ]]   # c\n"
    parsed = settings.parse(text + "  level  =  pkix\n  enforce = no\n", "x")
    assert parsed.level.value == "key" and parsed.timeout == 10.0
    assert parsed.account_levels["msmtp:work"].value == "pkix" and parsed.account_enforce["msmtp:work"] is False
    tags = settings.parse('[notify]\nnotmuch_tags = "+a",    +c ,+d,  # tags\n', "x").notify.notmuch_tags
    assert tags == ("+a", "+c", "+d")


OFFLINEIMAP_SLOW = [
    "remotehos" + " " * 11_728 + "t = imap.example.org",  # the reproducer of the last run: 1 s
    "remotehos" + " " * 100_000 + "t = imap.example.org",
    "remotehost" + (" " * 8 + "x") * 10_000 + " : imap.example.org",
    "remotehost = imap.example.org" + " " * 100_000 + "x",
    "sslcacertfile" + " " * 100_000,  # no delimiter at all: configparser's error
    "a\n" * 100_000,  # bad lines: configparser's message grew by `+=` for each (16 000: 0.4 s)
]


@pytest.mark.parametrize("line", OFFLINEIMAP_SLOW, ids=range(len(OFFLINEIMAP_SLOW)))
def test_offlineimap_option_lines_are_read_at_once_and_as_configparser_reads_them(line: str) -> None:
    import configparser

    text = f"[general]\naccounts = w\n[Repository r]\n{line}\n"
    started = time.monotonic()
    if ("=" in line or ":" in line) and "\n" not in line:
        assert isinstance(offlineimap.parse(text, "fuzz.rc", "/home/u"), offlineimap.OfflineimapConfig)
    else:
        with pytest.raises(ConfigError, match=r"^fuzz\.rc:4: cannot read "):
            offlineimap.parse(text, "fuzz.rc", "/home/u")
    assert time.monotonic() - started < 0.5
    if len(line) < 20_000 and ("=" in line or ":" in line):  # configparser itself takes seconds beyond
        ours, theirs = LinearConfigParser(), configparser.ConfigParser()
        ours.read_string(text)
        theirs.read_string(text)
        assert dict(ours["Repository r"]) == dict(theirs["Repository r"])
