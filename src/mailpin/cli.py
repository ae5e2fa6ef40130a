"""Command line: parse, dispatch, and the one error boundary that prints and picks the exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from mailpin import __version__
from mailpin.errors import ConfigError, ExitStatus, MailpinError, UsageError

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    import argparse

    from mailpin.commands.init import Proposal
    from mailpin.env import Env


def _positive(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mailpin",
        description="Pinned TLS profiles for msmtp, mbsync and offlineimap (RFC 8314).",
    )
    parser.add_argument("--version", action="version", version=f"mailpin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    probe = sub.add_parser(
        "probe",
        help="observe one endpoint (no pin)",
        description=(
            "Connect as a careful client would and report the TLS session and certificate. "
            "Exit 0: dialogue and handshake completed (see chain_valid / hostname_valid); "
            "69: the server misbehaved (attack or downgrade); 75: unreachable or timed out."
        ),
    )
    probe.add_argument("target", metavar="HOST[:PORT]")
    probe.add_argument(
        "--protocol",
        required=True,
        choices=["imap", "smtp", "pop3"],
        help=(
            "the protocol to speak: imap, smtp or pop3 (default port: 993/143, 465/587, 995/110 for implicit/starttls)"
        ),
    )
    probe.add_argument("--mode", required=True, choices=["implicit", "starttls"], help=(
        "implicit: TLS from the first byte (RFC 8314); starttls: the plaintext greeting, then STARTTLS (POP3: "
        "STLS), which must be offered and accepted: never a fallback to plaintext"))  # fmt: skip
    probe.add_argument(
        "--trust-file",
        metavar="PEM",
        help="CA certificates to validate against (default: $SSL_CERT_FILE, else the system store)",
    )
    probe.add_argument("--servername", metavar="NAME", help="name for SNI and the host name check (default: HOST)")
    probe.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="overall deadline for the dialogue and handshake (default: 10)",
    )
    probe.add_argument("--json", action="store_true", help="machine-readable output")

    accounts = sub.add_parser("accounts", help="accounts found in the msmtp / mbsync / offlineimap configs",
                              description=(
        "List every account the tools' configs define, as the tools resolve them; with --for, the "
        "accounts that this invocation of the tool would use (give the tool's arguments after --). "
        "Exit 78 names the broken config file and line."))  # fmt: skip
    accounts.add_argument("--for", dest="tool", choices=_TOOLS,
                          help="resolve one invocation of this tool")  # fmt: skip
    accounts.add_argument("args", nargs="*", metavar="ARGS", help="the tool's arguments (after --)")
    accounts.add_argument("--json", action="store_true", help="machine-readable output")
    _pin_commands(sub)
    _doctor_parser(sub)
    _tunnel_parser(sub)
    _demo_parser(sub)
    _hooks_parser(sub)
    _queue_parser(sub)
    run = sub.add_parser("run", help="verify, then run the real tool with the same arguments",
                         description=(
        "Work out the accounts this invocation of the tool uses, verify each against its profile, then "
        "run the real tool with the same arguments, environment and stdin. Blocked: the tool is not run, "
        "an outgoing message is held (mailpin queue), exit 69 (75: could not verify)."))  # fmt: skip
    run.add_argument("tool", choices=_TOOLS)
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the tool's own arguments")
    return parser


_LEVELS = ["leaf", "key", "ca", "pkix"]
_TOOLS = ("msmtp", "mbsync", "offlineimap", "mpop", "fetchmail", "getmail")  # `mailpin run TOOL`
_SETUP_TOOLS = ("msmtp", "mbsync", "offlineimap")  # what `mailpin setup` writes stanzas for
_EXITS = (
    "Exit 0: verified; 69: blocked (does not match the profile); 78: broken config; 75: could not verify. "
    "When accounts end differently, the most severe wins: 69, then 78, then 75."
)


def _pin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def accounts(parser: argparse.ArgumentParser, nargs: str = "*") -> None:
        about = "TOOL:NAME, or NAME for every tool's account of that name"
        parser.add_argument("accounts", nargs=nargs, metavar="ACCOUNT", help=about)

    init = sub.add_parser("init", help="probe every account and pin it on first use",
                          description=(
        "Discover the accounts, probe each the way its tool connects, show what would be pinned and "
        "pin it: on a TTY after asking, with --yes without asking when the chain validates. A "
        "certificate that does not validate is pinned only when confirmed for that account "
        "(--accept-untrusted ACCOUNT, or on the TTY), and then at level key."))  # fmt: skip
    accounts(init)
    init.add_argument("--yes", "-y", action="store_true", help="pin accounts whose chain validates without asking")
    init.add_argument("--accept-untrusted", action="append", default=[], metavar="ACCOUNT",
                      help="also pin this account although its certificate does not validate (repeatable)")  # fmt: skip
    init.add_argument("--level", choices=_LEVELS, help="pin level (default: ca when the chain validates, else key)")
    init.add_argument("--json", action="store_true", help="machine-readable output")

    check = sub.add_parser("check", help="verify live endpoints against their profiles (runs nothing)",
                           description="Verify every account (or the named ones) live. " + _EXITS)  # fmt: skip
    accounts(check)
    check.add_argument("--sync", action="store_true", help="only the accounts a sync uses (mbsync, offlineimap)")
    check.add_argument("--quiet", "-q", action="store_true", help="print only accounts that are not verified")
    check.add_argument("--json", action="store_true", help="machine-readable output")

    about = "The profile beside the live connection, and the change classified. "
    review = sub.add_parser("review", help="pinned vs live, and what changed", description=about + _EXITS)
    accounts(review, "+")
    review.add_argument("--json", action="store_true", help="machine-readable output")

    accept = sub.add_parser("accept", help="re-pin from the live connection",
                            description=(
        "Probe the endpoint the tool's config names now and pin what it serves, replacing the profile "
        "(with --add, keeping the pinned certificates and keys too: for servers that serve several)."))  # fmt: skip
    accounts(accept, "+")
    accept.add_argument("--level", choices=_LEVELS, help="pin level (default: the profile's, else as init)")
    accept.add_argument("--add", action="store_true", help="keep the pinned certificates and keys as well")
    accept.add_argument("--accept-untrusted", action="store_true",
                        help="confirm pinning a certificate that does not validate (pinned at level key)")  # fmt: skip
    accept.add_argument("--json", action="store_true", help="machine-readable output")

    forget = sub.add_parser("forget", help="remove profiles", description="Remove the profiles of the named accounts.")
    accounts(forget, "+")

    upgrade = sub.add_parser("upgrade", help="move STARTTLS accounts to Implicit TLS (RFC 8314)",
                             description=(
        "For each account on STARTTLS or no TLS (or the named ones): look up the SRV records and try the "
        "well-known port for Implicit TLS on the configured host, with a certificate that validates for "
        "the name the account checks; show the change to the tool's config as a diff and, when confirmed, "
        "write it (a dated backup beside it) and pin the account in Implicit TLS mode. An account that "
        "cannot move stays, with the reason. Exit 0; 78: a config mailpin must not write (the diff is "
        "shown) or a broken config; 75: the file changed meanwhile (nothing written)."))  # fmt: skip
    accounts(upgrade)
    upgrade.add_argument("--yes", "-y", action="store_true", help="write without asking")
    upgrade.add_argument("--host", metavar="HOST",
                         help="try this host (an SRV target you confirm) instead of the configured one")  # fmt: skip
    upgrade.add_argument("--json", action="store_true", help="machine-readable output")

    setup = sub.add_parser("setup", help="a new account done right: find Implicit TLS, pin, print the config",
                           description=(
        "Find the submission (msmtp) or IMAP (mbsync, offlineimap) endpoint of ADDRESS: its SRV record, "
        "then the well-known names, Implicit TLS first (STARTTLS only when none works); take only one whose "
        "certificate validates; pin it and print the tool's config stanza (--write: add it to the tool's "
        "config after the diff and a yes). Exit 0; 69: nothing found that validates; 78: not written."))  # fmt: skip
    setup.add_argument("address", metavar="ADDRESS", help="the mail address, NAME@DOMAIN")
    setup.add_argument("--tool", choices=_SETUP_TOOLS, default="msmtp", help="the tool to set up (default: msmtp)")
    setup.add_argument("--host", metavar="HOST", help="a host you confirm (an SRV target outside the domain)")
    setup.add_argument("--trust-file", metavar="PEM", help="CA certificates to trust instead of the system's")
    setup.add_argument("--user", metavar="USER", help="the login (default: ADDRESS)")
    about = "a command that prints the password (passwordeval, PassCmd); never the password itself"
    setup.add_argument("--password-command", metavar="CMD", help=about)
    setup.add_argument("--name", metavar="NAME", help="the account's name in the config (default: the domain)")
    setup.add_argument("--write", action="store_true", help="add the stanza to the tool's config (asks first)")
    setup.add_argument("--yes", "-y", action="store_true", help="with --write: without asking")
    setup.add_argument("--json", action="store_true", help="machine-readable output")


def _probe(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output
    from mailpin.commands import probe

    result = probe.run(
        env,
        args.target,
        args.protocol,
        args.mode,
        trust_file=args.trust_file,
        servername=args.servername,
        timeout=args.timeout,
    )
    if args.json:
        shown: object = output.probe_json(result)
    else:
        shown = output.probe_text(result) if result.observation is not None else ""
    _show(env, args.json, shown, [result.error] if result.error is not None else [])
    return int(result.exit_status)


def _accounts(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output
    from mailpin.commands import accounts

    if args.args and args.tool is None:
        raise UsageError("tool arguments need --for TOOL (e.g. mailpin accounts --for msmtp -- -a work)")
    result = accounts.run(env, args.tool, args.args)
    shown = output.accounts_json(result) if args.json else output.accounts_text(result)
    warnings = _settings_warnings(env, [a.key for a in result.accounts]) if args.tool is None else []
    _show(env, args.json, shown, [*result.errors, *warnings])
    return int(result.exit_status)


def _asker(env: Env, verb: str, shown: set[str]) -> Callable[[Proposal], bool] | None:
    """On a TTY, a function that shows one proposal and asks; elsewhere None (nobody to ask)."""
    if not env.stdin.isatty():
        return None
    from mailpin.net.replies import printable_lines
    from mailpin.output_pins import proposal_text

    def confirm(proposal: Proposal) -> bool:
        key = proposal.target.key
        print(printable_lines(proposal_text(proposal)), file=env.stdout)
        shown.add(key)
        if proposal.trusted:
            question = f"{verb} {key} at level {proposal.level.value if proposal.level else '-'}? [y/N] "
        else:
            reasons = ", ".join(proposal.observation.chain.reasons) if proposal.observation else ""
            question = (
                f"The certificate of {key} does NOT validate ({reasons}). Pin exactly this key anyway — "
                "only if you know it is your server's? [y/N] "
            )
        print(question, end="", file=env.stdout, flush=True)
        return env.stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def _settings_warnings(env: Env, keys: Sequence[str]) -> list[str]:
    """[[NAME]] sections of mailpin's settings that name no account: told, never an error."""
    from mailpin.state import settings

    try:
        return [f"warning: {said}" for said in settings.load(env).unknown_accounts(keys)]
    except ConfigError:
        return []  # a broken settings file is reported by the command itself


