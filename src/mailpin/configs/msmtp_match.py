"""Which `from` chooses the account for an envelope-from address (conf.c `find_account_by_envelope_from`).

msmtp 1.8.23 walks the accounts in order and takes the first whose `from` matches; for each one it
makes exactly one of three comparisons:

1. the address has a `+` and an `@` (anywhere: msmtp takes the first of each) and the account's
   `from` has no `+`: sub-addressing — the text before the address's `+` and the account's part
   before its `@` are equal ignoring ASCII case, and so are both texts from the first `@` on. A
   wildcard `from` is never tried for such an address (`*@work.example` does not take
   `me+lists@work.example`);
2. else a `from` holding `?`, `*` or `[` is a glob(7) pattern: glibc `fnmatch(from, address, 0)`,
   case-sensitive, `\\` escapes, `[!…]` (and `[^…]` unless POSIXLY_CORRECT), classes `[[:alpha:]]`;
   in a UTF-8 locale over characters, bytes that are not UTF-8 matched byte by byte (measured);
3. else the two are equal ignoring ASCII case.

Only ASCII is locale-independent here: where the C and UTF-8 locales disagree, `from_matches`
raises `LocaleDependent` (the caller refuses rather than guess msmtp's locale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class LocaleDependentError(Exception):
    """msmtp's answer for this pattern and address depends on its locale (LC_CTYPE)."""


def from_matches(pattern: str, address: str, posix: bool = False, collation: str = "C") -> bool:
    """Does `address` choose the account whose `from` is `pattern`? (`posix`: POSIXLY_CORRECT set;
    `collation`: msmtp's LC_COLLATE locale, which orders the characters of a range `[a-z]`)."""
    plus, at = address.find("+"), address.find("@")
    if plus != -1 and at != -1 and "+" not in pattern:
        # "Subaddressing matches the pattern /user+detail@domain/ [...] ignore the detail."
        pattern_at = pattern.find("@")
        return (
            pattern_at == plus
            and _fold(address[:plus]) == _fold(pattern[:plus])
            and _fold(address[at:]) == _fold(pattern[pattern_at:])
        )
    if any(char in pattern for char in "?*["):  # "a wildcard pattern according to glob(7)"
        ranges = collation in ("", "C", "POSIX") or collation.startswith("C.")  # C.UTF-8: code points
        return _fnmatch_any_locale(pattern, address, posix, ranges)
    return _fold(address) == _fold(pattern)  # strcasecmp


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)  # strcasecmp folds ASCII letters only (C and UTF-8 locales)


def _fnmatch_any_locale(pattern: str, address: str, posix: bool, ranges: bool) -> bool:
    raw_pattern = pattern.encode("utf-8", "surrogateescape")
    raw_address = address.encode("utf-8", "surrogateescape")
    in_c = fnmatch(list(raw_pattern), list(raw_address), posix, ranges)
    if raw_pattern.isascii() and raw_address.isascii():
        return in_c
    try:
        wide = fnmatch(_code_points(raw_pattern), _code_points(raw_address), posix, ranges, wide=True)
    except UnicodeDecodeError:
        wide = in_c  # glibc 2.36 matches bytes when either is not valid UTF-8 (measured: `?` takes \xff)
    if wide != in_c:
        raise LocaleDependentError(f"whether {address!r} matches `from {pattern}` depends on msmtp's locale")
    return in_c


def _code_points(raw: bytes) -> list[int]:
    return [ord(char) for char in raw.decode("utf-8")]


# --- glibc fnmatch without flags, over characters (bytes in the C locale, code points in UTF-8) ----

_NUL, _BANG, _CARET, _BSLASH, _LBR, _RBR, _COLON, _EQ, _DOT, _DASH, _STAR, _QMARK = map(ord, "\0!^\\[]:=.-*?")
_CLASS_MAX = 256  # CHAR_CLASS_MAX_LENGTH
_Opts = tuple[bool, bool, bool]  # (POSIXLY_CORRECT set, ranges in code-point order, code points)
_CLASSES: dict[str, Callable[[int], bool]] = {  # ASCII only
    "alnum": lambda c: chr(c).isalnum(),
    "alpha": lambda c: chr(c).isalpha(),
    "blank": lambda c: c in (9, 32),
    "cntrl": lambda c: c < 32 or c == 127,
    "digit": lambda c: 48 <= c <= 57,
    "graph": lambda c: 33 <= c <= 126,
    "lower": lambda c: chr(c).islower(),
    "print": lambda c: 32 <= c <= 126,
    "punct": lambda c: 33 <= c <= 126 and not chr(c).isalnum(),
    "space": lambda c: c in (9, 10, 11, 12, 13, 32),
    "upper": lambda c: chr(c).isupper(),
    "xdigit": lambda c: chr(c) in "0123456789abcdefABCDEF",
}


