"""pins.conf: the profiles, in configobj format, written atomically under a lock (DESIGN §4, STYLE §8).

The file must never lie. Everything that is not exactly what mailpin wrote (unparsable text, a
missing or newer `version`, a missing, unknown or invalid setting, a file cut short) is a
ConfigError, never a reason to start over: an empty store would mean pinning afresh on first use.

Strings go through a small escape (`%XX`) for what configobj cannot quote or keep (`%` itself,
control and other non-printable characters, a space at either end or after another space, `"` in a
string that has `'` too), so any account name or certificate subject round-trips; the rest is
written as is, for readable diffs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import TLS_VERSIONS, Level, Mode, Profile, Protocol, Tool
from mailpin.state import memo
from mailpin.state.durable import foreign, make_private_dirs, remove_stray_temps, write_atomically

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any

PINS_VERSION = 1

_HEADER = (
    "# mailpin pin store: the TLS profile pinned for each mail account.",
    "# mailpin writes this file: change it with `mailpin accept ACCOUNT` / `mailpin forget ACCOUNT`.",
    "# Keep it with your dotfiles like ~/.ssh/known_hosts. The last line marks a complete file.",
)
# A file cut short at a section boundary would still parse, one account short; the end line
# makes every truncation an error instead of a silent re-pin of the accounts lost.
_END = "# end of mailpin pins"
_FIX = "restore it from your dotfiles or a backup, or move it aside and run `mailpin init` to pin again"


def _option(enum: type[Enum]) -> str:
    return "option({})".format(", ".join(repr(member.value) for member in enum))


# One entry per Profile field but `account` (the section name), in the order written: a fixed
# order keeps an unchanged store byte for byte identical, and diffs small.
_CHECKS = {
    "protocol": _option(Protocol),
    "host": "string(min=1)",
    "port": "integer(min=1, max=65535)",
    "mode": "option('implicit', 'starttls')",  # a profile is always TLS: `none` is never pinned
    "servername": "string(default=None)",  # absent when None
    "certcheck": "boolean(default=True)",
    # An unknown version would rank below every floor and switch the floor off: only known ones.
    "tls_version": "option({})".format(", ".join(repr(version) for version in TLS_VERSIONS)),
    "level": _option(Level),
    "cert_sha256": "string_list()",
    "spki_sha256": "string_list()",
    "ca_spki_sha256": "string_list()",
    "accepted": "string_list()",
    "subject": "string()",
    "issuer": "string()",
    "not_before": "string()",
    "not_after": "string()",
    "pinned_at": "string()",
    "trust": "string()",
}
_TIMES = ("not_before", "not_after", "pinned_at")
# The code that decides what configobj makes of the file (state/memo.py): this and its line check.
_READERS = (__file__, os.path.join(os.path.dirname(__file__), "configobj_lines.py"))
_SPEC = ("version = integer(min=1)", "[__many__]", *(f"{name} = {check}" for name, check in _CHECKS.items()))


class PinStore:
    def __init__(self, path: Path, lock_path: Path, cache_home: Path | None = None) -> None:
        self.path = path
        self.lock_path = lock_path
        self.cache_home = cache_home  # where configobj's reading of the file is remembered (state/memo.py)

    @classmethod
    def for_env(cls, env: Env) -> PinStore:
        # The lock lives in the state dir: a dotfiles repo holding pins.conf stays clean.
        home = env.config_home / "mailpin"
        return cls(home / "pins.conf", env.state_home / "mailpin" / "pins.lock", env.cache_home)

    def load(self) -> dict[str, Profile]:
        """The profiles by account key; no file is no profiles. No lock: writes replace the file whole."""
        unfit = foreign(self.path, "the pin store")
        if unfit:
            raise ConfigError(str(self.path), None, unfit)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            if self.path.is_symlink():  # dotfiles not checked out / not mounted: the pins are elsewhere
                target = os.path.realpath(self.path)
                raise ConfigError(str(self.path), None, f"a symlink to {target}, which does not exist") from None
            return {}
        except OSError as exc:
            raise ConfigError(str(self.path), None, f"cannot read the pin store: {exc.strerror or exc}") from None
        return _parse(data, str(self.path), self.cache_home)

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Profile]]:
        """Read, let the caller change, write back if changed: all under one exclusive lock.
        An exception in the block writes nothing."""
        lock = self._lock()
        try:
            before = self.load()
            profiles = dict(before)
            yield profiles
            if profiles != before:
                self._write(profiles)
        finally:
            os.close(lock)  # releases the flock

    def _lock(self) -> int:
        try:
            make_private_dirs(self.lock_path.parent)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(
                str(self.lock_path), None, f"cannot open the pin store's lock: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            raise ConfigError(str(self.lock_path), None, f"cannot lock the pin store: {exc.strerror or exc}") from None
        return fd

    def _write(self, profiles: Mapping[str, Profile]) -> None:
        text = _render(profiles)
        try:
            # (remembered: the next run's read of what this writes takes configobj's reading from here)
            back = _parse(text.encode("utf-8"), "(rendered pins)", self.cache_home)
        except ConfigError as exc:
            raise ValueError(f"a profile mailpin could not read back: {exc}") from None
        if back != dict(profiles):
            raise ValueError("a profile does not survive a round trip through pins.conf")
        # A symlink (GNU stow, home-manager) stays a symlink: write where it points.
        target = Path(os.path.realpath(self.path))
        source = str(self.path)
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise ConfigError(source, None, f"cannot write the pin store: {exc.strerror or exc}") from None
        # No write bit at all counts too: root may write anything, but the file says "do not".
        if mode is not None and (not mode & 0o222 or not os.access(target, os.W_OK)):
            raise ConfigError(source, None, _read_only(self.path, target))
        try:
            make_private_dirs(target.parent)
        except OSError as exc:
            raise ConfigError(source, None, f"cannot create {target.parent}: {exc.strerror or exc}") from None
        remove_stray_temps(target)  # of writers killed mid-write; the directory may be a dotfiles repo
        _atomic_write(target, text.encode("utf-8"), self.path)


def _read_only(path: Path, target: Path) -> str:
    where = f" (a link to {target})" if target != path else ""
    return (
        f"read-only{where}: mailpin cannot record the change; make the file writable, "
        "or keep pins.conf out of read-only storage (e.g. not in the home-manager store)"
    )


def _atomic_write(target: Path, data: bytes, shown: Path) -> None:
    """Old or new, never half (durable.write_atomically); OS errors named with the file and the fix."""
    try:
        write_atomically(target, data, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ConfigError(str(shown), None, _read_only(shown, target)) from None
        raise ConfigError(str(shown), None, f"cannot write the pin store: {exc.strerror or exc}") from None


# --- text ⇄ profiles ---------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_.:@/+=~-]+")  # nothing configobj could read as a quote, list or comment
_ESCAPED = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _escape(text: str) -> str:
    out = []
    for index, char in enumerate(text):
        # A space at either end, or after another: no run of blanks is written (configobj_lines refuses
        # long ones in a name, as configobj's regexes are quadratic in them).
        odd_space = char == " " and (index in (0, len(text) - 1) or text[index - 1] == " ")
        if char == "%" or not char.isprintable() or odd_space:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)


def _quote(text: str) -> str:
    escaped = _escape(text)
    if _PLAIN.fullmatch(escaped):
        return escaped
    if '"' not in escaped:
        return f'"{escaped}"'
    if "'" not in escaped:
        return f"'{escaped}'"
    return '"{}"'.format(escaped.replace('"', "%22"))  # configobj has no escape for a quote inside quotes


def _unescape(text: str) -> str:
    if "%" in _ESCAPED.sub("", text):
        raise ValueError(f"{text!r} has a % not followed by two hex digits")
    try:
        return _ESCAPED.sub(lambda run: bytes.fromhex(run[0].replace("%", "")).decode("utf-8", "surrogatepass"), text)
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} has %-escapes that are not UTF-8") from None


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: a profile's times are UTC")
    return moment.astimezone(timezone.utc).isoformat()


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{text!r} is not an ISO-8601 time with its UTC offset (like 2026-11-29T17:05:00+00:00)")
    return moment.astimezone(timezone.utc)


def _render(profiles: Mapping[str, Profile]) -> str:
    """The file's text: sections sorted by account, settings in a fixed order."""
    lines = [*_HEADER, f"version = {PINS_VERSION}"]
    for key in sorted(profiles):
        profile = profiles[key]
        if profile.account != key:
            raise ValueError(f"profile for {profile.account!r} filed under {key!r}")
        lines += ["", f"[{_quote(key)}]"]
        for name in _CHECKS:
            value = getattr(profile, name)
            if value is None:
                continue
            if isinstance(value, tuple):  # configobj list syntax: `,` is empty, `a,` one element
                written = ", ".join(_quote(item) for item in value) + ("," if len(value) < 2 else "")
            elif isinstance(value, datetime):
                written = _time(value)
            elif isinstance(value, Enum):
                written = _quote(value.value)
            else:
                written = _quote(str(value))
            lines.append(f"{name} = {written}")
    lines += ["", _END, ""]
    return "\n".join(lines)


