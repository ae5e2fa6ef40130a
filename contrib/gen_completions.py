#!/usr/bin/env python3
"""Write mailpin's shell completions (bash, zsh, fish) from its argument parser.

    .venv/bin/python contrib/gen_completions.py           # rewrite contrib/completions/
    .venv/bin/python contrib/gen_completions.py --check   # exit 1 when a checked-in file is stale

Commands, subcommands, options, choices (--level, --protocol, --mode, run's TOOL) come from
`mailpin.cli.build_parser()`; ACCOUNT arguments complete to the first column of `mailpin accounts`
(TOOL:NAME) and to the bare NAMEs, each once (msmtp:work and mbsync:work give one `work`); an ID
(`mailpin queue flush ID`, `queue drop ID`) completes to the held messages' IDs, read from
`mailpin queue list --json` (its "id" members: the JSON is the interface scripts may rely on, the
text columns are for people). tests/test_contrib.py fails while a checked-in file differs from what
this script writes now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from argtree import CONTRIB, GENERATED, Command, Option, Positional, check_or_write, tree

SCRIPT = "gen_completions.py"
OUT = CONTRIB / "completions"

# A held message's ID, as mailpin's queue names them (mailpin/state/queue.py `_ID`; tests/test_contrib.py
# checks they agree). Only an "id" member of this shape is taken from the JSON: within a JSON string
# every quote is escaped, so a subject or an argv word cannot forge a line `"id": "…"`.
HELD_ID = "[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8,64}"
HELD_LINE = f'^ *"id": "({HELD_ID})",?$'  # `mailpin queue list --json`: one member per line (indent=2)
ABOUT = (
    "ACCOUNT arguments complete to the first column of `mailpin accounts` (TOOL:NAME) and to the bare NAMEs;",
    "an ID to the messages mailpin holds (`mailpin queue list --json`).",
)


def _sq(text: str) -> str:
    """A POSIX-shell (bash, zsh) single-quoted word."""
    return "'" + text.replace("'", "'\\''") + "'"


def _path_key(command: Command) -> str:
    return " ".join(command.path)


def _first_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------------- bash


def _bash_compgen(kind: str, choices: list[str] | None) -> str | None:
    if kind == "choice":
        return "_mailpin_reply -W " + _sq(" ".join(choices or []))
    if kind == "file":
        return "_mailpin_reply -f"
    if kind == "dir":
        return "_mailpin_reply -d"
    if kind == "account":
        return '_mailpin_reply -W "$(__mailpin_account_names)"'
    if kind == "held":
        return '_mailpin_reply -W "$(__mailpin_held_ids)"'
    return None


def _bash_positional(command: Command) -> str | None:
    """A case branch body completing the N-th (from 0, in $2) positional argument of this command."""
    branches: list[str] = []
    for index, positional in enumerate(command.positionals):
        action = (
            "_mailpin_reply -f" if positional.nargs == "..." else _bash_compgen(positional.kind, positional.choices)
        )
        if action is None:
            continue
        test = f"$2 == {index}" if positional.nargs is None else f"$2 >= {index}"
        branches.append(f"(({test})) && {{ {action}; return; }}")
    return "; ".join(branches) if branches else None


BACKREF = "\\1"  # sed's first group


def render_bash(root: Command) -> str:
    commands = root.walk()
    spec = []
    values = []
    positionals = []
    for command in commands:
        key = _sq(_path_key(command))
        subs = " ".join(sub.path[-1] for sub in command.subcommands)
        opts = " ".join(flag for option in command.options for flag in option.flags)
        valued = " ".join(command.valued_flags())
        rest = next((str(i) for i, p in enumerate(command.positionals) if p.nargs == "..."), "")
        spec.append(f"    {key}) subs={_sq(subs)} opts={_sq(opts)} valued={_sq(valued)} rest={_sq(rest)} ;;")
        for option in command.options:
            action = _bash_compgen(option.kind, option.choices) if option.takes_value else None
            if action is not None:
                for flag in option.flags:
                    values.append(f"    {_sq(' '.join((*command.path, flag)))}) {action} ;;")
        body = _bash_positional(command)
        if body is not None:
            positionals.append(f"    {key}) {body} ;;")
    header = GENERATED.format(script=SCRIPT)
    return f"""\
# bash completion for mailpin: {header}.
# Install: copy to ~/.local/share/bash-completion/completions/mailpin (bash-completion loads it the first
# time you complete mailpin), or `source` it from ~/.bashrc. Needs bash 4.
# {ABOUT[0]}
# {ABOUT[1]}

# Each name once: msmtp:work and mbsync:work give one bare `work`.
__mailpin_account_names() {{
    mailpin accounts 2>/dev/null |
        awk '$1 ~ /^[a-z]+:./ {{ if (!seen[$1]++) print $1; sub(/^[a-z]+:/, "", $1); if (!seen[$1]++) print $1 }}'
}}