def fnmatch(
    pattern: Sequence[int], string: Sequence[int], posix: bool = False, ranges: bool = True, wide: bool = False
) -> bool:
    """glibc fnmatch(pattern, string, 0) == 0 for ASCII ctype; characters as integers. `ranges`:
    a range is in code-point order (C, C.UTF-8); else one raises LocaleDependentError. `wide`:
    characters are code points (a UTF-8 locale; a class tested on a non-ASCII one raises), else bytes."""
    return _match([*pattern, _NUL], 0, list(string), 0, (posix, ranges, wide), None)


def _match(p: list[int], pi: int, s: list[int], ni: int, opts: _Opts, ends: list[int] | None) -> bool:
    while True:
        c = p[pi]
        pi += 1
        if c == _NUL:
            return ni == len(s)
        if c == _QMARK:
            if ni == len(s):
                return False
        elif c == _BSLASH:
            c = p[pi]
            pi += 1
            if c == _NUL or ni == len(s) or s[ni] != c:  # "Trailing \ loses."
                return False
        elif c == _STAR:
            if ends is not None:  # a segment between two stars matched: the caller continues here
                ends[:] = [pi - 1, ni]
                return True
            found = _star(p, pi, s, ni, opts)
            if found is None or not found:
                return found is not None
            pi, ni = found
            continue
        elif c == _LBR:
            after = _bracket(p, pi, s, ni, opts)
            if after is None:
                return False
            if after < 0:  # "[ unterminated, treat as normal character."
                if ni == len(s) or s[ni] != _LBR:
                    return False
            else:
                pi = after
        elif ni == len(s) or s[ni] != c:
            return False
        ni += 1


def _star(p: list[int], pi: int, s: list[int], ni: int, opts: _Opts) -> list[int] | None:
    """After a `*`: None (no match), [] (the rest matched), or [pi, ni] where the next `*` takes over."""
    c = p[pi]
    pi += 1
    while c in (_QMARK, _STAR):
        if c == _QMARK:
            if ni == len(s):
                return None
            ni += 1
        c = p[pi]
        pi += 1
    if c == _NUL:
        return []
    literal = None if c == _LBR else (p[pi] if c == _BSLASH else c)
    for k in range(ni, len(s)):
        if literal is not None and s[k] != literal:
            continue
        end: list[int] = []
        if _match(p, pi - 1, s, k, opts, end):
            return end
    return None


def _bracket(p: list[int], pi: int, s: list[int], ni: int, opts: _Opts) -> int | None:
    """`[...]` at p[pi:] against s[ni]: the index after it if it takes the character, None for no
    match (of the whole pattern), -1 when the bracket is unterminated (then "[" is an ordinary one)."""
    if ni == len(s):
        return None
    negate = p[pi] == _BANG or (not opts[0] and p[pi] == _CARET)
    pi += 1 if negate else 0
    fn = s[ni]
    c = p[pi]
    pi += 1
    while True:
        element: int | None = None  # a single character that may start a range
        not_range_after: tuple[int, ...] = (_NUL, _RBR)
        if c == _BSLASH:
            if p[pi] == _NUL:
                return None
            element, pi = p[pi], pi + 1
        elif c == _LBR and p[pi] == _COLON:
            name, at = _class_name(p, pi)
            if name is None:
                element = _LBR  # "This cannot possibly be a character class name."
            else:
                if name not in _CLASSES:
                    return None
                if fn >= 128 and opts[2]:  # glibc's Unicode ctype tables: not guessed here
                    raise LocaleDependentError("a character class takes a non-ASCII character by msmtp's locale")
                if fn < 128 and _CLASSES[name](fn):
                    return _skip(p, at, negate)
                c, pi = p[at], at + 1
        elif c == _LBR and p[pi] == _EQ:
            if p[pi + 1] != _NUL and p[pi + 2] == _EQ and p[pi + 3] == _RBR:
                if fn == p[pi + 1]:
                    return _skip(p, pi + 4, negate)
                c, pi = p[pi + 4], pi + 5
            else:
                element = _LBR
        elif c == _NUL:
            return -1
        elif c == _LBR and p[pi] == _DOT:
            element, pi = _collating(p, pi)
            if element is None:
                return None
            not_range_after = (_NUL,)  # a collating symbol starts a range even before "]"
        else:
            element = c
        if element is not None:
            is_range = p[pi] == _DASH and p[pi + 1] not in not_range_after
            if not is_range and element == fn:
                return _skip(p, pi, negate)
            found = _range(p, pi, element, fn, negate, opts[1])
            if not isinstance(found, tuple):
                return found
            c, pi = found
        if c == _RBR:
            return None if not negate else pi


