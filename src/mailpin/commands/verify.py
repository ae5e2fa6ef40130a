"""Verification, shared by `check`, `review`, `init`, `accept` (and the wrappers): which accounts a
command names, how each is observed, and what the policy says about it.

One `Verifier` per command run: it loads mailpin's settings and the pin store once, caches the
trust stores, probes several accounts concurrently, and writes every decision to the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from threading import Lock

from mailpin.configs.discover import discover
from mailpin.env import Env
from mailpin.errors import ConfigError, ProbeError, UsageError
from mailpin.model import (
    Account,
    Endpoint,
    Finding,
    Level,
    Mode,
    Observation,
    Profile,
    Status,
    Tool,
    Verdict,
    is_ip_address,
)
from mailpin.net.channel import Channel
from mailpin.net.early import Early
from mailpin.net.probe import open_session, probe
from mailpin.state import settings
from mailpin.state.audit import AuditError, AuditLog
from mailpin.state.store import PinStore
from mailpin.trust import anchors, policy
from mailpin.trust.judge import Judge

_TOOLS = {tool.value for tool in Tool}
_MAX_PARALLEL = 32  # probes wait on the network: one wave for a typical set of accounts


@dataclass(frozen=True)
class Target:
    """An account a command works on: from the tool's config, from the pin store, or both."""

    key: str  # TOOL:NAME
    account: Account | None  # None: pinned, but no longer in the tool's config
    profile: Profile | None  # None: not pinned


@dataclass(frozen=True)
class Outcome:
    target: Target
    endpoint: Endpoint | None  # what was (or would be) connected to
    verdict: Verdict
    observation: Observation | None = None
    error: ProbeError | None = None
    # The verified session itself, left open for the tool (Verifier `keep`): the relay hands it over.
    session: Channel | None = field(default=None, compare=False, repr=False)


def select(names: Sequence[str], accounts: Sequence[Account], profiles: Mapping[str, Profile]) -> list[Target]:
    """DESIGN §4: `TOOL:NAME` names one account, a bare `NAME` every tool's account of that name;
    no names: every account found and every profile. A name that matches nothing is a usage error
    (a typo must not turn into "verified nothing, exit 0")."""
    by_key: dict[str, Account] = {}
    for account in accounts:
        by_key.setdefault(account.key, account)
    keys = list(dict.fromkeys([*by_key, *sorted(profiles)]))
    if not names:
        chosen = keys
    else:
        chosen = []
        for name in names:
            tool, sep, _ = name.partition(":")
            hits = [key for key in keys if key == name] if sep and tool in _TOOLS else [
                key for key in keys if key.partition(":")[2] == name
            ]  # fmt: skip
            if not hits:
                raise UsageError(f"no account {name!r} in the tools' configs or the pin store (see `mailpin accounts`)")
            chosen += [key for key in hits if key not in chosen]
    return [Target(key, by_key.get(key), profiles.get(key)) for key in chosen]


def endpoint_of(account: Account) -> Endpoint | None:
    """Where the tool itself connects, when it connects by host name with TLS."""
    if account.host is None or account.port is None or account.mode is Mode.NONE:
        return None
    return Endpoint(account.host, account.port, account.protocol, account.mode, account.servername)


def _is_loopback(host: str) -> bool:
    return host == "localhost" or (is_ip_address(host) and ipaddress.ip_address(host).is_loopback)


