"""The security decision, pure: a profile, what a connection showed, and the tool's config today.

RFC 8314 §5.2: settle the parameters of a secure connection when the account is set up, remember
them, and refuse to exchange anything when a later session does not meet them. The profile is
that memory; this module compares against it and says why. No I/O here: the callers probe, read
configs and write files.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mailpin.errors import COULD_NOT_VERIFY, ProbeError
from mailpin.model import (
    Account,
    Finding,
    Level,
    Mode,
    Observation,
    Profile,
    Status,
    Verdict,
    host_port,
    tls_rank,
)

# Strength of a mode as a tool config asks for it: Implicit TLS > STARTTLS > none (RFC 8314 §3).
_STRENGTH = {Mode.NONE: 0, Mode.STARTTLS: 1, Mode.IMPLICIT: 2}
_MODE_WORDS = {Mode.IMPLICIT: "Implicit TLS", Mode.STARTTLS: "STARTTLS", Mode.NONE: "no TLS"}

# Findings of the chain itself (certs.validate): checked at every level (DESIGN §3, RFC 8314 §5.3),
# unless the user confirmed that very finding for the pinned key when pinning.
_CHAIN_TEXT = {
    "untrusted-chain": "the certificate chain does not validate",
    "expired": "the certificate has expired",
    "not-yet-valid": "the certificate is not valid yet",
    "hostname-mismatch": "the certificate is not for {name}",
}


def _date(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _pinned(profile: Profile) -> str:
    return f"{_MODE_WORDS[profile.mode]} on {host_port(profile.host, profile.port)}"


def ca_keys(observation: Observation) -> set[str]:
    """The CA keys this connection showed: those of the validated path when the chain validates
    (never certificates the server merely sent along), else whatever CAs were served."""
    shown = observation.chain.ca_certs if observation.chain.chain_valid else observation.served_chain[1:]
    return {ca.spki_sha256 for ca in shown}


# The hashes each tool accepts in its own fingerprint setting, by the length of the digest:
# offlineimap3 (imaplibutil.WrappedIMAP4_SSL.open) compares cert_fingerprint with the hex SHA-512,
# -384, -256, -224 and SHA-1 of the leaf's DER; msmtp (conf.c get_fingerprint) takes SHA-256, or the
# deprecated SHA-1 and MD5, as colon hex.
_TOOL_HASHES = {64: "sha512", 48: "sha384", 32: "sha256", 28: "sha224", 20: "sha1", 16: "md5"}


# What each tool calls its certificate pin (offlineimap's is cert_fingerprint; mbsync has none).
_FINGERPRINT_SETTING = {
    "msmtp": "tls_fingerprint", "mpop": "tls_fingerprint", "fetchmail": "sslfingerprint", "getmail": "ssl_fingerprints",
}  # fmt: skip


def tool_pin(verdict: Verdict, account: Account | None, observation: Observation) -> Verdict:
    """Never weaker than the tool alone (DESIGN §3): when the tool's own config pins the server's
    certificate (msmtp/mpop `tls_fingerprint`, offlineimap `cert_fingerprint`, fetchmail `sslfingerprint`
    (MD5), getmail `ssl_fingerprints`), a session that passes
    mailpin's profile must also meet that pin — mailpin's enforcement replaces the tool's own TLS
    check, so a pin left to the tool would be dropped. Both pins hold, or the account is blocked."""
    if account is None or not account.fingerprints or verdict.status not in (Status.VERIFIED, Status.PINNED):
        return verdict
    import hashlib

    if not observation.leaf_der:
        raise ValueError("an observation without the leaf's bytes cannot meet a fingerprint")
    for pin in account.fingerprints:
        wanted = pin.replace(":", "").replace(" ", "").lower()
        name = _TOOL_HASHES.get(len(wanted) // 2)
        if name is not None and hashlib.new(name, observation.leaf_der, usedforsecurity=False).hexdigest() == wanted:
            return verdict
    setting = _FINGERPRINT_SETTING.get(account.tool.value, "cert_fingerprint")
    text = f"the certificate is not the one your {account.tool.value} config pins ({setting} in {account.source})"
    return Verdict(verdict.account, Status.BLOCKED, (Finding("cert-changed", text),), verdict.warnings)


def evaluate(
    profile: Profile,
    observation: Observation,
    *,
    expiry_warning_days: int,
    now: datetime,
    config: Account | None = None,
) -> Verdict:
    """Does this live connection (made to the pinned endpoint in the pinned mode) meet the profile —
    and the certificate pin of the tool's own config (`config`, see `tool_pin`)?"""
    findings: list[Finding] = []
    leaf, chain = observation.leaf, observation.chain

    # The floor never goes down: a session at a lower TLS version than at pin time is a downgrade.
    if tls_rank(observation.tls_version) < tls_rank(profile.tls_version):
        findings.append(
            Finding(
                "tls-version-downgrade",
                f"{observation.tls_version} negotiated, {profile.tls_version} when pinned {_date(profile.pinned_at)}",
            )
        )

    # Validity, chain and name are checked whatever the level (msmtp's fingerprint match skips
    # them; mailpin must not). A finding the user confirmed at pin time is tolerated only for a
    # key that was pinned with it: the same self-signed certificate, not any self-signed one.
    key_pinned = leaf.spki_sha256 in profile.spki_sha256
    for reason in chain.reasons:
        if reason in profile.accepted and key_pinned:
            continue
        text = _CHAIN_TEXT.get(reason, reason).format(name=observation.endpoint.name_to_check)
        if reason == "untrusted-chain" and chain.error:
            text = f"{text}: {chain.error}"
        findings.append(Finding(reason, text))

    cert_pinned = leaf.sha256 in profile.cert_sha256
    if profile.level is Level.LEAF and not cert_pinned:
        findings.append(Finding("cert-changed", f"a different certificate (pinned at level leaf): {leaf.sha256_colon}"))
    if profile.level is Level.KEY and not key_pinned:
        findings.append(Finding("key-changed", f"a different key (pinned at level key): {leaf.spki_sha256}"))
    # Level ca: one of the pinned CA keys must be in the validated chain (a ca profile without CA
    # keys pins nothing, so it can pass nothing). At leaf and key a change of CA is named beside
    # the change of certificate or key, so the user sees the whole story in one line.
    moved = not ca_keys(observation) & set(profile.ca_spki_sha256)
    changed = {Level.LEAF: not cert_pinned, Level.KEY: not key_pinned, Level.CA: not cert_pinned, Level.PKIX: False}
    if changed[profile.level] and moved and (profile.ca_spki_sha256 or profile.level is Level.CA):
        pinned_ca = f"pinned: {profile.issuer}"
        findings.append(Finding("ca-changed", f"certificate from a different CA: {leaf.issuer} ({pinned_ca})"))

    warnings: list[str] = []
    if profile.level in (Level.LEAF, Level.KEY) and not findings:
        left = leaf.not_after - now
        if left <= timedelta(days=expiry_warning_days):
            after = "a renewal" if profile.level is Level.LEAF else "a renewal with a new key"
            warnings.append(
                f"the pinned certificate expires on {_date(leaf.not_after)} (in {max(left.days, 0)} days); "
                f"{after} will need `mailpin accept {profile.account}`"
            )
    status = Status.BLOCKED if findings else Status.VERIFIED
    return tool_pin(Verdict(profile.account, status, tuple(findings), tuple(warnings)), config, observation)