def _report(env: Env, problems: Sequence[object]) -> None:
    from mailpin.net.replies import printable_lines

    for problem in problems:
        print(printable_lines(f"mailpin: {problem}"), file=env.stderr)


def _show(env: Env, as_json: bool, shown: object, problems: Sequence[object] = ()) -> None:
    """Print one command's result — JSON for scripts, text for people — then its problems on stderr."""
    if as_json:
        from mailpin import output

        print(output.dumps(shown), file=env.stdout)
    elif shown:
        from mailpin.net.replies import printable_lines

        # Text for a terminal: whatever a config file or a server put into it cannot drive it.
        print(printable_lines(str(shown)), file=env.stdout)
    _report(env, problems)


def _init(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output_pins
    from mailpin.commands import init
    from mailpin.model import Level

    shown: set[str] = set()
    confirm = None if args.json else _asker(env, "Pin", shown)
    level = Level(args.level) if args.level else None
    result = init.run(
        env, args.accounts, yes=args.yes, accept_untrusted=args.accept_untrusted, level=level, confirm=confirm
    )
    shown_result = output_pins.init_json(result) if args.json else output_pins.init_text(result, shown)
    _show(env, args.json, shown_result, [*result.errors, *result.audit_problems])
    return int(result.exit_status)


def _check(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output_pins
    from mailpin.commands import check

    result = check.run(env, args.accounts, sync_only=args.sync)
    shown = output_pins.check_json(result) if args.json else output_pins.check_text(result, quiet=args.quiet)
    everything = not args.accounts and not args.sync and not result.errors  # every account known
    warnings = _settings_warnings(env, [o.target.key for o in result.outcomes]) if everything else []
    _show(env, args.json, shown, [*result.errors, *result.audit_problems, *warnings])
    return int(result.exit_status)


def _review(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output_pins
    from mailpin.commands import review

    result = review.run(env, args.accounts)
    shown = output_pins.review_json(result) if args.json else output_pins.review_text(result)
    _show(env, args.json, shown, result.audit_problems)
    return int(result.exit_status)


def _accept(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output_pins
    from mailpin.commands import accept
    from mailpin.model import Level

    shown: set[str] = set()
    confirm = None if args.json else _asker(env, "Accept", shown)
    level = Level(args.level) if args.level else None
    result = accept.run(env, args.accounts, level=level, add=args.add, untrusted=args.accept_untrusted, confirm=confirm)
    shown_result = output_pins.accept_json(result) if args.json else output_pins.accept_text(result, shown)
    _show(env, args.json, shown_result, result.audit_problems)
    return int(result.exit_status)


def _forget(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output_pins
    from mailpin.commands import forget

    result = forget.run(env, args.accounts)
    _show(env, False, output_pins.forget_text(result), result.audit_problems)
    return 0


def _queue_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    import argparse

    queue = sub.add_parser("queue", help="outgoing messages held when a send was blocked (list, flush, drop)",
                           description=(
        "Messages a blocked `mailpin run msmtp` kept. `flush` sends them again through the same "
        "verification, oldest first, each once; exit 0 when all went, else 69 (still blocked), 75 "
        "(could not verify) or the tool's own status."))  # fmt: skip
    json_help = "machine-readable output"
    queue.add_argument("--json", action="store_true", help=json_help)
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION")  # none: list
    listing = actions.add_parser("list", help="the held messages, oldest first (the default)")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    flush = actions.add_parser("flush", help="send held messages (all, or the IDs given)")
    flush.add_argument("ids", nargs="*", metavar="ID")
    forced = "also send named IDs an interrupted flush left `sending` (they may have gone out)"
    flush.add_argument("--force", action="store_true", help=forced)
    flush.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    drop = actions.add_parser("drop", help="delete held messages without sending them")
    drop.add_argument("ids", nargs="+", metavar="ID")


def _upgrade(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import upgrade

    confirm = None
    if not args.json and not args.yes and env.stdin.isatty():

        def confirm(shown: str) -> bool:
            from mailpin.net.replies import printable_lines

            print(printable_lines(shown), file=env.stdout)
            print("Write this change? [y/N] ", end="", file=env.stdout, flush=True)
            return env.stdin.readline().strip().lower() in ("y", "yes")

    result = upgrade.run(env, args.accounts, yes=args.yes, confirm=confirm, host=args.host)
    if args.json:
        shown: object = {"accounts": [upgrade.as_json(move) for move in result.moves]}
    else:
        shown = upgrade.as_text(result.moves, diffs=confirm is None)
    _show(env, args.json, shown, [*result.errors, *result.audit_problems])
    return int(result.exit_status)


def _setup(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import setup
    from mailpin.model import Tool

    confirm = None
    if args.write and not args.yes and not args.json and env.stdin.isatty():

        def confirm(diff: str) -> bool:
            from mailpin.net.replies import printable_lines

            print(printable_lines(diff), file=env.stdout)
            print("Add this to the file? [y/N] ", end="", file=env.stdout, flush=True)
            return env.stdin.readline().strip().lower() in ("y", "yes")

    result = setup.run(
        env, args.address, Tool(args.tool), host=args.host, trust_file=args.trust_file, user=args.user,
        password_command=args.password_command, name=args.name, write_config=args.write, yes=args.yes,
        confirm=confirm,
    )  # fmt: skip
    _show(env, args.json, setup.as_json(result) if args.json else setup.as_text(result))
    return int(result.exit_status)


def _queue(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import queue

    if args.queue_command == "drop":
        _show(env, False, queue.drop_text(queue.drop(env, args.ids)))
        return 0
    if args.queue_command == "flush":
        result = queue.flush(env, args.ids, force=args.force)
        _show(env, args.json, queue.flush_json(result) if args.json else queue.flush_text(result), result.problems)
        return result.exit_status
    listed = queue.show(env)
    _show(env, args.json, queue.list_json(listed) if args.json else queue.list_text(listed), listed.problems)
    return 0


def _hooks_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    about = "Put mailpin in front of msmtp, mbsync, offlineimap and `notmuch new`."
    hooks = sub.add_parser("hooks", help="install the shims and the notmuch pre-new hook; show what runs",
                           description=about)  # fmt: skip
    actions = hooks.add_subparsers(dest="hooks_action", metavar="ACTION")
    actions.required = True
    install = actions.add_parser("install", help="write the shims (and the notmuch pre-new hook)",
                                 description=(
        "Write msmtp, mbsync and offlineimap shims into DIR (mode 0755; an older mailpin shim is replaced, any "
        "other file is left alone: exit 78). With --notmuch, also a pre-new hook into the directory notmuch "
        "uses: an existing hook is kept as pre-new.before-mailpin and runs after the check; a read-only "
        "(home-manager) one is left alone and the snippet to use instead is printed (exit 0). Exit 78 also "
        "when notmuch is missing or not configured."))  # fmt: skip
    install.add_argument("--bin", metavar="DIR", help="where the shims go, first on PATH (default: ~/.local/bin)")
    install.add_argument("--notmuch", action="store_true", help="also install the notmuch pre-new hook")
    install.add_argument("--dry-run", action="store_true", help="say what would be written or moved; change nothing")
    install.add_argument("--json", action="store_true", help="machine-readable output")
    status = actions.add_parser("status", help="what msmtp, mbsync, offlineimap and notmuch's pre-new run")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def _hooks(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import hooks
    from mailpin.hooks import this_mailpin

    if args.hooks_action == "status":
        listed = hooks.status(env)
        _show(env, args.json, hooks.status_json(listed) if args.json else hooks.status_text(listed), listed.problems)
        return int(listed.exit_status)
    command = this_mailpin(sys.argv[0], sys.executable)
    result = hooks.install(env, args.bin, notmuch=args.notmuch, dry_run=args.dry_run, command=command)
    shown = hooks.install_json(result) if args.json else hooks.install_text(result)
    _show(env, args.json, shown, [f"warning: {warning}" for warning in result.warnings])
    return int(result.exit_status)


def _tunnel_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tunnel = sub.add_parser("tunnel", help="the tool's transport, verified in-line (mbsync Tunnel)",
                            description=(
        "Connect to the account's server in the pinned mode, verify that very session against the "
        "profile, then relay the protocol in the clear on stdin/stdout: mbsync `Tunnel \"mailpin tunnel "
        "mbsync:work\"`, offlineimap `transporttunnel`. A session that does not match is refused "
        "before one byte is relayed (exit 69; 75: could not verify)."))  # fmt: skip
    tunnel.add_argument("account", metavar="ACCOUNT", help="TOOL:NAME")
    tunnel.add_argument("--config", metavar="FILE", help="the tool's config file, when not its default one")
    tunnel.add_argument("-k", dest="edits", metavar="SECTION:OPTION=VALUE", action="append", default=[],
                        help="offlineimap's -k edits of this run (repeat), applied to the account as offlineimap "
                             "applies them")  # fmt: skip


def _tunnel(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import tunnel
    from mailpin.commands.check import overall
    from mailpin.net.relay import greeting_for
    from mailpin.net.tunnel import relay
    from mailpin.notify.alerts import announce
    from mailpin.run.wrapper import blocked_line

    options = [arg for edit in args.edits for arg in ("-k", edit)]
    verifier, session = tunnel.open_verified(env, args.account, args.config, options)
    outcome = session.outcome
    if session.chan is None or outcome.endpoint is None:
        print(f"mailpin: {blocked_line(outcome, '')}", file=env.stderr)
        env.stderr.flush()
        announce(env, [outcome], verifier.settings.notify)
        return int(overall([outcome]))
    announce(env, [outcome], verifier.settings.notify)  # a verified session clears an earlier block
    try:
        relay(session.chan, greeting_for(outcome.endpoint.protocol, outcome.endpoint.mode))
    except OSError as exc:
        print(f"mailpin: tunnel {outcome.target.key}: connection lost: {exc.strerror or exc}", file=env.stderr)
        return int(ExitStatus.TEMPFAIL)
    finally:
        session.chan.close()
    return 0


def _doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="is mailpin in front of the tools? will a block reach you?",
                            description=(
        "Check the shims on PATH and the real tools they reach, the tool configs, accounts without a "
        "profile and profiles without an account, the pin store, the notification paths and the notmuch "
        "hook; one line each, with the fix. Connects to no mail server. Exit 78 when a tool's config, "
        "mailpin's settings or the pin store is broken; otherwise 0, warnings (--) included; with "
        "--notify-test, 75 when nothing could deliver the test notification."))  # fmt: skip
    doctor.add_argument("--notify-test", action="store_true", help="send a test desktop notification")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")


def _doctor(args: argparse.Namespace, env: Env) -> int:
    from mailpin.commands import doctor

    result = doctor.run(env, notify_test=args.notify_test)
    _show(env, args.json, doctor.to_json(result) if args.json else doctor.text(result))
    return int(result.exit_status)


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="watch mailpin pin, send, sync and block two attacks (throwaway servers)",
                          description=(
        "Start loopback SMTP and IMAP servers with a throwaway CA in a temporary directory, write throwaway "
        "msmtp and mbsync configs there, pin, send and sync through mailpin (through `check` when msmtp or "
        "mbsync is not installed), then strip STARTTLS and serve a certificate from another CA: each block "
        "with its notification, then `review` and `accept`. Your own files are never read or changed; "
        "everything is removed at the end. Exit 0 when every step behaved as shown, else 1."))  # fmt: skip
    demo.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    demo.add_argument("--quiet", "-q", action="store_true", help="the steps and their results, not mailpin's output")


def _demo(args: argparse.Namespace, env: Env) -> int:
    from mailpin import demo

    return demo.run(env, keep=args.keep, quiet=args.quiet)


_COMMANDS = {
    "probe": _probe,
    "accounts": _accounts,
    "init": _init,
    "check": _check,
    "review": _review,
    "accept": _accept,
    "forget": _forget,
    "upgrade": _upgrade,
    "setup": _setup,
    "queue": _queue,
    "hooks": _hooks,
    "doctor": _doctor,
    "tunnel": _tunnel,
    "demo": _demo,
}


def _tunnel_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """`tunnel [--config FILE] [-k EDIT]… ACCOUNT` without building the whole parser: the tool starts one
    tunnel per connection, so its start-up is paid every time. Any other shape (`-h`, a typo) is
    left to argparse and its messages."""
    from types import SimpleNamespace

    if len(argv) < 2 or argv[0] != "tunnel" or argv[-1].startswith("-"):
        return None
    config: str | None = None
    edits: list[str] = []
    words = list(argv[1:-1])
    while words:
        match words:
            case ["--config", value, *rest]:
                config, words = value, rest
            case [option, *rest] if option.startswith("--config="):
                config, words = option.removeprefix("--config="), rest
            case ["-k", value, *rest]:
                edits, words = [*edits, value], rest
            case _:
                return None
    return SimpleNamespace(command="tunnel", account=argv[-1], config=config, edits=edits)  # type: ignore[return-value]


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """argparse, with the message about what was actually wrong: an unknown option before the command
    (argparse says a COMMAND is missing), one after it (argparse shows the top-level usage), and
    `mailpin run` without a tool."""
    import argparse

    parser = build_parser()
    first = argv[0] if argv else ""
    own = first == "-h" or (
        len(first) > 2 and first.startswith("--") and any(o.startswith(first) for o in ("--help", "--version"))
    )
    if first.startswith("-") and not own:
        parser.error(f"unrecognized option {first!r} (options go after the command: mailpin COMMAND --help)")
    if list(argv) == ["run"]:
        parser.exit(2, "usage: mailpin run msmtp|mbsync|offlineimap [ARGS…]\nmailpin run: name the tool to run\n")
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        chosen = commands.choices.get(getattr(args, "command", "") or "", parser)
        for action in chosen._actions:  # the subcommand's own subcommands (queue, hooks): their parser
            if isinstance(action, argparse._SubParsersAction):
                name = next((word for word in argv if word in action.choices), None)
                chosen = action.choices[name] if name is not None else chosen
        chosen.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "run" and argv[1] in _TOOLS:
        # Before anything else of mailpin loads: the connections its last runs of this command line
        # made, opened now, while the rest imports (net/early.py).
        import os

        from mailpin.net import early

        hints = early.Hints.of_run(env.environ if env else os.environ, argv[1], argv[2:])
        opened = early.start(hints.agreed())
        from mailpin.env import Env
        from mailpin.run import wrapper

        # Everything after the tool is the tool's, untouched: argparse would read `-h` or `--`.
        return wrapper.main(argv[1], argv[2:], env or Env.from_os(), hints, opened)
    from mailpin.env import Env

    env = env or Env.from_os()
    args = _tunnel_args(argv)
    if args is None:
        try:
            args = _parse(argv)
        except SystemExit as exc:  # argparse prints its own message; 0 for --help/--version
            return int(exc.code) if isinstance(exc.code, int) else int(ExitStatus.USAGE)
    try:
        return _COMMANDS[args.command](args, env)
    except MailpinError as exc:
        _report(env, [exc])
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailpin … | head`: the reader went away; nobody is left to tell
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
