#!/usr/bin/env python3
"""Write mailpin(1), contrib/mailpin.1, from mailpin's argument parser.

    .venv/bin/python contrib/gen_man.py           # rewrite contrib/mailpin.1
    .venv/bin/python contrib/gen_man.py --check   # exit 1 when the checked-in page is stale
    man -l contrib/mailpin.1                      # read it

Every command, option, choice and help text comes from `mailpin.cli.build_parser()`; the sections around
them (DESCRIPTION, EXIT STATUS, ENVIRONMENT, FILES, SEE ALSO) are written here. tests/test_contrib.py fails
while the checked-in page differs from what this script writes now, and renders it with groff -ww.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from argtree import CONTRIB, GENERATED, Command, Option, Positional, check_or_write, tree

from mailpin import __version__  # argtree made it importable

SCRIPT = "gen_man.py"
OUT = CONTRIB / "mailpin.1"

DESCRIPTION = [
    "mailpin remembers how each of your mail accounts does TLS — Implicit TLS or STARTTLS, port, "
    "TLS version, certificate, key or CA — and refuses to let `msmtp`, `mbsync` or `offlineimap` talk "
    "to a server that no longer matches, telling you on your desktop (and, if asked, in your notmuch inbox) "
    "why. RFC 8314 asks a mail client to remember a secure connection's parameters and never to fall back; "
    "mailpin gives these tools that memory, with trust-on-first-use TLS profiles per account.",
    "An ACCOUNT is `TOOL:NAME` (`msmtp:work`, `mbsync:work`, `offlineimap:work`), or a bare NAME for every "
    "tool's account of that name. `mailpin accounts` lists them, read from the tools' own configs.",
    "In front of the tools: `mailpin hooks install` writes the shims `msmtp`, `mbsync` and `offlineimap` "
    "(by default into ~/.local/bin) that run `mailpin run TOOL`; name them in a MUA "
    '(`set sendmail="~/.local/bin/msmtp"` in NeoMutt) or put them first on PATH. '
    "`mailpin hooks install --notmuch` adds a notmuch pre-new hook, `mailpin check --sync --quiet`.",
]

# Which statuses hold an outgoing message: src/mailpin/run/wrapper.py holds it (`_hold`) whenever msmtp
# would have read one and the decision did not pass, whatever the status (69, 75, or 78 for an account
# that cannot be verified); a config that cannot be read raises before any decision, and holds nothing.
# tests/test_docs.py runs the real `mailpin run msmtp` for each case.
EXIT_STATUS = [
    ("0", "verified, pinned, or done; for `mailpin run`, the real tool ran and this is its own status."),
    ("1", "`mailpin demo`: a step did not behave as shown (the step is named on stderr)."),
    ("2", "usage error (an unknown option, or an ACCOUNT that matches nothing)."),
    (
        "69",
        "blocked (EX_UNAVAILABLE): the live connection or the tool's config does not meet the profile, "
        "the server misbehaved (STARTTLS stripped, injection), or a certificate needs confirmation. "
        "The real tool was not run; an outgoing message is held (`mailpin queue`).",
    ),
    (
        "75",
        "could not verify (EX_TEMPFAIL): unreachable, timed out, or no service for now. The real tool was not "
        "run; an outgoing message is held (`mailpin queue`), as on 69.",
    ),
    (
        "78",
        "a broken config (EX_CONFIG): the tool's config, mailpin's settings or the pin store, "
        "named with the file and line. The real tool was not run. An outgoing message is held when the config "
        "was read but an account in it cannot be verified (`cannot verify`: its trust file is unreadable, or its "
        "host comes from `eval`); a config that cannot be read holds nothing, and the mail program keeps the "
        "message, as with the tool alone.",
    ),
    (
        "130",
        "interrupted (Ctrl-C). `mailpin demo` also on SIGTERM and SIGHUP, after stopping its servers and "
        "removing its temporary directory (kept with --keep).",
    ),
]
HELD_NOTE = (
    "When the accounts of one command end differently, the most severe status wins: 69, then 78, then 75. "
    "Whenever a message is held, the line on stderr names its ID (`mailpin queue flush ID` sends it); "
    "where the queue cannot be written it says NOT held, and the status still says not sent, so the mail "
    "program keeps its copy."
)

ENVIRONMENT = [
    ("XDG_CONFIG_HOME", "where `mailpin/config` and `mailpin/pins.conf` are (default ~/.config)."),
    ("XDG_STATE_HOME", "where `mailpin/audit.log` and the held messages are (default ~/.local/state)."),
    (
        "XDG_CACHE_HOME",
        "where the caches are (default ~/.cache): `mailpin/chains/`, the chain memo, and "
        "`mailpin/versions.json`, the installed tools' versions.",
    ),
    ("SSL_CERT_FILE", "the CA certificates `mailpin probe` validates against without --trust-file."),
    (
        "DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR",
        "how a desktop notification reaches the session bus "
        "(from cron: $XDG_RUNTIME_DIR/bus, then /run/user/$UID/bus).",
    ),
    (
        "MAILPIN",
        "the mailpin the shims in the source tree's hooks/ directory run (installed shims name "
        "their mailpin by its absolute path).",
    ),
]

FILES = [
    (
        "$XDG_CONFIG_HOME/mailpin/pins.conf",
        "the profiles; written only by init, accept, forget and a "
        "first-use pin, atomically, mode 0600. Commit it like known_hosts.",
    ),
    (
        "$XDG_CONFIG_HOME/mailpin/config",
        "settings: default pin level, timeout, unpinned = pin-if-trusted | "
        "block, per-account overrides, [notify], [tools].",
    ),
    ("$XDG_STATE_HOME/mailpin/audit.log", "JSON lines: every pin, verification, block, review, accept and forget."),
    ("$XDG_STATE_HOME/mailpin/queue/", "outgoing messages held by a blocked send (`mailpin queue`)."),
    (
        "$XDG_CACHE_HOME/mailpin/chains/",
        "the chain memo: chains already judged valid for a name under the same trust anchors, reused only "
        "while no certificate in them begins or ends its validity; at most 256 entries, mode 0700. A chain "
        "with any finding is never remembered. Safe to delete at any time.",
    ),
    (
        "$XDG_CACHE_HOME/mailpin/versions.json",
        "the version of the installed mbsync (`mbsync --version`), remembered per binary (path, device, "
        "inode, size, mtime) so a sync does not start it twice; an upgrade is asked again. Safe to delete.",
    ),
    (
        "~/.local/bin/msmtp, ~/.local/bin/mbsync, ~/.local/bin/offlineimap",
        "the shims `mailpin hooks install` writes (--bin DIR elsewhere).",
    ),
]

SEE_ALSO = ["msmtp(1)", "mbsync(1)", "offlineimap(1)", "notmuch(1)", "notmuch-hooks(5)", "systemd.timer(5)"]


def _esc(text: str) -> str:
    """Plain text as roff: escapes, hyphen-minus as \\-, anything beyond ASCII as a \\[uXXXX] glyph."""
    out = []
    for char in text.replace("\\", "\\e"):
        if char == "-":
            out.append("\\-")
        elif ord(char) > 127:
            out.append(f"\\[u{ord(char):04X}]")
        else:
            out.append(char)
    return "".join(out)


def _text(text: str) -> str:
    """Help text as roff: `code` in bold, and no line that roff would read as a request."""
    parts = re.split(r"`([^`]+)`", " ".join(text.split()))
    rendered = "".join(f"\\fB{_esc(part)}\\fR" if i % 2 else _esc(part) for i, part in enumerate(parts))
    return "\\&" + rendered if rendered.startswith((".", "'")) else rendered


def _option_synopsis(option: Option) -> str:
    flag = "|".join(f"\\fB{_esc(flag)}\\fR" for flag in option.flags)
    if option.takes_value:
        value = "|".join(option.choices) if option.choices else (option.metavar or "")
        flag += f" \\fI{_esc(value)}\\fR"
    return (flag if option.required else f"[{flag}]") + ("..." if option.repeatable else "")


def _positional_synopsis(positional: Positional) -> str:
    name = "|".join(positional.choices) if positional.choices else positional.metavar
    word = f"\\fI{_esc(name)}\\fR"
    if positional.nargs in ("*", "..."):
        return f"[{word}...]"
    if positional.nargs == "+":
        return f"{word}..."
    return word


def _synopsis(command: Command) -> list[str]:
    words = [_option_synopsis(o) for o in command.options if o.flags != ["-h", "--help"]]
    words += [_positional_synopsis(p) for p in command.positionals]
    if command.subcommands:
        metavar = f"\\fI{_esc(command.subcommand_metavar)}\\fR"
        words.append(metavar if command.subcommand_required else f"[{metavar}]")
    return [".PP", " ".join([f"\\fB{_esc(command.name)}\\fR", *words])]


def _option_item(option: Option) -> list[str]:
    head = ", ".join(f"\\fB{_esc(flag)}\\fR" for flag in option.flags)
    if option.takes_value:
        value = "|".join(option.choices) if option.choices else (option.metavar or "")
        head += f" \\fI{_esc(value)}\\fR"
    return [".TP", head, _text(option.help or "")]


def _command_section(command: Command) -> list[str]:
    lines = [f'.SS "{_esc(command.name)}"', *_synopsis(command), ".PP"]
    lines.append(_text(command.description or command.help))
    for positional in command.positionals:
        if positional.help:
            name = "|".join(positional.choices) if positional.choices else positional.metavar
            lines += [".TP", f"\\fI{_esc(name)}\\fR", _text(positional.help)]
    for option in command.options:
        if option.flags != ["-h", "--help"]:
            lines += _option_item(option)
    if command.subcommands:
        names = ", ".join(f"\\fB{_esc(sub.path[-1])}\\fR" for sub in command.subcommands)
        lines += [".PP", f"Actions: {names}."]
    return lines


def render_man(root: Command) -> str:
    header = GENERATED.format(script=SCRIPT)
    lines = [
        f'.\\" mailpin(1): {header}.',
        f'.TH MAILPIN 1 "" "mailpin {_esc(__version__)}" "User Commands"',
        ".nh",  # no hyphenation: options and paths stay whole
        ".ad l",
        ".SH NAME",
        "mailpin \\- " + _esc(root.description.rstrip(".").replace("Pinned", "pinned")),
        ".SH SYNOPSIS",
    ]
    for command in root.walk():
        if not command.subcommands or command is root:
            lines += _synopsis(command)
    lines += [".SH DESCRIPTION"]
    for paragraph in DESCRIPTION:
        lines += [".PP", _text(paragraph)]
    lines += [".SH OPTIONS"]
    lines += [line for option in root.options for line in _option_item(option)]
    lines += [".SH COMMANDS"]
    for command in root.walk()[1:]:
        lines += _command_section(command)
    lines += [".SH EXIT STATUS"]
    for status, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{status}\\fR", _text(meaning)]
    lines += [".PP", _text(HELD_NOTE)]
    lines += [".SH ENVIRONMENT"]
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{_esc(name)}\\fR", _text(meaning)]
    lines += [".SH FILES"]
    for name, meaning in FILES:
        lines += [".TP", f"\\fI{_esc(name)}\\fR", _text(meaning)]
    lines += [".SH SEE ALSO"]
    for i, ref in enumerate(SEE_ALSO):
        name, section = ref.rstrip(")").split("(")
        lines.append(f".BR {_esc(name)} ({section})" + ("," if i < len(SEE_ALSO) - 1 else ""))
    lines += [
        ".PP",
        "In mailpin's source: the README; docs/guide.md, the user guide; docs/config.md, every setting and "
        "pins.conf; contrib/: systemd units, MUA snippets, completions.",
    ]
    return "\n".join(lines) + "\n"


def render() -> dict[Path, str]:
    return {OUT: render_man(tree())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report a stale page (exit 1)")
    args = parser.parse_args(argv)
    return check_or_write(render(), SCRIPT, args.check)


if __name__ == "__main__":
    sys.exit(main())