def failed(profile: Profile | None, account: str, error: ProbeError) -> Verdict:
    """The probe itself did not complete: an attack or downgrade (69), or could not verify (75)."""
    text = f"{error.where}: {error.detail}" if error.where else error.detail  # the reason is shown apart
    if profile is not None and error.reason in ("starttls-missing", "starttls-refused", "mode-changed", "preauth"):
        text = f"{text} (pinned: {_pinned(profile)} on {_date(profile.pinned_at)})"
    status = Status.UNVERIFIED if error.reason in COULD_NOT_VERIFY else Status.BLOCKED
    return Verdict(account, status, (Finding(error.reason, text),))


def config_drift(profile: Profile, account: Account) -> Verdict | None:
    """Does the tool's config today ask for less than the profile remembers? (DESIGN §3)

    The profile remembers what was set up; a config edited to `tls off`, `SSLType None`,
    STARTTLS instead of Implicit TLS, another port or no certificate checks is a mismatch in
    itself, whatever the server does. A stronger mode or another host is not a downgrade, but
    the profile no longer describes the endpoint the tool will use: that endpoint is unpinned.
    """
    findings: list[Finding] = []
    was = _pinned(profile)
    if is_mailpin_tunnel(account):
        return None  # the tool connects through `mailpin tunnel`, which holds each session to the profile
    if account.host is None or account.port is None:
        # A tunnel, a socket, a proxy or an `eval`: the tool no longer connects where mailpin can look.
        how = account.transport or "an endpoint mailpin cannot see"
        return Verdict(
            profile.account,
            Status.BLOCKED,
            (Finding("config-downgrade", f"the config now connects through {how} (pinned: {was})"),),
        )
    if _STRENGTH[account.mode] < _STRENGTH[profile.mode]:
        findings.append(
            Finding("config-downgrade", f"the config now asks for {_MODE_WORDS[account.mode]} (pinned: {was})")
        )
    elif account.host is not None and account.host.lower() != profile.host.lower():
        findings.append(Finding("unpinned", f"the config now connects to {account.host} (pinned: {profile.host})"))
    elif account.mode is not profile.mode:
        findings.append(Finding("unpinned", f"the config now asks for {_MODE_WORDS[account.mode]} (pinned: {was})"))
    same_host = account.host is not None and account.host.lower() == profile.host.lower()
    if same_host and account.port is not None and account.port != profile.port:
        if not findings:
            findings.append(Finding("config-downgrade", f"the config now uses port {account.port} (pinned: {was})"))
        findings.append(Finding("port-changed", f"port {account.port} instead of {profile.port}"))
    name, pinned_name = (account.servername or account.host).lower(), (profile.servername or profile.host).lower()
    if same_host and name != pinned_name:
        # The tool would send this name and accept certificates for it; mailpin checks the pinned one.
        findings.append(
            Finding("config-downgrade", f"the config now checks certificates for {name} (pinned: {pinned_name})")
        )
    if profile.certcheck and not account.certcheck:
        findings.append(Finding("config-downgrade", "the config now turns certificate checks off"))
    capped = _version_cap(account)
    if capped is not None and tls_rank(capped[0]) < tls_rank(profile.tls_version):
        # RFC 8314 §5.2: the version seen at setup is a floor; a config that now caps TLS below it
        # asks for less, whatever the server offers (the session would be a tls-version-downgrade).
        findings.append(
            Finding(
                "config-downgrade",
                f"the config now caps TLS at {capped[0]} ({capped[1]}; pinned: {profile.tls_version})",
            )
        )
    if not findings:
        return None
    return Verdict(profile.account, Status.BLOCKED, tuple(findings))


