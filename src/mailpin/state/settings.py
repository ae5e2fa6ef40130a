"""mailpin's own settings: `$XDG_CONFIG_HOME/mailpin/config` (DESIGN §4), configobj syntax.

Every setting is optional; without the file mailpin runs on the defaults (see SAMPLE)::

    level = ca                  # pin level for new pins: leaf | key | ca | pkix; unset: decided
                                # per account (ca when the chain validates, key otherwise)
    timeout = 10                # overall deadline of one verification, seconds: 0 < t <= 600
    unpinned = pin-if-trusted   # a non-interactive run meets an account without a profile:
                                # pin it if its chain validates (ssh's accept-new), or block
    expiry_warning_days = 14    # warn (never block) when a leaf- or key-pinned certificate
                                # expires within this many days: 0 to 365
    [accounts]                  # pin level per account
      [[msmtp:work]]            # TOOL:NAME, one tool's account
      level = key
      [[personal]]              # a bare NAME: the account "personal" of every tool
      level = pkix

SPEC is the configspec. Unknown settings and sections are errors with a typo hint: a security
setting silently ignored because of a typo is worse than a loud stop (ssh: "Bad configuration
option"). Every problem is a ConfigError (exit 78) naming the file, and the line or the setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Level, Tool
from mailpin.state import memo
from mailpin.state.durable import foreign

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Notify:
    """How blocks are told: `[notify]` in the config."""

    desktop: bool = True
    interval: float = 3600.0  # seconds between two notifications of the same account and reasons
    unverified_interval: float = 21600.0  # the same, for "could not verify"
    notmuch: bool = False  # an alert message in the notmuch inbox
    notmuch_tags: tuple[str, ...] = ("+mailpin", "+inbox", "+unread")


def _notify(section: Any, source: str) -> Notify:
    tags = tuple(str(tag) for tag in section["notmuch_tags"])
    bad = [tag for tag in tags if not tag.startswith(("+", "-")) or len(tag) < 2 or any(c.isspace() for c in tag)]
    if bad:
        raise ConfigError(source, None, f"notify/notmuch_tags: {bad[0]!r} is not a tag change like +mailpin")
    return Notify(
        desktop=bool(section["desktop"]),
        interval=float(section["interval"]),
        unverified_interval=float(section["unverified_interval"]),
        notmuch=bool(section["notmuch"]),
        notmuch_tags=tags,
    )


class Unpinned(str, Enum):
    """What a non-interactive run does with an account that has no profile yet."""

    BLOCK = "block"
    PIN_IF_TRUSTED = "pin-if-trusted"  # pin when the chain validates against the account's trust


_LEVELS = ", ".join(repr(level.value) for level in Level)
_UNPINNED = ", ".join(repr(choice.value) for choice in Unpinned)

# The configspec: add settings and sections here. Every setting needs a default (all are optional);
# the checks are the _CHECKS below.
SPEC = f"""\
level = one_of({_LEVELS}, default=None)
timeout = seconds(max=600, default=10)
unpinned = one_of({_UNPINNED}, default={Unpinned.PIN_IF_TRUSTED.value!r})
expiry_warning_days = whole(min=0, max=365, default=14)

[accounts]
  [[__many__]]
  level = one_of({_LEVELS}, default=None)
  enforce = boolean(default=None)

[notify]
desktop = boolean(default=True)
interval = seconds(max=604800, default=3600)
unverified_interval = seconds(max=604800, default=21600)
notmuch = boolean(default=False)
notmuch_tags = force_list(default=list("+mailpin", "+inbox", "+unread"))

[tools]
msmtp = string(default=None)
mbsync = string(default=None)
offlineimap = string(default=None)

[dns]
nameservers = nameservers(default=list())
"""

SAMPLE = """\
# mailpin settings. Every setting is optional; the values shown are the defaults.

# Pin level for new pins: leaf | key | ca | pkix. Unset, it is decided per account:
# ca when the chain validates against the account's trust, key otherwise.
# level = ca

