r"""configobj, fed only lines it reads in linear time: mailpin's settings and its pin store.

configobj reads each line with backtracking regexes: quadratic in a run of blanks inside a name or a
value (`a` + 48 000 blanks + `b`: 4 s) and in a run of brackets and blanks on a section line (`[` *
6 875: 1 s; `[a` + 6 000 × (16 blanks + `]`) + `x`: 220 s), exponential in the items of a list
value that does not parse (`a = "x", "x", … "y" z`, 18 items: 30 s); bench/results-fuzz.md. So a
line reaches configobj only in one of the shapes below, checked by regexes that run in linear time
and on which configobj's first try succeeds, and without its inline comment (which may hold any of
those shapes; mailpin never writes these files back from what configobj read). Blanks around `=`,
`,` and brackets and before a comment may run on as long as they like; inside a name or an unquoted
value at most _BLANKS. A line of another shape is refused, in configobj's words where configobj
refuses it too. Every `\s*` is followed by what no blank can start (or by `(?!\s)`): none of them
gives back blanks one at a time to a rescan of the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from configobj import ConfigObj  # type: ignore[import-untyped]

_BLANKS = 8
_GAP = rf"\s{{1,{_BLANKS}}}"  # blanks in a row inside a name or an unquoted value


def _quoted(quote: str) -> str:
    return rf"{quote}\s{{0,{_BLANKS}}}[^{quote}\s]+(?:{_GAP}[^{quote}\s]+)*\s{{0,{_BLANKS}}}{quote}"


_ITEM = rf"""(?:"[^"]*"|'[^']*'|[^\s'",#][^\s,#]*(?:{_GAP}[^\s,#]+)*)"""
_KEY = rf"""(?:"[^"]*"|'[^']*'|[^\s'"=\[#][^\s=]*(?:{_GAP}[^\s=]+)*)"""
_NAME = rf"""(?:{_quoted('"')}|{_quoted("'")}|[^\s'"\[\]][^\s\[\]]*(?:{_GAP}[^\s\[\]]+)*)"""
_SECTION = re.compile(rf"(?P<kept>\[(?:\s*\[)*\s*{_NAME}\s*\](?:\s*\])*)\s*(?:#.*)?")
_KEYWORD = re.compile(rf"(?P<kept>{_KEY}\s*=\s*(?!\s)(?:,|{_ITEM}(?:\s*,\s*{_ITEM})*(?:\s*,)?|))\s*(?:#.*)?")
_KEY_ONLY = re.compile(rf"{_KEY}\s*=")
_TRIPLE = re.compile(rf"""{_KEY}\s*=\s*(?P<quote>'''|\"\"\")""")


@dataclass
class LineError(Exception):
    """A line configobj must not read: its number, and the problem in configobj's words."""

    line: int
    problem: str


def configobj_lines(text: str) -> list[str]:
    """TEXT as lines for configobj: split on "\\n" only (line numbers are the ones an editor shows),
    stripped (blanks at either end mean nothing to configobj), inline comments cut; the first line of
    another shape than those configobj reads in linear time raises LineError."""
    lines = [line.strip() for line in text.split("\n")]
    kept = list(lines)
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line or line.startswith("#"):
            continue  # configobj skips these without a regex
        triple = _TRIPLE.match(line)
        if triple:  # configobj reads ''' and """ values with regexes of its own, all linear
            number = _multiline(lines, number, line[triple.start("quote") :])
            continue
        shape = (_SECTION if line.startswith("[") else _KEYWORD).fullmatch(line)
        if shape is None:
            raise LineError(number, _refused(line))
        kept[number - 1] = shape["kept"].rstrip()
    return kept


def _multiline(lines: list[str], number: int, value: str) -> int:
    """The number of the last line of the ''' or \"\"\" value that starts at line NUMBER, read as configobj
    reads it; configobj's error at once when it cannot (it would go on, and scan to the end, each time)."""
    quotes = value[:3]
    single, multi = ConfigObj._triple_quote[quotes]
    if single.match(value):
        return number
    if value.find(quotes, 3) == -1:
        for end in range(number, len(lines)):
            if quotes in lines[end]:
                if multi.match(lines[end]):
                    return end + 1
                break
    raise LineError(number, "Parse error in multiline value")


def _refused(line: str) -> str:
    shown = repr(line) if len(line) <= 80 else f"{line[:60]!r}… ({len(line):,} characters)"
    shape = _SECTION if line.startswith("[") else _KEYWORD
    if shape.fullmatch(re.sub(r"\s+", " ", line)):
        longest = max(len(run) for run in re.findall(r"\s+", line))
        return (
            f"{longest} blanks in a row inside a name or a value (at most {_BLANKS}; around `=`, `,` and"
            " brackets any number): remove them, or quote the value"
        )
    if shape is _KEYWORD and _KEY_ONLY.match(line):
        return "Parse error in value"
    return f"Invalid line ({shown}) (matched as neither section nor keyword)"
