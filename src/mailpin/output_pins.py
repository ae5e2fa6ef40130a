"""Render the pinning commands' results (init, check, review, accept, forget) as text or JSON."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailpin.model import Endpoint, Mode, Observation, Profile, Status, host_port
from mailpin.output import JSON_VERSION

if TYPE_CHECKING:
    from mailpin.commands.accept import AcceptResult
    from mailpin.commands.check import CheckResult
    from mailpin.commands.forget import ForgetResult
    from mailpin.commands.init import InitResult, Proposal
    from mailpin.commands.review import Review, ReviewResult
    from mailpin.commands.verify import Outcome

_MODE = {Mode.IMPLICIT: "Implicit TLS", Mode.STARTTLS: "STARTTLS", Mode.NONE: "no TLS"}
_SHOUT = {Status.BLOCKED: "BLOCKED", Status.UNVERIFIED: "UNVERIFIED"}


def _status(status: Status) -> str:
    return _SHOUT.get(status, status.value)


def _endpoint(endpoint: Endpoint | None) -> str:
    if endpoint is None:
        return "-"
    return f"{endpoint.protocol.value} {endpoint} {endpoint.mode.value}"


def _endpoint_json(endpoint: Endpoint | None) -> dict[str, Any] | None:
    if endpoint is None:
        return None
    return {
        "host": endpoint.host,
        "port": endpoint.port,
        "protocol": endpoint.protocol.value,
        "mode": endpoint.mode.value,
        "servername": endpoint.name_to_check,
    }


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _ago(then: datetime, now: datetime) -> str:
    days = (now - then).days
    return "today" if days <= 0 else ("1 day ago" if days == 1 else f"{days} days ago")


# -- check --------------------------------------------------------------------------------------


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    verdict, obs, profile = outcome.verdict, outcome.observation, outcome.target.profile
    return {
        "account": outcome.target.key,
        "status": verdict.status.value,
        "reasons": list(verdict.reasons),
        "detail": verdict.detail or None,
        "warnings": list(verdict.warnings),
        "endpoint": _endpoint_json(outcome.endpoint),
        "level": profile.level.value if profile else None,
        "pinned_at": profile.pinned_at.isoformat() if profile else None,
        "tls_version": obs.tls_version if obs else None,
        "cert_sha256": obs.leaf.sha256 if obs else None,
        "spki_sha256": obs.leaf.spki_sha256 if obs else None,
        "chain_valid": obs.chain.chain_valid if obs else None,
    }


def _overall(status: int) -> str:
    return {0: "ok", 69: "blocked", 75: "unverified", 78: "config-error"}.get(status, "error")


def check_json(result: CheckResult) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "status": _overall(int(result.exit_status)),
        "accounts": [outcome_json(outcome) for outcome in result.outcomes],
        "errors": [str(error) for error in result.errors],
    }


def outcome_line(outcome: Outcome, width: int = 0) -> str:
    verdict, obs, key = outcome.verdict, outcome.observation, outcome.target.key
    head = f"{key:<{width}}  {_status(verdict.status):<10}  {_endpoint(outcome.endpoint)}"
    if verdict.status is Status.VERIFIED and obs is not None and outcome.target.profile is not None:
        text = f"{head}  {obs.tls_version}, level {outcome.target.profile.level.value}"
    elif verdict.findings:
        text = f"{head}  {verdict.detail} [{', '.join(verdict.reasons)}]"
    else:
        text = head
    if verdict.status is Status.BLOCKED and outcome.target.profile is not None:
        text += f"; see `mailpin review {key}`"
    return "\n".join([text, *(f"{'':<{width}}  warning: {warning}" for warning in verdict.warnings)])


def check_text(result: CheckResult, *, quiet: bool = False) -> str:
    """One line per account; `quiet` (hooks, timers): only the accounts that need a look."""
    outcomes = [o for o in result.outcomes if not quiet or o.verdict.status not in (Status.VERIFIED, Status.SKIPPED)]
    if not outcomes:
        return "" if quiet or result.errors else "no accounts found"  # the errors (stderr) say why
    width = max(len(outcome.target.key) for outcome in outcomes)
    return "\n".join(outcome_line(outcome, width) for outcome in outcomes)


# -- init / accept ------------------------------------------------------------------------------


def proposal_text(proposal: Proposal) -> str:
    key, obs = proposal.target.key, proposal.observation
    if obs is None or proposal.endpoint is None:
        return f"{key}: {proposal.error}" if proposal.error else f"{key}: nothing to pin"
    ep, leaf, chain = proposal.endpoint, obs.leaf, obs.chain
    level = proposal.level.value if proposal.level else "-"
    rows = [
        ("certificate", leaf.subject),
        ("issuer", leaf.issuer),
        ("valid", f"{_day(leaf.not_before)} → {_day(leaf.not_after)}"),
        ("key", f"SHA-256(SPKI) {leaf.spki_sha256}"),
        ("cert", f"SHA-256 {leaf.sha256_colon}"),
        ("chain", ("valid" if chain.chain_valid else f"does NOT validate: {chain.error}") + f" ({chain.trust})"),
        ("host name", ("matches " if chain.hostname_valid else "does NOT match ") + ep.name_to_check),
        ("pin level", level),
    ]
    head = f"{key}  {ep.protocol.value} {ep}  {_MODE[ep.mode]}  {obs.tls_version}"
    return "\n".join([head, *(f"  {label:<12} {value}" for label, value in rows)])


def init_text(result: InitResult, shown: Collection[str] = ()) -> str:
    """Each proposal (unless the prompt already showed it), then what happened to it."""
    lines: list[str] = []
    for item in result.items:
        proposal = item.proposal
        if item.outcome in ("pinned", "needs-confirmation", "not-asked") and proposal.target.key not in shown:
            lines.append(proposal_text(proposal))
        lines.append(
            f"{proposal.target.key}: {item.outcome.replace('-', ' ')}" + (f" — {item.note}" if item.note else "")
        )
    if result.offer:
        lines.append(f"tip: {result.offer}")
    for key, where in result.could_move:
        lines.append(
            f"tip: {key} could move to Implicit TLS: {where} answers with a valid certificate (RFC 8314 prefers "
            f"it to STARTTLS): mailpin upgrade {key}"
        )
    return "\n".join(lines) if lines or result.errors else "no accounts found"


def init_json(result: InitResult) -> dict[str, Any]:
    accounts = []
    for item in result.items:
        proposal, obs = item.proposal, item.proposal.observation
        accounts.append(
            {
                "account": proposal.target.key,
                "outcome": item.outcome,
                "note": item.note or None,
                "endpoint": _endpoint_json(proposal.endpoint),
                "level": item.profile.level.value
                if item.profile
                else (proposal.level.value if proposal.level else None),
                "reasons": [proposal.error.reason] if proposal.error else list(obs.chain.reasons) if obs else [],
                "cert_sha256": obs.leaf.sha256 if obs else None,
                "spki_sha256": obs.leaf.spki_sha256 if obs else None,
            }
        )
    moves = [{"account": key, "endpoint": where} for key, where in result.could_move]
    return {
        "version": JSON_VERSION,
        "status": _overall(int(result.exit_status)),
        "accounts": accounts,
        "could_move": moves,
    }


def accept_json(result: AcceptResult) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "accounts": [
            {
                "account": item.proposal.target.key,
                "accepted": item.profile is not None,
                "note": item.note or None,
                "pinned": profile_json(item.profile) if item.profile else None,
            }
            for item in result.items
        ],
    }


def accept_text(result: AcceptResult, shown: Collection[str] = ()) -> str:
    lines = []
    for item in result.items:
        key = item.proposal.target.key
        if key not in shown and item.proposal.observation is not None:
            lines.append(proposal_text(item.proposal))
        if item.profile is None:
            lines.append(f"{key}: NOT accepted — {item.note}")
        else:
            was = f" (was: {_pin_summary(item.previous)})" if item.previous else ""
            lines.append(f"{key}: accepted — {_pin_summary(item.profile)}{was}")
    return "\n".join(lines)


def forget_text(result: ForgetResult) -> str:
    return "\n".join(f"{profile.account}: forgotten ({_pin_summary(profile)})" for profile in result.forgotten)


def _pin_summary(profile: Profile) -> str:
    where = host_port(profile.host, profile.port)
    return f"level {profile.level.value}, {_MODE[profile.mode]} on {where}, {profile.tls_version}"


# -- review -------------------------------------------------------------------------------------


def _short(values: tuple[str, ...]) -> str:
    if not values:
        return "-"
    return values[-1] + (f" (+{len(values) - 1} more)" if len(values) > 1 else "")


def _side(profile: Profile | None, obs: Observation | None, outcome: Outcome) -> list[tuple[str, str, str]]:
    def live(text: str) -> str:
        return text if obs is not None else ""

    leaf = obs.leaf if obs else None
    ep = outcome.endpoint
    rows = [
        (
            "endpoint",
            f"{_MODE[profile.mode]} {host_port(profile.host, profile.port)}" if profile else "-",
            f"{_MODE[ep.mode]} {ep}" if ep else "-",
        ),
        ("tls", profile.tls_version if profile else "-", live(obs.tls_version if obs else "")),
        ("subject", profile.subject if profile else "-", live(leaf.subject if leaf else "")),
        ("issuer", profile.issuer if profile else "-", live(leaf.issuer if leaf else "")),
        ("valid until", _day(profile.not_after) if profile else "-", live(_day(leaf.not_after) if leaf else "")),
        ("key", _short(profile.spki_sha256) if profile else "-", live(leaf.spki_sha256 if leaf else "")),
        ("cert sha256", _short(profile.cert_sha256) if profile else "-", live(leaf.sha256 if leaf else "")),
        ("chain", _pinned_chain(profile), live(_chain(obs) if obs else "")),
        ("trust", profile.trust if profile else "-", live(obs.chain.trust if obs else "")),
    ]
    return rows


def _pinned_chain(profile: Profile | None) -> str:
    if profile is None:
        return "-"
    return f"confirmed by you: {', '.join(profile.accepted)}" if profile.accepted else "valid"


def _chain(obs: Observation) -> str:
    chain = obs.chain
    valid = "valid" if chain.chain_valid else "NOT valid"
    name = "" if chain.hostname_valid else ", name does NOT match"
    return f"{valid}{name}"


def review_text(result: ReviewResult) -> str:
    return "\n\n".join(_review_text(review) for review in result.reviews)


_COLUMN = 46  # the pinned column; a longer value (a whole SHA-256) gets lines of its own


def _review_text(review: Review) -> str:
    outcome, now = review.outcome, review.now
    verdict, profile, key = outcome.verdict, outcome.target.profile, outcome.target.key
    if profile is None:
        return _unpinned_review(outcome)
    lines = [f"{key} — {_status(verdict.status)}" + (f": {', '.join(verdict.reasons)}" if verdict.reasons else "")]
    if profile is not None:
        when = f"{profile.pinned_at:%Y-%m-%d %H:%M UTC} ({_ago(profile.pinned_at, now)})"
        line = f"  pinned {when} at level {profile.level.value}"
        if review.history is not None:
            history = review.history
            line += f"; verified {history.verified} time{'s' if history.verified != 1 else ''} since"
            if history.last_verified is not None:
                line += f", last {history.last_verified:%Y-%m-%d %H:%M UTC}"
            if history.blocked:
                line += f"; blocked {history.blocked} time{'s' if history.blocked != 1 else ''}"
        lines.append(line)
    rows = _side(profile, outcome.observation, outcome)
    lines.append(f"  {'':<12} {'pinned':<{_COLUMN}} live")
    for label, pinned, live in rows:
        if len(pinned) <= _COLUMN:
            lines.append(f"  {label:<12} {pinned:<{_COLUMN}} {live}".rstrip())
        else:  # whole, to compare by eye or against another source: never cut
            lines.append(f"  {label:<12} pinned {pinned}")
            if live:
                lines.append(f"  {'':<12} live   {live}")
    if outcome.error is not None:
        lines.append(f"  live connection: {outcome.error}")
    if review.changes:
        lines.append("  what changed:")
        lines += [f"    - {change}" for change in review.changes]
    lines += [f"  finding: {finding.text} [{finding.reason}]" for finding in verdict.findings]
    lines += [f"  warning: {warning}" for warning in verdict.warnings]
    if verdict.status is Status.BLOCKED and outcome.observation is not None:
        lines.append(f"  if you expected this change: mailpin accept {key}   (or keep blocking: do nothing)")
    elif verdict.status is Status.BLOCKED:
        # No TLS session was completed (stripped or refused STARTTLS, injection, PREAUTH, plaintext on
        # an Implicit TLS port): `accept` has nothing to pin and refuses, so it is not offered.
        lines.append(
            "  never accepted: no TLS session was completed, so there is nothing to pin — a stripped or injected"
            " STARTTLS is an attack, not a change; `mailpin check` again from a network you trust"
        )
    return "\n".join(lines)


def _unpinned_review(outcome: Outcome) -> str:
    """An account with no profile: nothing to compare, only what the server shows now."""
    key = outcome.target.key
    lines = [f"{key} — not pinned yet: `mailpin init {key}`"]
    rows = [(label, live) for label, _, live in _side(None, outcome.observation, outcome) if live and live != "-"]
    lines += [f"  {label:<12} {live}" for label, live in rows]
    if outcome.error is not None:
        lines.append(f"  live connection: {outcome.error}")
    lines += [f"  finding: {f.text} [{f.reason}]" for f in outcome.verdict.findings if f.reason != "unpinned"]
    lines += [f"  warning: {warning}" for warning in outcome.verdict.warnings]
    return "\n".join(lines)


def review_json(result: ReviewResult) -> dict[str, Any]:
    reviews = []
    for review in result.reviews:
        data = outcome_json(review.outcome)
        profile = review.outcome.target.profile
        data["changes"] = list(review.changes)
        data["pinned"] = profile_json(profile) if profile else None
        if review.history is not None:
            data["verified_since_pin"] = review.history.verified
            data["blocked_since_pin"] = review.history.blocked
            last = review.history.last_verified
            data["last_verified"] = last.isoformat() if last else None
        reviews.append(data)
    return {"version": JSON_VERSION, "status": _overall(int(result.exit_status)), "accounts": reviews}


def profile_json(profile: Profile) -> dict[str, Any]:
    return {
        "level": profile.level.value,
        "endpoint": _endpoint_json(profile.endpoint),
        "tls_version": profile.tls_version,
        "cert_sha256": list(profile.cert_sha256),
        "spki_sha256": list(profile.spki_sha256),
        "ca_spki_sha256": list(profile.ca_spki_sha256),
        "subject": profile.subject,
        "issuer": profile.issuer,
        "not_after": profile.not_after.isoformat(),
        "pinned_at": profile.pinned_at.isoformat(),
        "accepted": list(profile.accepted),
    }