def _version_cap(account: Account) -> tuple[str, str] | None:
    """The highest TLS version the tool's own settings allow, and where they say so; None: its default."""
    if not account.tls_versions or account.tls_versions == ("none",):
        return None  # no setting, or one no session can meet (refused with its line in net.tlsctx)
    found = account.tls_source("versions")
    where = f"{found[0]}, {found[1]}" if found else "the tool's TLS version settings"
    return max(account.tls_versions, key=tls_rank), where


ACCEPTABLE = ("untrusted-chain", "hostname-mismatch")  # findings a user may confirm for a key at pin time


# MAILPIN tunnel --config FILE TOOL:NAME: three paths (PATH_MAX 4096 each) and a name, quoted.
_TUNNEL_MAX = 32768


def is_mailpin_tunnel(account: Account) -> bool:
    """Does the tool connect through `mailpin tunnel` for this very account (mbsync `Tunnel`,
    offlineimap `transporttunnel`)? Exactly `MAILPIN tunnel [--config FILE] TOOL:NAME`, where MAILPIN
    is mailpin's script or `PYTHON [-P|-I] -m mailpin` and TOOL:NAME is this account: a command that
    merely mentions the words, or names another account, is any other tunnel (verified as such)."""
    import os.path
    import shlex

    transport = account.transport or ""
    if not transport.startswith("tunnel "):
        return False  # a socket, a proxy, a preauth tunnel: never mailpin's
    if len(transport) > _TUNNEL_MAX:
        return False  # longer than mailpin's own command can be; shlex is quadratic in a word's length
    try:
        words = shlex.split(transport[len("tunnel ") :])
    except ValueError:
        return False
    if "tunnel" not in words:
        return False
    at = words.index("tunnel")
    runner, rest = words[:at], words[at + 1 :]
    script = len(runner) == 1 and os.path.basename(runner[0]) == "mailpin"
    module = (
        len(runner) >= 3 and runner[-2:] == ["-m", "mailpin"] and all(flag in ("-P", "-I") for flag in runner[1:-2])
    )
    if not (script or module):
        return False
    if rest[:1] == ["--config"] and len(rest) == 3:
        rest = rest[2:]
    return rest == [account.key]


def first_use(
    account: str, observation: Observation, *, pin_if_trusted: bool, config: Account | None = None
) -> Verdict:
    """No profile yet. Like ssh's accept-new: a chain that validates for the name may be pinned
    unattended; anything else needs the user (RFC 8314 §5.3: an unvalidated certificate never
    meets a minimum level of confidentiality on its own)."""
    if not pin_if_trusted:
        return Verdict(account, Status.BLOCKED, (Finding("unpinned", "no TLS profile (pin it with `mailpin init`)"),))
    chain = observation.chain
    if chain.reasons:
        findings = [Finding("unpinned", "no TLS profile, and the certificate cannot be pinned unattended")]
        findings += [
            Finding(reason, _CHAIN_TEXT.get(reason, reason).format(name=observation.endpoint.name_to_check))
            for reason in chain.reasons
        ]
        return Verdict(account, Status.BLOCKED, tuple(findings))
    return tool_pin(Verdict(account, Status.PINNED), config, observation)  # never pinned past the tool's own pin


