"""optparse as a Python tool's own `main()` runs it (offlineimap, getmail), made to report instead of
exiting: where the tool would print its usage and exit 2 this raises `ArgvError` (its message), where
it would print `--help` or `--version` and exit 0, `Stopped`."""

from __future__ import annotations

import optparse
from typing import Any


class Stopped(Exception):
    """--help / --version: the tool prints and exits before it reads any config."""


class ArgvError(Exception):
    """optparse's complaint: the tool refuses the command line."""


class OptionParser(optparse.OptionParser):
    def error(self, msg: str) -> Any:  # optparse would print usage and exit 2
        raise ArgvError(msg)

    def exit(self, status: int = 0, msg: str | None = None) -> Any:
        raise Stopped

    def print_help(self, file: Any = None) -> None:
        pass

    def print_version(self, file: Any = None) -> None:
        pass