# Overall deadline of one verification, in seconds (more than 0, at most 600).
timeout = 10

# What a non-interactive run does with an account that has no profile yet:
#   pin-if-trusted  pin it if its chain validates against the account's trust (ssh's accept-new)
#   block           refuse until `mailpin init` or `mailpin accept` pins it
unpinned = pin-if-trusted

# Warn (never block) when a leaf- or key-pinned certificate expires within this many days (0 to 365).
expiry_warning_days = 14

# Pin level per account: [[TOOL:NAME]] for one tool's account, [[NAME]] for that name in every tool.
[accounts]
#   [[msmtp:work]]
#   level = key
#   [[personal]]
#   level = pkix

# How a block is told (always also on stderr and in the exit status).
[notify]
# A desktop notification (D-Bus; notify-send; macOS notification centre).
desktop = yes
# The same account and reasons are told at most once per this many seconds; a new reason at once.
interval = 3600
# "Could not verify" (offline, server down) is told more rarely: it is usually not an attack.
unverified_interval = 21600
# Also put an alert message into your notmuch inbox, tagged with notmuch_tags.
notmuch = no
notmuch_tags = +mailpin, +inbox, +unread

# The real tools, when `mailpin run` should not look for them on PATH (it always skips its own shims).
[tools]
# msmtp = /usr/bin/msmtp
# mbsync = /usr/bin/mbsync
# offlineimap = /usr/bin/offlineimap

# Where `mailpin upgrade` and `setup` look up SRV records (RFC 6186, RFC 8314): ADDRESS or
# ADDRESS@PORT, one or more. Unset: the system's resolver configuration (/etc/resolv.conf).
[dns]
# nameservers = 127.0.0.1, ::1@5353
"""
# The code that decides what configobj makes of the file (state/memo.py): this and its line check.
_READERS = (__file__, os.path.join(os.path.dirname(__file__), "configobj_lines.py"))


@dataclass(frozen=True)
class Settings:
    level: Level | None = None  # default pin level for new pins; None = decided per account
    timeout: float = 10.0  # overall deadline of one verification, seconds
    unpinned: Unpinned = Unpinned.PIN_IF_TRUSTED  # non-interactive run, account without a profile
    expiry_warning_days: int = 14  # warn (never block) when a pinned leaf expires within this
    account_levels: Mapping[str, Level] = field(default_factory=dict)  # "TOOL:NAME" or bare "NAME"
    account_enforce: Mapping[str, bool] = field(default_factory=dict)  # `enforce = no`: pre-flight check only
    tools: Mapping[str, str] = field(default_factory=dict)  # the real binary per tool, instead of PATH
    nameservers: tuple[str, ...] = ()  # for SRV look-ups (ADDRESS[@PORT]); (): the system's resolver
    notify: Notify = field(default_factory=lambda: Notify())
    source: str | None = None  # the file read, None when there is none
    account_names: tuple[str, ...] = ()  # every [[NAME]] under [accounts], as written

    def unknown_accounts(self, keys: Collection[str]) -> list[str]:
        """Warnings for [[NAME]] sections that name none of `keys` (TOOL:NAME): their settings apply to
        nothing — a typo, or an account that was renamed — with the closest names as a suggestion."""
        import difflib

        bare = {key.partition(":")[2] for key in keys}
        said = []
        for name in self.account_names:
            if name in keys or name in bare:
                continue
            close = difflib.get_close_matches(name, sorted({*keys, *bare}), n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; the accounts are {', '.join(sorted(keys))}"
            said.append(f"{self.source}: [accounts] [[{name}]] names no account of the tools' configs, so its "
                        f"settings apply to nothing{hint if keys else ''}")  # fmt: skip
        return said

    def enforce_for(self, account_key: str) -> bool:
        """Hold the tool's own session to the profile (tunnel, pinned certificate)? Default yes."""
        name = account_key.partition(":")[2]
        for key in (account_key, name):
            if key in self.account_enforce:
                return self.account_enforce[key]
        return True

    def level_for(self, account_key: str) -> Level | None:
        """The exact `TOOL:NAME` entry, else the bare `NAME` entry, else the default level."""
        if account_key in self.account_levels:
            return self.account_levels[account_key]
        _, colon, name = account_key.partition(":")
        if colon and name in self.account_levels:
            return self.account_levels[name]
        return self.level