def _parse(data: bytes, source: str, cache_home: Path | None = None) -> dict[str, Profile]:
    """The profiles in DATA, or a ConfigError naming SOURCE, the line when known, and the fix.
    With CACHE_HOME, configobj's reading of DATA is remembered there, or taken from there."""

    def read() -> tuple[list[list[Any]], dict[str, Profile]]:
        lines, sections = _sections(data, source)
        return sections, _profiles(sections, source, lines)

    spec = "\n".join(_SPEC)
    return memo.remembered(cache_home, "pins", data, spec, _READERS, read, lambda v: _profiles(v, source, []))


def _sections(data: bytes, source: str) -> tuple[list[str], list[list[Any]]]:
    """DATA's lines, and configobj's reading of it, checked: `[raw section name, {name: value}]` each."""
    from configobj import ConfigObj, ConfigObjError, flatten_errors, get_extra_values  # type: ignore[import-untyped]
    from configobj.validate import Validator  # type: ignore[import-untyped]

    from mailpin.state.configobj_lines import LineError, configobj_lines

    if not data:
        raise _corrupt(source, None, "the file is empty")
    try:
        text = data.decode("utf-8-sig")  # an editor's byte order mark changes nothing
    except UnicodeDecodeError as exc:
        raise _corrupt(source, data[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    # Not splitlines(): U+2028 and friends are not line ends here. configobj's regexes backtrack for
    # seconds on some shapes of line (bench/results-fuzz.md): it reads only lines checked against them.
    try:
        lines = configobj_lines(text)
    except LineError as exc:
        raise _corrupt(source, exc.line, exc.problem) from None
    try:
        config = ConfigObj(lines, configspec=list(_SPEC), interpolation=False, list_values=True)
    except ConfigObjError as exc:
        first = (getattr(exc, "errors", None) or [exc])[0]
        detail = re.sub(r"\s*at line \d+\.$", "", str(first))
        raise _corrupt(source, getattr(first, "line_number", None), detail) from None
    _check_version(config, source)
    if [line for line in lines if line.strip()][-1].strip() != _END:
        raise _corrupt(source, None, f"cut short: the last line is not `{_END}`")
    result = config.validate(Validator(), preserve_errors=True)
    # Unknown settings first: `prot = smtp` is better reported as a typo than as a missing `protocol`.
    for path, name in get_extra_values(config):  # (filled in by validate())
        where = f"[{path[0]}] " if path else ""
        problem = f"{where}unknown setting `{name}` (a typo would be lost on the next write); correct or remove it"
        raise ConfigError(source, _line_of(lines, path[0] if path else None), problem)
    for path, name, error in flatten_errors(config, result):
        section = path[0] if path else None
        what = f"no `{name}`" if error is False else f"{name}: {error}"
        raise _corrupt(source, _line_of(lines, section), f"[{section}] {what}" if section else what)
    return lines, [[raw, config[raw].dict()] for raw in config.sections]


def _profiles(sections: list[list[Any]], source: str, lines: list[str]) -> dict[str, Profile]:
    """The profiles of configobj's SECTIONS; LINES, when known, place an error."""
    profiles: dict[str, Profile] = {}
    for raw, values in sections:
        try:
            profile = _profile(_unescape(raw), values)
        except ValueError as exc:
            raise _corrupt(source, _line_of(lines, raw), f"[{raw}] {exc}") from None
        if profile.account in profiles:
            raise _corrupt(source, _line_of(lines, raw), f"[{raw}] appears twice")
        profiles[profile.account] = profile
    return profiles


def _check_version(config: Any, source: str) -> None:
    version = config.get("version")
    if version is None:
        raise _corrupt(source, None, "no `version` line")
    if not isinstance(version, str) or not re.fullmatch(r"\s*[0-9]+\s*", version) or int(version) < 1:
        raise _corrupt(source, None, f"`version` is {version!r}, not a version number")
    if int(version) > PINS_VERSION:
        raise ConfigError(
            source,
            None,
            f"written by a newer mailpin (pin store version {int(version)}; this mailpin reads version "
            f"{PINS_VERSION}): upgrade mailpin, and keep this file, it holds your pins",
        )


def _profile(account: str, section: Mapping[str, Any]) -> Profile:
    values: dict[str, Any] = {}
    for name, value in section.items():
        try:
            if isinstance(value, list):
                values[name] = tuple(_unescape(item) for item in value)
            elif name in _TIMES:
                values[name] = _parse_time(_unescape(value))
            else:
                values[name] = _unescape(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    tool, sep, name = account.partition(":")
    if not sep or tool not in {tool.value for tool in Tool}:
        raise ValueError("not an account name: use TOOL:NAME (msmtp:, mbsync: or offlineimap:)")
    protocol, mode, level = Protocol(values.pop("protocol")), Mode(values.pop("mode")), Level(values.pop("level"))
    return Profile(account=account, protocol=protocol, mode=mode, level=level, **values)


def _line_of(lines: list[str], section: str | None) -> int | None:
    """The line of SECTION's header as mailpin writes it (hand-edited spacing: None)."""
    if section is None:
        return None
    headers = {f"[{section}]", f'["{section}"]', f"['{section}']"}
    return next((number for number, line in enumerate(lines, 1) if line.strip() in headers), None)


def _corrupt(source: str, line: int | None, detail: str) -> ConfigError:
    return ConfigError(source, line, f"truncated or corrupt pin store ({detail}); {_FIX}")
