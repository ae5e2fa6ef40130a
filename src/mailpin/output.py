"""Render command results for people (text) and for scripts (`--json`). Nothing else prints."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailpin.errors import ExitStatus
from mailpin.model import Account, CertFacts, Mode, host_port
from mailpin.net.replies import printable

if TYPE_CHECKING:  # result types only: importing their commands would pull in their dependencies
    from mailpin.commands.accounts import AccountsResult
    from mailpin.commands.probe import ProbeResult

JSON_VERSION = 1


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _cert_json(cert: CertFacts) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "sha256": cert.sha256,
        "spki_sha256": cert.spki_sha256,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
    }


def _status(result: ProbeResult) -> str:
    if result.error is None:
        return "ok"
    return "unverified" if result.exit_status is ExitStatus.TEMPFAIL else "blocked"


def probe_json(result: ProbeResult) -> dict[str, Any]:
    ep = result.endpoint
    data: dict[str, Any] = {
        "version": JSON_VERSION,
        "host": ep.host,
        "port": ep.port,
        "protocol": ep.protocol.value,
        "mode": ep.mode.value,
        "servername": ep.name_to_check,
        "status": _status(result),
        "reasons": list(result.reasons),
        "error": str(result.error) if result.error else None,
    }
    obs = result.observation
    if obs is None:
        return data
    leaf = obs.leaf
    data.update(
        {
            "tls_version": obs.tls_version,
            "cipher": obs.cipher,
            "subject": leaf.subject,
            "issuer": leaf.issuer,
            "sans": list(leaf.sans),
            "serial": leaf.serial,
            "not_before": leaf.not_before.isoformat(),
            "not_after": leaf.not_after.isoformat(),
            "cert_sha256": leaf.sha256,
            "cert_sha256_colon": leaf.sha256_colon,
            "spki_sha256": leaf.spki_sha256,
            "ca_spki_sha256": [ca.spki_sha256 for ca in obs.chain.ca_certs],
            "ca_certs": [_cert_json(ca) for ca in obs.chain.ca_certs],
            "served_chain": [_cert_json(cert) for cert in obs.served_chain],
            "chain_valid": obs.chain.chain_valid,
            "chain_error": obs.chain.error,
            "hostname_valid": obs.chain.hostname_valid,
            "trust": obs.chain.trust,
            "greeting": obs.greeting,
            "capabilities": list(obs.capabilities),
            "elapsed_ms": round(obs.elapsed_ms, 1),
        }
    )
    return data


def probe_text(result: ProbeResult) -> str:
    ep = result.endpoint
    mode = "Implicit TLS" if ep.mode is Mode.IMPLICIT else "STARTTLS"
    obs = result.observation
    if obs is None:
        return f"{ep.protocol.value} {ep}  {mode}: {result.error}"
    leaf, chain = obs.leaf, obs.chain
    rows = [
        ("greeting", obs.greeting),
        ("subject", leaf.subject),
        ("issuer", leaf.issuer),
        ("names", ", ".join(leaf.sans) or "(no subjectAltName)"),
        ("valid", f"{_when(leaf.not_before)} → {_when(leaf.not_after)}"),
        ("sha256", f"{leaf.sha256_colon}"),
        ("", f"{leaf.sha256}"),
        ("spki sha256", leaf.spki_sha256),
    ]
    rows += [("ca spki" if i == 0 else "", f"{ca.spki_sha256}  {ca.subject}") for i, ca in enumerate(chain.ca_certs)]
    verdict = "valid" if chain.chain_valid else f"NOT valid: {chain.error}"
    rows.append(("chain", f"{verdict} ({chain.trust})"))
    matches = "matches" if chain.hostname_valid else "does NOT match"
    rows.append(("host name", f"{matches} {ep.name_to_check}"))
    rows.append(("findings", ", ".join(chain.reasons) or "none"))
    head = f"{ep.protocol.value} {ep}  {mode}  {obs.tls_version}  {obs.cipher}"
    # Every value here comes from the server or is about it: escaped once more where it is shown,
    # whatever made it (a library's error message may quote a certificate's name).
    lines = [head, *(f"  {label:<12} {printable(value, 2000)}".rstrip() for label, value in rows)]
    return "\n".join(lines)


def _endpoint(account: Account) -> str:
    if account.host is None:
        return account.transport or "(unknown)"
    where = host_port(account.host, account.port)
    return f"{where} via {account.transport}" if account.transport else where


def account_json(account: Account) -> dict[str, Any]:
    return {
        "account": account.key,
        "tool": account.tool.value,
        "name": account.name,
        "protocol": account.protocol.value,
        "host": account.host,
        "port": account.port,
        "mode": account.mode.value,
        "opportunistic": account.opportunistic,
        "servername": account.servername,
        "trust": account.trust,
        "trust_file": account.trust_file,
        "system_trust": account.system_trust,
        "certcheck": account.certcheck,
        "fingerprints": list(account.fingerprints),
        "transport": account.transport,
        "froms": list(account.froms),
        "pin_options": dict(account.pin_options),
        "source": account.source,
        "notes": list(account.notes),
    }


def accounts_json(result: AccountsResult) -> dict[str, Any]:
    def pinned(account: Account) -> dict[str, Any]:
        profile = result.profiles.get(account.key)
        pin = {"level": profile.level.value, "pinned_at": profile.pinned_at.isoformat()} if profile else None
        return {**account_json(account), "pin": pin, "enforcement": result.enforcement.get(account.key)}

    data: dict[str, Any] = {
        "version": JSON_VERSION,
        "accounts": [pinned(account) for account in result.accounts],
        "errors": [str(error) for error in result.errors],
        "notes": [str(problem) for problem in result.dormant],
    }
    if result.invocation is not None:
        data["invocation"] = list(result.invocation)
    return data


def accounts_text(result: AccountsResult) -> str:
    lines: list[str] = []
    if result.invocation is not None:
        lines.append(f"{' '.join(result.invocation)} would use:")
    if not result.accounts:
        if not result.errors:  # else the errors (stderr) say why
            lines.append("no accounts found" if result.invocation is None else "no account")
        return "\n".join(lines)
    width = max(len(account.key) for account in result.accounts)
    for account in result.accounts:
        mode = account.mode.value + (" (opportunistic)" if account.opportunistic else "")
        profile = result.profiles.get(account.key)
        pin = f"pinned {profile.level.value} since {profile.pinned_at:%Y-%m-%d}" if profile else "unpinned"
        held = result.enforcement.get(account.key)
        pin += f", run: {held}" if held and held != "-" else ""
        lines.append(
            f"{account.key:<{width}}  {account.protocol.value:<4}  {_endpoint(account)}  {mode}  {pin}  "
            f"trust: {account.trust}  ({account.source})"
        )
        pad = " " * (width + 2)
        lines += [f"{pad}set in the config: {option} {value}" for option, value in account.pin_options]
        lines += [f"{pad}note: {note}" for note in account.notes]
    lines += [f"note: {problem}" for problem in result.dormant]
    return "\n".join(lines)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)