def pin_level(requested: Level | None, observation: Observation) -> Level:
    """The level a new pin gets (DESIGN §3): `ca` for a chain that validates for the name, `key`
    otherwise. A certificate that does not validate cannot be pinned at `ca`/`pkix` — those
    levels mean "a valid chain" — so it gets `key` (or `leaf` when asked for)."""
    trusted = not observation.chain.reasons
    wanted = requested or (Level.CA if trusted else Level.KEY)
    if not trusted and wanted in (Level.CA, Level.PKIX):
        return Level.KEY
    if wanted is Level.CA and not observation.chain.ca_certs:
        # The trust anchor is the server's own certificate (a trust file holding it): there is no
        # CA key to pin, and a ca pin without one would pin nothing. Its key is what was trusted.
        return Level.KEY
    return wanted


def make_profile(
    account: str,
    observation: Observation,
    level: Level,
    now: datetime,
    previous: Profile | None = None,
    *,
    certcheck: bool = True,
) -> Profile:
    """The profile a pin (or an accept) writes. With `previous`, the keys and certificates
    already pinned are kept too: servers behind a load balancer serve several at once."""
    leaf, endpoint = observation.leaf, observation.endpoint
    certs: tuple[str, ...] = (leaf.sha256,)
    keys: tuple[str, ...] = (leaf.spki_sha256,)
    cas = tuple(sorted(ca_keys(observation)))
    # What a confirmation can accept for this key: who signed it, and the name it carries — facts
    # of a self-managed certificate. Never time (expired, not yet valid): DESIGN §3 checks it always.
    accepted = tuple(reason for reason in observation.chain.reasons if reason in ACCEPTABLE)
    if previous is not None:
        certs = tuple(dict.fromkeys((*previous.cert_sha256, *certs)))
        keys = tuple(dict.fromkeys((*previous.spki_sha256, *keys)))
        cas = tuple(sorted({*previous.ca_spki_sha256, *cas}))
        accepted = tuple(dict.fromkeys((*previous.accepted, *accepted)))
    return Profile(
        account=account,
        protocol=endpoint.protocol,
        host=endpoint.host,
        port=endpoint.port,
        mode=endpoint.mode,
        servername=endpoint.servername,
        tls_version=observation.tls_version,
        level=level,
        cert_sha256=certs,
        spki_sha256=keys,
        ca_spki_sha256=cas,
        subject=leaf.subject,
        issuer=leaf.issuer,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
        pinned_at=now,
        trust=observation.chain.trust,
        accepted=accepted,
        certcheck=certcheck,
    )


def changes(profile: Profile, observation: Observation, now: datetime) -> list[str]:
    """What changed since the pin, in the words a user decides on (Certificate Patrol's classes,
    with amfora's "the old certificate would have expired …")."""
    leaf, said = observation.leaf, []
    name = observation.endpoint.name_to_check
    if leaf.sha256 in profile.cert_sha256:
        said.append("the same certificate as pinned")
    elif leaf.spki_sha256 in profile.spki_sha256:
        said.append("a new certificate with the same key (a renewal)")
    elif leaf.self_issued:
        said.append("a self-signed certificate")
    elif profile.ca_spki_sha256 and not ca_keys(observation) & set(profile.ca_spki_sha256):
        said.append(f"a new key from a different CA: {leaf.issuer} (pinned: {profile.issuer})")
    else:
        said.append("a new key from the same CA")
    said += [_CHAIN_TEXT[reason].format(name=name) for reason in observation.chain.reasons if reason in _CHAIN_TEXT]
    if tls_rank(observation.tls_version) < tls_rank(profile.tls_version):
        said.append(f"TLS version downgrade: {observation.tls_version} (pinned: {profile.tls_version})")
    if leaf.sha256 not in profile.cert_sha256:
        if profile.not_after < now:
            said.append(f"the pinned certificate had expired on {_date(profile.not_after)}: a replacement was due")
        else:
            days = (profile.not_after - now).days
            due = "it was due for renewal" if days <= 30 else "this change was not due"
            said.append(
                f"the pinned certificate would have expired on {_date(profile.not_after)} (in {days} days; {due})"
            )
    return said
