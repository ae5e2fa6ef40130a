"""Command line: parse, dispatch, and the one error boundary that prints and picks the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mailpin import __version__
from mailpin.env import Env
from mailpin.errors import ExitStatus, MailpinError, UsageError


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
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
    probe.add_argument("--protocol", required=True, choices=["imap", "smtp", "pop3"])
    probe.add_argument("--mode", required=True, choices=["implicit", "starttls"])
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
    accounts.add_argument("--for", dest="tool", choices=["msmtp", "mbsync", "offlineimap"],
                          help="resolve one invocation of this tool")  # fmt: skip
    accounts.add_argument("args", nargs="*", metavar="ARGS", help="the tool's arguments (after --)")
    accounts.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


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
        print(output.dumps(output.probe_json(result)), file=env.stdout)
    elif result.observation is not None:
        print(output.probe_text(result), file=env.stdout)
    if result.error is not None:
        print(f"mailpin: {result.error}", file=env.stderr)
    return int(result.exit_status)


def _accounts(args: argparse.Namespace, env: Env) -> int:
    from mailpin import output
    from mailpin.commands import accounts

    if args.args and args.tool is None:
        raise UsageError("tool arguments need --for TOOL (e.g. mailpin accounts --for msmtp -- -a work)")
    result = accounts.run(env, args.tool, args.args)
    if args.json:
        print(output.dumps(output.accounts_json(result)), file=env.stdout)
    else:
        print(output.accounts_text(result), file=env.stdout)
    for error in result.errors:
        print(f"mailpin: {error}", file=env.stderr)
    return int(result.exit_status)


_COMMANDS = {"probe": _probe, "accounts": _accounts}


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    env = env or Env.from_os()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message; 0 for --help/--version
        return int(exc.code) if isinstance(exc.code, int) else int(ExitStatus.USAGE)
    try:
        return _COMMANDS[args.command](args, env)
    except MailpinError as exc:
        print(f"mailpin: {exc}", file=env.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