def path(env: Env) -> Path:
    return env.config_home / "mailpin" / "config"


def load(env: Env) -> Settings:
    """The settings file parsed; the defaults when there is none."""
    file = path(env)
    source = str(file)
    unfit = foreign(file, "mailpin's settings")
    if unfit:
        raise ConfigError(source, None, unfit)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if file.is_symlink():  # a dotfile link whose target is gone must not reset the settings
            raise ConfigError(source, None, "is a broken symbolic link") from None
        return Settings()
    except OSError as error:
        raise ConfigError(source, None, f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(source, line, f"not UTF-8 text (byte 0x{data[error.start]:02x})") from None

    def read() -> tuple[dict[str, Any], Settings]:
        values = _validated(text, source)
        return values, _settings(values, source)

    return memo.remembered(env.cache_home, "settings", data, SPEC, _READERS, read, lambda v: _settings(v, source))


def parse(text: str, source: str) -> Settings:
    """Settings from the text of a config file; `source` names it in errors and in the result."""
    return _settings(_validated(text, source), source)


def _validated(text: str, source: str) -> dict[str, Any]:
    """configobj's reading of TEXT, checked against SPEC and converted: nested dicts of values."""
    from configobj import ConfigObj, ConfigObjError  # type: ignore[import-untyped]
    from configobj.validate import Validator  # type: ignore[import-untyped]

    from mailpin.state.configobj_lines import LineError, configobj_lines

    try:
        lines = configobj_lines(text)
    except LineError as error:
        raise ConfigError(source, error.line, error.problem[:1].lower() + error.problem[1:]) from None
    try:
        config = ConfigObj(lines, configspec=SPEC.splitlines(), interpolation=False, raise_errors=True)
    except ConfigObjError as error:
        problem = re.sub(r" at line \d+\.$", "", str(error))
        raise ConfigError(source, error.line_number, problem[:1].lower() + problem[1:]) from None
    _check_names(config, config.configspec, (), source)  # before validate: it mangles misplaced sections
    results = config.validate(Validator(_CHECKS), preserve_errors=True)
    failures = _failures(results, ())
    if failures:
        where, failure = failures[0]
        hint = ""
        spec = config.configspec
        for part in where:
            spec = spec.get(part, {}) if hasattr(spec, "get") else {}
        if isinstance(spec, str) and spec.startswith("boolean"):
            hint = ": use yes or no"  # validate's own words say only "of the wrong type"
        said = f"{str(failure).rstrip('.')}{hint}" if hint else failure
        raise ConfigError(source, None, f"{'/'.join(where)} {_shown(_value(config, where))}: {said}")
    values: dict[str, Any] = config.dict()
    return values


def _settings(config: dict[str, Any], source: str) -> Settings:
    """Settings from the checked values of a config file (every section under [accounts] a dict)."""
    accounts: dict[str, Level] = {}
    enforce: dict[str, bool] = {}
    for name in config["accounts"]:
        _check_account_name(name, source)
        level = config["accounts"][name]["level"]
        if level is not None:
            accounts[name] = Level(level)
        if config["accounts"][name]["enforce"] is not None:
            enforce[name] = bool(config["accounts"][name]["enforce"])
    return Settings(
        level=None if config["level"] is None else Level(config["level"]),
        timeout=config["timeout"],
        unpinned=Unpinned(config["unpinned"]),
        expiry_warning_days=config["expiry_warning_days"],
        account_levels=MappingProxyType(accounts),
        account_enforce=MappingProxyType(enforce),
        tools=MappingProxyType({name: path for name, path in config["tools"].items() if path}),
        nameservers=tuple(config["dns"]["nameservers"]),
        notify=_notify(config["notify"], source),
        source=source,
        account_names=tuple(config["accounts"]),
    )


def _check_names(section: Any, spec: Any, where: tuple[str, ...], source: str) -> None:
    """Every setting and section is in the spec, and a setting where the spec has one."""
    inside = f" in {'/'.join(where)}" if where else ""
    for name in section.scalars:
        if name in spec.sections:
            raise ConfigError(source, None, f"'{name}'{inside} must be a section [{name}], not a setting")
        if name not in spec.scalars:
            hint = _hint(name, spec.scalars)
            if not hint and "__many__" in spec.sections:
                hint = f" (expected a section: {'[' * (len(where) + 1)}{name}{']' * (len(where) + 1)})"
            raise ConfigError(source, None, f"unknown setting '{name}'{inside}{hint}")
    for name in section.sections:
        if name in spec.scalars:
            raise ConfigError(source, None, f"'{name}'{inside} must be a setting ({name} = …), not a section")
        if name in spec.sections:
            _check_names(section[name], spec[name], (*where, name), source)
        elif "__many__" in spec.sections:
            _check_names(section[name], spec["__many__"], (*where, name), source)
        else:
            raise ConfigError(source, None, f"unknown section '{name}'{inside}{_hint(name, spec.sections)}")


def _check_account_name(name: str, source: str) -> None:
    tool, colon, account = name.partition(":")
    tools = [known.value for known in Tool]
    if colon and tool not in tools:
        hint = _hint(tool, tools) or f" (one of {', '.join(tools)})"
        raise ConfigError(source, None, f"accounts/{name}: unknown tool '{tool}'{hint}")
    if not (account if colon else name).strip():
        raise ConfigError(source, None, f"accounts/{name}: no account name (use [[TOOL:NAME]] or [[NAME]])")


def _hint(name: str, known: Sequence[str]) -> str:
    import difflib  # only on the error path (STYLE §10)

    matches = difflib.get_close_matches(name, [k for k in known if k != "__many__"], n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _failures(results: Any, where: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """(path, error) for each check that failed, in the order of SPEC; validate's nested results."""
    if results is True:
        return []
    failures = []
    for name, result in results.items():
        if isinstance(result, dict):
            failures += _failures(result, (*where, name))
        elif result is not True:
            failures.append(((*where, name), result))
    return failures


def _value(config: Any, where: tuple[str, ...]) -> Any:
    for name in where:
        config = config[name]
    return config


def _shown(value: Any) -> str:
    text = ", ".join(value) if isinstance(value, list) else str(value)
    return f"= {text!r}" if text else "is empty"


# The checks SPEC names. Each returns the converted value or raises ValidateError saying what is
# allowed; a list (`a, b`) is never a valid value. Numbers are plain decimals: no nan, inf, 1e3, 1_0.


def _invalid(said: str) -> Exception:
    from configobj.validate import ValidateError

    return ValidateError(said)  # type: ignore[no-any-return]


def _one_of(value: object, *allowed: str) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    raise _invalid(f"must be one of {', '.join(allowed)}")


def _seconds(value: object, max: str) -> float:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", value) and 0 < float(value) <= float(max):
        return float(value)
    raise _invalid(f"must be a number of seconds, more than 0 and at most {max}")


def _whole(value: object, min: str, max: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value) and int(min) <= int(value) <= int(max):
        return int(value)
    raise _invalid(f"must be a whole number from {min} to {max}")


def _nameservers(value: object) -> list[str]:
    from mailpin.net.srv import parse_nameserver

    servers = [str(server).strip() for server in (value if isinstance(value, list) else [value])]
    for server in filter(None, servers):
        try:
            parse_nameserver(server)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
    return list(filter(None, servers))


_CHECKS = {"one_of": _one_of, "seconds": _seconds, "whole": _whole, "nameservers": _nameservers}