class Verifier:
    def __init__(
        self,
        env: Env,
        configured: settings.Settings | None = None,
        keep: Callable[[Account], bool] | None = None,
        early: Early | None = None,
    ) -> None:
        """`configured`: the settings when the caller has already read them. `keep`: the accounts
        whose verified session stays open for the tool (`Outcome.session`, `mailpin run`'s relay)
        instead of being closed once judged."""
        self.env = env
        self.keep = keep
        self.early = early  # connections opened at the run's start (net/early.py), taken by endpoint
        self.settings = configured if configured is not None else settings.load(env)
        self.store = PinStore.for_env(env)
        self.profiles = self.store.load()  # a corrupt store stops here: exit 78, never a re-pin
        self.audit = AuditLog.for_env(env)
        self.audit_problems: list[str] = []
        self._judges: dict[tuple[str | None, bool, bool], Judge] = {}
        self._pinned_now: dict[str, datetime] = {}  # pins this run wrote, by account
        self._lock = Lock()

    def targets(
        self, names: Sequence[str], tools: Sequence[Tool] = tuple(Tool)
    ) -> tuple[list[Target], tuple[ConfigError, ...]]:
        """`tools`: the tools whose configs to read (a `TOOL:NAME` needs only its own)."""
        found = discover(self.env, tools)
        return select(names, found.accounts, self.profiles), found.errors

    # -- observing ------------------------------------------------------------------------------

    def judge(self, account: Account | None) -> Judge:
        """Judges chains under the anchors the tool itself uses for this account (its trust file,
        the system store, or both), remembering the valid ones in the cache directory."""
        trust_file = account.trust_file if account is not None else None
        system = account.system_trust if account is not None else True
        # Chains end where the tool's own TLS library ends them: GnuTLS (msmtp, mpop) at any trusted CA.
        any_ca = account is not None and account.tool in (Tool.MSMTP, Tool.MPOP)
        with self._lock:
            if (trust_file, system, any_ca) not in self._judges:
                source = anchors.locate_for(trust_file, system, self.env.environ)
                memo = self.env.cache_home / "mailpin" / "chains"
                self._judges[(trust_file, system, any_ca)] = Judge(source, memo, any_ca)
            return self._judges[(trust_file, system, any_ca)]

    def observe(self, endpoint: Endpoint, account: Account | None) -> Observation:
        # A verdict needs the handshake (and the greeting that proves the session works), not the
        # capabilities: skipping them saves a round trip before every send and sync.
        judge = self.judge(account)
        return probe(endpoint, judge, timeout=self.settings.timeout, now=self.env.now, capabilities=False, tool=account)

    def _connect(self, endpoint: Endpoint, account: Account | None) -> tuple[Observation, Channel | None]:
        """Observe, keeping the session when it is one to keep: Implicit TLS with the greeting read,
        judged and kept for the tool; STARTTLS where a client stands after its own handshake."""
        if account is None or self.keep is None or not self.keep(account):
            return self.observe(endpoint, account), None
        judge = self.judge(account)
        early = self.early.take(endpoint.host, endpoint.port, self.settings.timeout) if self.early else None
        chan, observation = open_session(
            endpoint, judge, timeout=self.settings.timeout, now=self.env.now, greet=True, capabilities=False,
            tool=account, relay=True, sock=early,
        )  # fmt: skip
        return observation, chan

    # -- deciding -------------------------------------------------------------------------------

    def verify(self, target: Target, *, pin_first_use: bool = False) -> Outcome:
        """Decide one account; with `pin_first_use`, pin an unpinned account whose chain validates
        (the `unpinned = pin-if-trusted` setting permitting)."""
        try:
            outcome = self._decide(target, pin_first_use)
        except ConfigError as exc:  # this account's trust file: the other accounts are still verified
            endpoint = target.profile.endpoint if target.profile else None
            outcome = Outcome(target, endpoint, Verdict(target.key, Status.CONFIG_ERROR, warnings=(str(exc),)))
        self.record_outcome(outcome)
        return outcome

    def verify_all(self, targets: Sequence[Target], *, pin_first_use: bool = False) -> list[Outcome]:
        """Every target at once: the probes wait on the network, not on each other."""
        if len(targets) <= 1:
            return [self.verify(target, pin_first_use=pin_first_use) for target in targets]
        from concurrent.futures import ThreadPoolExecutor  # not on a one-account wrapper's path

        with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL, len(targets))) as pool:
            return list(pool.map(lambda target: self.verify(target, pin_first_use=pin_first_use), targets))

    def _decide(self, target: Target, pin_first_use: bool) -> Outcome:
        account, profile = target.account, target.profile
        if account is not None and policy.is_mailpin_tunnel(account):
            verdict = Verdict(target.key, Status.SKIPPED, warnings=("verified in-line by `mailpin tunnel`",))
            return Outcome(target, profile.endpoint if profile else None, verdict)
        if profile is not None and account is None:
            # No tool will connect for it; probing with a guessed trust store would only cry wolf.
            note = f"pinned, but in no tool's config now (`mailpin forget {target.key}` removes the profile)"
            return Outcome(target, profile.endpoint, Verdict(target.key, Status.SKIPPED, warnings=(note,)))
        if profile is not None:
            assert account is not None
            drift = policy.config_drift(profile, account)
            if drift is not None:
                return Outcome(target, endpoint_of(account), drift)
            endpoint = profile.endpoint
            try:
                observation, session = self._connect(endpoint, account)
            except ProbeError as exc:
                return Outcome(target, endpoint, policy.failed(profile, target.key, exc), error=exc)
            expiry = self.settings.expiry_warning_days
            verdict = policy.evaluate(
                profile, observation, expiry_warning_days=expiry, now=self.env.now(), config=account
            )
            return _kept(Outcome(target, endpoint, verdict, observation, session=session))
        assert account is not None  # a target has an account, a profile, or both
        skipped = nothing_to_verify(account)
        if skipped is not None:
            return Outcome(target, None, skipped)
        live = endpoint_of(account)
        assert live is not None
        try:
            observation, session = self._connect(live, account)
        except ProbeError as exc:
            return Outcome(target, live, policy.failed(None, target.key, exc), error=exc)
        allowed = self.settings.unpinned is settings.Unpinned.PIN_IF_TRUSTED
        verdict = policy.first_use(target.key, observation, pin_if_trusted=allowed, config=account)
        if verdict.status is Status.PINNED:
            if pin_first_use:
                target, verdict = self.pin_first_use(target, observation, verdict, account.certcheck)
            else:
                verdict = Verdict(target.key, Status.UNPINNED, (Finding("unpinned", _WOULD_PIN),))
        return _kept(Outcome(target, live, verdict, observation, session=session))

    def pin_first_use(
        self, target: Target, observation: Observation, verdict: Verdict, certcheck: bool
    ) -> tuple[Target, Verdict]:
        """Pin an unpinned account unattended — unless a profile appeared meanwhile (a user's `init
        --level leaf`, a parallel run): that profile decides, never this one, and it is never replaced."""
        level = self.settings.level_for(target.key)
        profile = self.pin(target.key, observation, level, certcheck=certcheck, first_use=True)
        if profile.pinned_at == self._pinned_now.get(target.key):
            return target, verdict
        expiry = self.settings.expiry_warning_days
        judged = policy.evaluate(
            profile, observation, expiry_warning_days=expiry, now=self.env.now(), config=target.account
        )
        return Target(target.key, target.account, profile), judged

    # -- writing --------------------------------------------------------------------------------

    def pin(
        self,
        key: str,
        observation: Observation,
        level: Level | None,
        *,
        add: bool = False,
        event: str = "pin",
        certcheck: bool = True,
        first_use: bool = False,
    ) -> Profile:
        """Write a profile (init, accept, first use): under the store's lock, re-reading it first.
        With `first_use`, a profile that appeared meanwhile is returned untouched, never replaced."""
        with self.store.update() as profiles:
            before = profiles.get(key)
            if first_use and before is not None:
                self.profiles[key] = before
                return before
            kept = before if add and before is not None and before.endpoint == observation.endpoint else None
            chosen = policy.pin_level(level, observation)
            profile = policy.make_profile(key, observation, chosen, self.env.now(), kept, certcheck=certcheck)
            profiles[key] = profile
        self.profiles[key] = profile
        self._pinned_now[key] = profile.pinned_at
        self.record(
            event,
            key,
            endpoint=str(observation.endpoint),
            level=profile.level.value,
            cert_sha256=observation.leaf.sha256,
            spki_sha256=observation.leaf.spki_sha256,
            ca_spki_sha256=list(profile.ca_spki_sha256),
            accepted=list(profile.accepted),
            previous_spki_sha256=list(before.spki_sha256) if before else [],
        )
        return profile

    def forget(self, keys: Sequence[str]) -> list[Profile]:
        with self.store.update() as profiles:
            gone = [profiles.pop(key) for key in keys if key in profiles]
        for profile in gone:
            self.profiles.pop(profile.account, None)
        return gone

    def record(self, event: str, key: str, **fields: object) -> None:
        """Append to the audit log. A log that cannot be written is reported, but never turns a
        block into a pass or a pass into a block."""
        try:
            self.audit.record(event, key, self.env.now(), **fields)
        except AuditError as exc:
            with self._lock:
                if str(exc) not in self.audit_problems:
                    self.audit_problems.append(str(exc))

    def record_outcome(self, outcome: Outcome) -> None:
        verdict, obs = outcome.verdict, outcome.observation
        fields: dict[str, object] = {
            "endpoint": str(outcome.endpoint) if outcome.endpoint else None,
            "status": verdict.status.value,
            "reasons": list(verdict.reasons),
        }
        if verdict.findings:
            fields["detail"] = verdict.detail
        if obs is not None:
            fields["cert_sha256"] = obs.leaf.sha256
            fields["spki_sha256"] = obs.leaf.spki_sha256
            fields["tls_version"] = obs.tls_version
        profile = outcome.target.profile
        if profile is not None:
            fields["pinned_spki_sha256"] = list(profile.spki_sha256)
        event = {
            Status.VERIFIED: "verified",
            Status.BLOCKED: "blocked",
            Status.UNVERIFIED: "unverified",
        }.get(verdict.status, "checked")
        if verdict.status is not Status.PINNED:  # a pin on first use was recorded by `pin`
            self.record(event, outcome.target.key, **fields)
        for warning in verdict.warnings:
            self.record("warning", outcome.target.key, detail=warning)