def _range(p: list[int], pi: int, low: int, fn: int, negate: bool, ranges: bool) -> tuple[int, int] | int | None:
    """After an element: (next character, index after it), or the bracket's result when decided."""
    c = p[pi]
    pi += 1
    if c == _DASH and p[pi] != _RBR:
        high = p[pi]
        pi += 1
        if high == _LBR and p[pi] == _DOT:
            symbol, pi = _collating(p, pi)
            if symbol is None:
                return None
            high = symbol
        else:
            if high == _BSLASH:
                high, pi = p[pi], pi + 1
            if high == _NUL:
                return None
        if not ranges:
            raise LocaleDependentError("a range in a `from` pattern follows the collation of msmtp's locale")
        if low <= fn <= high:  # the C locale's collation order is the characters' order
            return _skip(p, pi, negate)
        c = p[pi]
        pi += 1
    return c, pi


def _class_name(p: list[int], pi: int) -> tuple[str | None, int]:
    """`[:name:]` with p[pi] == ":": (name, index after it), or (None, pi) when it cannot be one."""
    name: list[int] = []
    at = pi
    while True:
        if len(name) == _CLASS_MAX:
            return "", at  # "The name is too long and therefore the pattern is ill-formed."
        at += 1
        c = p[at]
        if c == _COLON and p[at + 1] == _RBR:
            return "".join(map(chr, name)), at + 2
        if c < ord("a") or c >= ord("z"):
            return None, pi
        name.append(c)


def _collating(p: list[int], pi: int) -> tuple[int | None, int]:
    """`[.x.]` with p[pi] == ".": the one character it names (the C locale has no other names)."""
    at, count = pi, 0
    while True:
        at += 1
        if p[at] == _DOT and p[at + 1] == _RBR:
            return (p[pi + 1] if count == 1 else None), at + 2
        if p[at] == _NUL:
            return None, at
        count += 1


def _skip(p: list[int], pi: int, negate: bool) -> int | None:
    """ "Skip the rest of the [...] that already matched": the index after `]`, or None."""
    while True:
        c = p[pi]
        pi += 1
        if c == _RBR:
            return None if negate else pi
        if c == _NUL:
            return -1  # unterminated after all: glibc 2.36 then takes "[" as an ordinary character
        if c == _BSLASH:
            if p[pi] == _NUL:
                return None
            pi += 1
        elif c == _LBR and p[pi] == _COLON:
            start, count = pi, 0
            while True:
                pi += 1
                count += 1
                if count == _CLASS_MAX:
                    return None
                if p[pi] == _COLON and p[pi + 1] == _RBR:
                    break
                if p[pi] < ord("a") or p[pi] >= ord("z"):
                    pi = start - 2
                    break
            pi += 2
        elif c == _LBR and p[pi] == _EQ:
            if p[pi + 1] == _NUL or p[pi + 2] != _EQ or p[pi + 3] != _RBR:
                return None
            pi += 4
        elif c == _LBR and p[pi] == _DOT:
            while True:
                pi += 1
                if p[pi] == _NUL:
                    return None
                if p[pi] == _DOT and p[pi + 1] == _RBR:
                    break
            pi += 2
