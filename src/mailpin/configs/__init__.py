"""Readers of third-party configs: msmtp, mbsync, offlineimap.

Each module is pure at its core (text in, accounts out, `ConfigError(source, line, problem)` on
anything it cannot read) and exposes the same small surface:

    parse(text, source, home) -> <Tool>Config         # pure; .accounts: list[Account] in file order
    config_paths(argv, env) -> list[Path]              # the file(s) the tool would read, as it picks them
    load(argv, env) -> <Tool>Config                    # the only I/O: locate, read, parse
    select(config, argv, message) -> list[Account]     # the accounts this invocation of the tool uses
    needs_message(argv) -> bool                        # does the message on stdin decide (msmtp From:)?

`load` and `select` read argv each time; a caller that has the command line already read
(`discover.command_line`: `mailpin run`, once per invocation) passes that to `load_parsed(command,
env)` and `select_parsed(config, command, message)` instead.
"""
