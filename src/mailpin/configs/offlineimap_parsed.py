"""An offlineimap config as offlineimap's `configparser` reads it, and the line each value came from.

Both `offlineimap` (the file and the command line) and `offlineimap_account` (one account's rules)
read through this; it imports neither.
"""

from __future__ import annotations

import configparser
import io
import re
from collections.abc import Iterator
from typing import Any

from mailpin.errors import ConfigError


class LinearConfigParser(configparser.ConfigParser):
    """offlineimap's parser, with configparser's option-line regex written to run in linear time.

    configparser's `(?P<option>.*?)\\s*(?P<vi>=|:)\\s*(?P<value>.*)$` tries every end of the lazy
    option name and rescans the blanks after it: quadratic in a run of blanks inside the name
    (`remotehos` + 11 000 blanks + `t = x`: 1 s; bench/results-fuzz.md). OPTCRE gives the same match
    and groups on every line configparser hands it (one without "\\n"; tests/test_parsers_property.py
    compares the two): the name is all before the first delimiter but the blanks in front of it — a
    run of blanks joins the name only when more name follows. Nothing is refused: offlineimap reads
    such a file (as slowly), so mailpin reads it the same way.
    """

    OPTCRE = re.compile(r"(?P<option>(?:[^=:\s]|\s+(?=[^=:\s]))*)\s*(?P<vi>[=:])\s*(?P<value>.*)$")

    def _handle_error(self, exc: Any, fpname: str, lineno: int, line: str) -> Any:
        # configparser appends every bad line to one message string (`message += …`): quadratic in the
        # number of bad lines (16 000: 0.4 s). It reads on and raises at the end all the same; mailpin
        # reports the first bad line only, so only the first is kept.
        return exc or super()._handle_error(exc, fpname, lineno, line)  # type: ignore[misc]


class LineNumbered:
    """A configparser read line by line, noting the line each section and option came from (`lines`,
    by (section, option); a section's own line under (section, "")). Shared by offlineimap's and
    getmail's readers: give the parser `recording_dict()` as its dict_type, then `read(parser, …)`."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], int] = {}
        self._now = 0
        self._reading = False  # what the parser stores before reading (its defaults) has no line

    def read(self, parser: configparser.RawConfigParser, text: str, source: str) -> None:
        self._reading = True
        try:
            parser.read_file(self._numbered(text), source)
        finally:
            self._reading = False

    def _numbered(self, text: str) -> Iterator[str]:
        # io.StringIO(newline=None) splits lines as the tools' open() of the file does.
        for number, line in enumerate(io.StringIO(text, newline=None), 1):
            self._now = number
            yield line

    def recording_dict(self) -> type[dict[str, Any]]:
        """configparser stores sections and `[value]` lists in its dict_type while reading: note the line."""
        owner = self

        class Recording(dict[str, Any]):
            section = configparser.DEFAULTSECT

            def __setitem__(self, key: str, value: Any) -> None:
                if owner._reading and isinstance(value, Recording):
                    value.section = key
                    owner.lines.setdefault((key, ""), owner._now)
                elif owner._reading and isinstance(value, list):
                    owner.lines.setdefault((self.section, key), owner._now)
                super().__setitem__(key, value)

        return Recording


class Parsed(LineNumbered):
    """A `configparser.ConfigParser` as offlineimap builds it, and where each value was written."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__()
        self.source = source
        self.parser: configparser.ConfigParser = LinearConfigParser(dict_type=self.recording_dict())
        try:
            self.read(self.parser, text, source)
        except configparser.DuplicateSectionError as exc:
            raise ConfigError(source, exc.lineno, f"section [{exc.section}] appears twice") from None
        except configparser.DuplicateOptionError as exc:
            problem = f"option {exc.option!r} appears twice in [{exc.section}]"
            raise ConfigError(source, exc.lineno, problem) from None
        except configparser.MissingSectionHeaderError as exc:
            problem = f"{exc.line.strip()!r} comes before any [section] header"
            raise ConfigError(source, exc.lineno, problem) from None
        except configparser.ParsingError as exc:
            line, text_ = exc.errors[0]
            problem = f"cannot read {text_}: expected `option = value`, a [section] header or a # comment"
            raise ConfigError(source, line, problem) from None
        except configparser.Error as exc:  # any other complaint concerns the file as a whole
            raise ConfigError(source, None, exc.message) from None

    def line(self, section: str, option: str = "") -> int | None:
        found = self.lines.get((section, option))
        return found if found is not None or not option else self.lines.get((configparser.DEFAULTSECT, option))

    def error(self, section: str, option: str, problem: str) -> ConfigError:
        line = self.line(section, option) if self.parser.has_option(section, option) else self.line(section)
        return ConfigError(self.source, line, problem)

    def has(self, section: str, option: str) -> bool:
        return self.parser.has_option(section, option)

    def get(self, section: str, option: str, default: str | None = None) -> str | None:
        """CustomConfig.getdefault: the interpolated value, or `default` when the option is absent."""
        if not self.parser.has_option(section, option):
            return default
        try:
            return self.parser.get(section, option)
        except configparser.InterpolationError as exc:
            raise self.error(section, option, f"[{section}] {option}: {_interpolation(exc)}") from None

    def boolean(self, section: str, option: str, default: bool) -> bool:
        value = self.get(section, option)
        if value is None:
            return default
        if value.lower() not in self.parser.BOOLEAN_STATES:  # exactly getboolean's rule (yes/no/on/off/1/0/…)
            problem = f"[{section}] {option} = {value!r} is not a boolean (use yes or no)"
            raise self.error(section, option, problem)
        return self.parser.BOOLEAN_STATES[value.lower()]

    def integer(self, section: str, option: str) -> int | None:
        value = self.get(section, option)
        try:
            return None if value is None else int(value)  # configparser getint
        except ValueError:
            raise self.error(section, option, f"[{section}] {option} = {value!r} is not a number") from None


def _interpolation(exc: configparser.InterpolationError) -> str:
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return f"%({exc.reference})s refers to no option of this section or [DEFAULT]"
    if isinstance(exc, configparser.InterpolationDepthError):
        return "%(…)s references nest too deep (a loop?)"
    return f"bad % syntax (write %% for a literal %): {exc.message.splitlines()[0]}"