def _kept(outcome: Outcome) -> Outcome:
    """The outcome, its session closed unless it passed: only a verified session reaches the tool."""
    if outcome.session is not None and outcome.verdict.status not in (Status.VERIFIED, Status.PINNED):
        outcome.session.close()
        return replace(outcome, session=None)
    return outcome


_WOULD_PIN = "no TLS profile yet; the chain validates, so it will be pinned on first use (or now: `mailpin init`)"


def nothing_to_verify(account: Account) -> Verdict | None:
    if policy.is_mailpin_tunnel(account):
        return Verdict(account.key, Status.SKIPPED, warnings=("verified in-line by `mailpin tunnel`",))
    if account.unusable is not None:
        # msmtp itself refuses to send with it (a base other accounts inherit from): no connection to
        # verify, and no error while nothing uses it; `mailpin run` refuses it as msmtp does.
        said = f"{account.tool.value} refuses to use this account ({account.unusable}): nothing to verify"
        return Verdict(account.key, Status.SKIPPED, warnings=(said,))
    if account.host is None and account.transport is None:
        # The endpoint comes from something mailpin does not run (msmtp `eval`, offlineimap
        # `remotehosteval`): it cannot be verified, so it is not let through (fail closed).
        why = "; ".join(account.notes) or "the config does not say where it connects"
        fix = "write the host and port in the config, or use a tunnel"
        return Verdict(account.key, Status.CONFIG_ERROR, warnings=(f"endpoint unknown ({why}): {fix}",))
    if account.host is None:
        through = f"connects through {account.transport}: nothing to probe"
        return Verdict(account.key, Status.SKIPPED, warnings=(through,))
    if account.mode is Mode.NONE:
        if _is_loopback(account.host):
            return Verdict(account.key, Status.SKIPPED, warnings=("cleartext to this machine: nothing to pin",))
        return Verdict(
            account.key, Status.BLOCKED, (Finding("unpinned", "the config asks for no TLS: there is nothing to pin"),)
        )
    return None