__mailpin_held_ids() {{
    mailpin queue list --json 2>/dev/null | sed -nE {_sq(f"s/{HELD_LINE}/{BACKREF}/p")}
}}

# _mailpin_spec PATH: subcommands, options, options taking a value, and the index of the positional argument
# from which the rest of the line belongs to another tool (mailpin run TOOL ARGS...).
_mailpin_spec() {{
    case $1 in
{chr(10).join(spec)}
    *) subs='' opts='' valued='' rest='' ;;
    esac
}}

# _mailpin_values PATH OPTION: complete a value of OPTION.
_mailpin_values() {{
    case "${{1:+$1 }}$2" in
{chr(10).join(values)}
    esac
}}

# _mailpin_positional PATH N: complete the N-th positional argument (from 0).
_mailpin_positional() {{
    case $1 in
{chr(10).join(positionals)}
    esac
}}

# _mailpin_reply COMPGEN-ARGS...: COMPREPLY from compgen, cut the way readline replaces the word (only what
# follows its last COMP_WORDBREAKS character, e.g. after the colon of TOOL:NAME).
_mailpin_reply() {{
    local -a found
    local IFS=$' \\t\\n'
    case $1 in -f | -d) compopt -o filenames 2>/dev/null ;; esac
    mapfile -t found < <(compgen "$@" -- "$_mailpin_cur")
    local breaks=${{COMP_WORDBREAKS-$' \\t\\n"\\'><=;|&(:'}}
    local word=$_mailpin_pre$_mailpin_cur
    local head=${{word%"${{word##*[$breaks]}}"}}
    local match
    COMPREPLY=()
    for match in "${{found[@]}}"; do
        match=$_mailpin_pre$match
        COMPREPLY+=("${{match#"$head"}}")
    done
}}

_mailpin() {{
    local line=${{COMP_LINE:0:COMP_POINT}}
    local -a words
    read -r -a words <<<"$line"
    local _mailpin_cur="" _mailpin_pre=""
    if [[ $line != *[[:blank:]] ]] && ((${{#words[@]}} > 1)); then
        _mailpin_cur=${{words[${{#words[@]}} - 1]}}
        unset 'words[${{#words[@]}} - 1]'
    fi
    local path="" subs="" opts="" valued="" rest="" npos=0 expect="" word i
    _mailpin_spec ""
    for ((i = 1; i < ${{#words[@]}}; i++)); do
        word=${{words[i]}}
        if [[ -n $rest ]] && ((npos >= rest)); then
            break
        elif [[ -n $expect ]]; then
            expect=""
        elif [[ $word == -* ]]; then
            [[ " $valued " == *" $word "* ]] && expect=$word
        elif ((npos == 0)) && [[ " $subs " == *" $word "* ]]; then
            path=${{path:+$path }}$word
            _mailpin_spec "$path"
        else
            npos=$((npos + 1))
        fi
    done
    COMPREPLY=()
    if [[ -n $rest ]] && ((npos >= rest)); then
        _mailpin_reply -f
    elif [[ -n $expect ]]; then
        _mailpin_values "$path" "$expect"
    elif [[ $_mailpin_cur == --*=* ]]; then
        _mailpin_pre=${{_mailpin_cur%%=*}}=
        _mailpin_cur=${{_mailpin_cur#*=}}
        _mailpin_values "$path" "${{_mailpin_pre%=}}"
    elif [[ $_mailpin_cur == -* ]]; then
        _mailpin_reply -W "$opts"
    elif ((npos == 0)) && [[ -n $subs ]]; then
        _mailpin_reply -W "$subs"
    else
        _mailpin_positional "$path" "$npos"
    fi
}}
complete -F _mailpin mailpin
"""


# ---------------------------------------------------------------------------------------------------- zsh


def _zsh_bracket(text: str) -> str:
    """Text inside an _arguments [description]."""
    return _first_line(text).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_field(text: str) -> str:
    """A message between colons in an _arguments spec."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _zsh_action(kind: str, choices: list[str] | None) -> str:
    if kind == "choice":
        return "(" + " ".join(choices or []) + ")"
    if kind == "file":
        return "_files"
    if kind == "dir":
        return "_files -/"
    if kind == "account":
        return "__mailpin_account_names"
    if kind == "held":
        return "__mailpin_held_ids"
    return " "


def _zsh_function(command: Command) -> str:
    return "_mailpin" + "".join("_" + part.replace("-", "_") for part in command.path)


def _zsh_option(option: Option) -> list[str]:
    description = f"[{_zsh_bracket(option.help)}]" if option.help else ""
    value = ""
    if option.takes_value:
        value = f":{_zsh_field(option.metavar or '')}:{_zsh_action(option.kind, option.choices)}"
    if option.flags == ["-h", "--help"] or option.flags == ["--version"]:
        exclusion = "(- *)"
    elif len(option.flags) > 1 and not option.repeatable:
        exclusion = "(" + " ".join(option.flags) + ")"
    else:
        exclusion = ""
    star = "*" if option.repeatable else ""
    specs = []
    for flag in option.flags:
        name = f"{flag}=" if option.takes_value and flag.startswith("--") else flag
        specs.append(_sq(f"{exclusion}{star}{name}{description}{value}"))
    return specs


def _zsh_positional(index: int, positional: Positional) -> str:
    message = _zsh_field(positional.metavar)
    if positional.nargs == "...":
        return _sq(f"*::{message}:_normal")
    action = _zsh_action(positional.kind, positional.choices)
    position = str(index + 1) if positional.nargs is None else "*"
    return _sq(f"{position}:{message}:{action}")


def _zsh_body(command: Command) -> list[str]:
    specs = [spec for option in command.options for spec in _zsh_option(option)]
    if not command.subcommands:
        specs += [_zsh_positional(i, p) for i, p in enumerate(command.positionals)]
        lines = [f"{_zsh_function(command)}() {{", "  _arguments -s -S \\"]
        lines += [f"    {spec} \\" for spec in specs]
        lines[-1] = lines[-1].removesuffix(" \\")
        return [*lines, "}"]
    function = _zsh_function(command)
    specs += [_sq(f"1: :{function}_commands"), _sq("*:: :->command")]
    lines = [
        f"{function}() {{",
        "  local curcontext=$curcontext state state_descr line ret=1",
        "  typeset -A opt_args",
        "  _arguments -C -s -S \\",
    ]
    lines += [f"    {spec} \\" for spec in specs]
    lines[-1] = lines[-1].removesuffix(" \\") + " && ret=0"
    lines += [
        "  case $state in",
        "    command)",
        f"      curcontext=${{curcontext%:*:*}}:{function.lstrip('_').replace('_', '-')}-$words[1]:",
        "      case $words[1] in",
    ]
    lines += [f"        {sub.path[-1]}) {_zsh_function(sub)} && ret=0 ;;" for sub in command.subcommands]
    lines += ["      esac", "      ;;", "  esac", "  return ret", "}", ""]
    entries = " ".join(_sq(f"{sub.path[-1]}:{_first_line(sub.help)}") for sub in command.subcommands)
    label = command.subcommand_metavar.lower()
    lines += [
        f"{function}_commands() {{",
        f"  local -a commands=({entries})",
        f"  _describe -t commands {_sq(f'{command.name} {label}')} commands",
        "}",
    ]
    return lines


def render_zsh(root: Command) -> str:
    header = GENERATED.format(script=SCRIPT)
    out = [
        "#compdef mailpin",
        f"# zsh completion for mailpin: {header}.",
        "# Install: copy to a directory on $fpath, e.g. ~/.zfunc with `fpath=(~/.zfunc $fpath)` in ~/.zshrc before",
        "# `autoload -Uz compinit && compinit`; then `rm -f ~/.zcompdump; exec zsh`.",
        *(f"# {line}" for line in ABOUT),
        "",
        "__mailpin_account_names() {",
        "  local -aU keys  # -U: each name once (msmtp:work and mbsync:work give one bare work)",
        "  local line key",
        '  for line in ${(f)"$(_call_program accounts mailpin accounts 2>/dev/null)"}; do',
        "    key=${line%% *}",
        "    [[ $key == [a-z]*:?* ]] && keys+=($key ${key#*:})",
        "  done",
        "  _wanted accounts expl account compadd -a - keys",
        "}",
        "",
        "__mailpin_held_ids() {",
        "  local -a ids match mbegin mend",
        "  local line",
        '  for line in ${(f)"$(_call_program held-ids mailpin queue list --json 2>/dev/null)"}; do',
        f"    [[ $line =~ {_sq(HELD_LINE)} ]] && ids+=($match[1])",
        "  done",
        "  _wanted held-ids expl 'held message' compadd -a - ids",
        "}",
        "",
    ]
    for command in root.walk():
        out += [*_zsh_body(command), ""]
    out += ['_mailpin "$@"']
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------- fish


def _fq(text: str) -> str:
    """A fish single-quoted word."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_values(kind: str, choices: list[str] | None) -> str:
    if kind == "choice":
        return "-x -a " + _fq(" ".join(choices or []))
    if kind == "file":
        return "-r -F"
    if kind == "dir":
        return "-x -a '(__fish_complete_directories)'"
    if kind == "account":
        return "-x -a '(__mailpin_account_names)'"
    if kind == "held":
        return "-x -a '(__mailpin_held_ids)'"
    return "-x"


def render_fish(root: Command) -> str:
    commands = root.walk()
    header = GENERATED.format(script=SCRIPT)
    subs_cases = []
    valued_cases = []
    for command in commands:
        key = _fq(_path_key(command))
        if command.subcommands:
            names = " ".join(sub.path[-1] for sub in command.subcommands)
            subs_cases += [f"        case {key}", f"            printf '%s\\n' {names}"]
        if command.valued_flags():
            valued_cases += [f"        case {key}", "            printf '%s\\n' " + " ".join(command.valued_flags())]
    lines = [
        f"# fish completion for mailpin: {header}.",
        "# Install: copy to ~/.config/fish/completions/mailpin.fish",
        *(f"# {line}" for line in ABOUT),
        "",
        "function __mailpin_account_names --description 'accounts mailpin finds in the tools configs, each once'",
        "    set -l seen",
        "    for key in (mailpin accounts 2>/dev/null | string match -r '^[a-z]+:\\S+')",
        "        for name in $key (string replace -r '^[a-z]+:' '' -- $key)",
        "            if not contains -- $name $seen",
        "                set -a seen $name",
        "                echo $name",
        "            end",
        "        end",
        "    end",
        "end",
        "",
        "function __mailpin_held_ids --description 'IDs of the messages mailpin holds'",
        f"    mailpin queue list --json 2>/dev/null | string replace -rf {_fq(HELD_LINE)} '$1'",
        "end",
        "",
        "function __mailpin_subcommands --argument-names path",
        "    switch $path",
        *subs_cases,
        "    end",
        "end",
        "",
        "function __mailpin_valued --argument-names path --description 'options of this command that take a value'",
        "    switch $path",
        *valued_cases,
        "    end",
        "end",
        "",
        "# __mailpin_at PATH MIN [MAX]: the command line is at command PATH, with MIN to MAX positional arguments",
        "# already given after it.",
        "function __mailpin_at --argument-names want min max",
        "    set -l path ''",
        "    set -l npos 0",
        "    set -l expect 0",
        "    for word in (commandline -opc)[2..-1]",
        "        if test $expect = 1",
        "            set expect 0",
        "        else if string match -q -- '-*' $word",
        "            if contains -- $word (__mailpin_valued $path)",
        "                set expect 1",
        "            end",
        "        else if test $npos = 0; and contains -- $word (__mailpin_subcommands $path)",
        '            set path (string trim -- "$path $word")',
        "        else",
        "            set npos (math $npos + 1)",
        "        end",
        "    end",
        '    test "$path" = "$want"; and test $npos -ge $min; and begin; test -z "$max"; or test $npos -le $max; end',
        "end",
        "",
        "complete -c mailpin -f",
    ]
    for command in commands:
        key = _path_key(command)
        lines += ["", f"# {command.name}"]
        options_max = ""
        rest = next((i for i, p in enumerate(command.positionals) if p.nargs == "..."), None)
        if rest is not None:
            options_max = f" {rest - 1}"  # after `run TOOL` every word is the tool's
        for sub in command.subcommands:
            condition = _fq(f"__mailpin_at {_fq(key)} 0 0")
            lines.append(f"complete -c mailpin -n {condition} -a {sub.path[-1]} -d {_fq(_first_line(sub.help))}")
        for option in command.options:
            condition = _fq(f"__mailpin_at {_fq(key)} 0{options_max}")
            names = " ".join(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}" for flag in option.flags)
            values = f" {_fish_values(option.kind, option.choices)}" if option.takes_value else ""
            lines.append(f"complete -c mailpin -n {condition} {names}{values} -d {_fq(_first_line(option.help))}")
        if command.subcommands:
            continue
        for index, positional in enumerate(command.positionals):
            bounds = f"{index} {index}" if positional.nargs is None else f"{index}"
            condition = _fq(f"__mailpin_at {_fq(key)} {bounds}")
            if positional.nargs == "...":
                lines.append(f"complete -c mailpin -n {condition} -F")
            elif positional.kind != "text":
                values = _fish_values(positional.kind, positional.choices).removeprefix("-x ").removeprefix("-r ")
                lines.append(f"complete -c mailpin -n {condition} {values} -d {_fq(positional.metavar)}")
    return "\n".join(lines) + "\n"


def render() -> dict[Path, str]:
    root = tree()
    return {
        OUT / "mailpin.bash": render_bash(root),
        OUT / "_mailpin": render_zsh(root),
        OUT / "mailpin.fish": render_fish(root),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    return check_or_write(render(), SCRIPT, args.check)


if __name__ == "__main__":
    sys.exit(main())
