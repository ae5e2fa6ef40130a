"""`mailpin tunnel ACCOUNT`: the tool's transport, verified in-line (mbsync `Tunnel`, offlineimap
`transporttunnel`, fetchmail `plugin`). Connects in the pinned mode, judges that very session with the same policy as
`check`, and only then relays the protocol on stdin/stdout. A session that does not match is
refused — and told — before a single byte of the tool's reaches the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.commands.verify import Outcome, Target, Verifier, endpoint_of
from mailpin.env import Env
from mailpin.errors import ConfigError, ProbeError, UsageError
from mailpin.model import Status, Tool, Verdict
from mailpin.net.channel import Channel
from mailpin.net.probe import open_session
from mailpin.state import settings
from mailpin.trust import policy


@dataclass
class Session:
    outcome: Outcome
    chan: Channel | None  # open and verified when the outcome passed


def open_verified(
    env: Env, name: str, config: str | None = None, options: Sequence[str] = ()
) -> tuple[Verifier, Session]:
    """`config`: the tool's config file when it is not the default one (mbsync -c, offlineimap -c,
    fetchmail -f).
    `options`: the tool's own command-line edits of its config for this run (offlineimap `-k
    SECTION:OPTION=VALUE`, each as two items), so that a `-k …:ssl_version=…` or `-k
    …:sslcacertfile=…` of the user's holds on the tunnel's session as it did on the pre-flight probe."""
    verifier = Verifier(env)
    if config is None:
        # mbsync and offlineimap name their account as TOOL:NAME: the other tools' configs are not read
        tool = _tool_of(name)
        targets, _ = verifier.targets([name], [tool] if tool is not None else tuple(Tool))
    else:
        targets = _targets_from(verifier, name, config, options)
    if len(targets) != 1:
        raise UsageError(f"{name!r} names {len(targets)} accounts: name one as TOOL:NAME")
    target = targets[0]
    try:
        session = _open(verifier, target)
    except ConfigError as exc:
        verdict = Verdict(target.key, Status.CONFIG_ERROR, warnings=(str(exc),))
        session = Session(Outcome(target, None, verdict), None)
    verifier.record_outcome(session.outcome)
    return verifier, session


def _tool_of(name: str) -> Tool | None:
    """The tool of a `TOOL:NAME` account name; None for a bare NAME."""
    tool, sep, _ = name.partition(":")
    return Tool(tool) if sep and tool in {t.value for t in Tool} else None


def _targets_from(verifier: Verifier, name: str, config: str, options: Sequence[str] = ()) -> list[Target]:
    from mailpin.commands.verify import select
    from mailpin.configs.discover import reader

    tool = _tool_of(name)
    if tool is None:
        raise UsageError("with --config, name the account as TOOL:NAME")
    tool_reader = reader(tool)
    flag = "-f" if tool is Tool.FETCHMAIL else "-c"  # how the tool names its config file on its command line
    loaded = tool_reader.load([flag, config], verifier.env)
    accounts = loaded.accounts
    if options:
        if tool is not Tool.OFFLINEIMAP:
            raise UsageError("tool options are offlineimap's -k edits only")
        # The account as this run's offlineimap command line edits it (its -k, in order), as resolved
        # for the pre-flight probe: none of its TLS settings is dropped on the tunnel's session.
        accounts = tool_reader.select(loaded, ["-c", config, *options, "-a", name.partition(":")[2]])
    return select([name], accounts, verifier.profiles)


def _open(verifier: Verifier, target: Target) -> Session:
    account, profile = target.account, target.profile
    if profile is not None and account is not None and account.host is not None:
        drift = policy.config_drift(profile, account)  # a config that uses this tunnel has no host
        if drift is not None:
            return Session(Outcome(target, endpoint_of(account), drift), None)
    endpoint = profile.endpoint if profile is not None else (endpoint_of(account) if account else None)
    if endpoint is None:
        note = "no TLS profile and no host in the config: nothing to connect to (pin it: mailpin init)"
        return Session(Outcome(target, None, Verdict(target.key, Status.BLOCKED, warnings=(note,))), None)
    judge = verifier.judge(account)
    try:
        # The tool's own TLS is off inside the tunnel: its version, cipher and client certificate
        # settings are honoured by this session instead (or refused, ConfigError: never dropped).
        chan, observation = open_session(
            endpoint, judge, timeout=verifier.settings.timeout, now=verifier.env.now, greet=False, tool=account
        )
    except ProbeError as exc:
        return Session(Outcome(target, endpoint, policy.failed(profile, target.key, exc), error=exc), None)
    if profile is None:
        allowed = verifier.settings.unpinned is settings.Unpinned.PIN_IF_TRUSTED
        verdict = policy.first_use(target.key, observation, pin_if_trusted=allowed, config=account)
        if verdict.status is Status.PINNED:
            certcheck = account.certcheck if account else True
            target, verdict = verifier.pin_first_use(target, observation, verdict, certcheck)
    else:
        days = verifier.settings.expiry_warning_days
        verdict = policy.evaluate(
            profile, observation, expiry_warning_days=days, now=verifier.env.now(), config=account
        )
    outcome = Outcome(target, endpoint, verdict, observation)
    if verdict.status not in (Status.VERIFIED, Status.PINNED):
        chan.close()
        return Session(outcome, None)
    return Session(outcome, chan)
