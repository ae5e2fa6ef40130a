"""trust/policy.py, exhaustively: every pin level against every kind of change, written down by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from mailpin.errors import ProbeError
from mailpin.model import (
    Account,
    CertFacts,
    ChainVerdict,
    Endpoint,
    Level,
    Mode,
    Observation,
    Profile,
    Protocol,
    Status,
    Tool,
)
from mailpin.trust import policy

# The policy's clock: every certificate and profile here is dated from it, and evaluate() is given it.
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
ENDPOINT = Endpoint("mail.example.org", 993, Protocol.IMAP, Mode.IMPLICIT)


def cert(
    sha: str, spki: str, *, issuer: str = "CN=CA one", days_left: int = 300, self_issued: bool = False
) -> CertFacts:
    return CertFacts(
        subject="CN=mail.example.org",
        issuer="CN=mail.example.org" if self_issued else issuer,
        sans=("DNS:mail.example.org",),
        serial="1",
        not_before=NOW - timedelta(days=60),
        not_after=NOW + timedelta(days=days_left),
        sha256=sha * 64,
        spki_sha256=spki * 43 + "=",
        self_issued=self_issued,
    )


def ca(spki: str, name: str) -> CertFacts:
    return replace(cert("f", spki, issuer=name), subject=name)


CA_ONE = (ca("a", "CN=CA one"), ca("r", "CN=Root one"))
CA_TWO = (ca("b", "CN=CA two"), ca("s", "CN=Root two"))


def observe(
    leaf: CertFacts,
    cas: tuple[CertFacts, ...] = CA_ONE,
    reasons: tuple[str, ...] = (),
    tls: str = "TLSv1.3",
    served: tuple[CertFacts, ...] | None = None,
) -> Observation:
    valid = not {"untrusted-chain", "expired", "not-yet-valid"} & set(reasons)
    chain = ChainVerdict(
        trust="system",
        chain_valid=valid,
        hostname_valid="hostname-mismatch" not in reasons,
        error=None if valid else "unable to get local issuer certificate",
        ca_certs=cas if valid else (),
        reasons=reasons,
    )
    return Observation(ENDPOINT, tls, "TLS_AES_256_GCM_SHA384", leaf, (leaf, *(served or ())), chain, "* OK")


PINNED_LEAF = cert("1", "K")
PINNED = observe(PINNED_LEAF)


def profile(level: Level, observation: Observation = PINNED) -> Profile:
    return policy.make_profile("mbsync:work", observation, level, NOW - timedelta(days=30))


# scenario -> the live observation
SCENARIOS = {
    "same": PINNED,
    "renewed-same-key": observe(cert("2", "K")),
    "new-key-same-ca": observe(cert("3", "N")),
    "new-key-other-valid-ca": observe(cert("4", "O", issuer="CN=CA two"), CA_TWO),
    "foreign-ca": observe(cert("5", "F", issuer="CN=Evil"), reasons=("untrusted-chain",)),
    "self-signed": observe(cert("6", "S", self_issued=True), reasons=("untrusted-chain",)),
    "expired": observe(cert("1", "K", days_left=-1), reasons=("expired",)),
    "not-yet-valid": observe(cert("1", "K"), reasons=("not-yet-valid",)),
    "wrong-name": observe(cert("1", "K"), reasons=("hostname-mismatch",)),
    "tls-1.2": observe(PINNED_LEAF, tls="TLSv1.2"),
}

# (scenario, level) -> reasons, in order. Written by hand from DESIGN §3.
EXPECTED: dict[str, dict[Level, tuple[str, ...]]] = {
    "same": {Level.LEAF: (), Level.KEY: (), Level.CA: (), Level.PKIX: ()},
    "renewed-same-key": {Level.LEAF: ("cert-changed",), Level.KEY: (), Level.CA: (), Level.PKIX: ()},
    "new-key-same-ca": {Level.LEAF: ("cert-changed",), Level.KEY: ("key-changed",), Level.CA: (), Level.PKIX: ()},
    "new-key-other-valid-ca": {
        Level.LEAF: ("cert-changed", "ca-changed"),
        Level.KEY: ("key-changed", "ca-changed"),
        Level.CA: ("ca-changed",),
        Level.PKIX: (),
    },
    "foreign-ca": {
        Level.LEAF: ("untrusted-chain", "cert-changed", "ca-changed"),
        Level.KEY: ("untrusted-chain", "key-changed", "ca-changed"),
        Level.CA: ("untrusted-chain", "ca-changed"),
        Level.PKIX: ("untrusted-chain",),
    },
    "self-signed": {
        Level.LEAF: ("untrusted-chain", "cert-changed", "ca-changed"),
        Level.KEY: ("untrusted-chain", "key-changed", "ca-changed"),
        Level.CA: ("untrusted-chain", "ca-changed"),
        Level.PKIX: ("untrusted-chain",),
    },
    "expired": {level: ("expired",) for level in Level},
    "not-yet-valid": {level: ("not-yet-valid",) for level in Level},
    "wrong-name": {level: ("hostname-mismatch",) for level in Level},
    "tls-1.2": {level: ("tls-version-downgrade",) for level in Level},
}


def test_the_table_covers_every_scenario_and_level() -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    assert all(set(row) == set(Level) for row in EXPECTED.values())


@pytest.mark.parametrize("level", list(Level), ids=lambda level: level.value)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_evaluate(scenario: str, level: Level) -> None:
    verdict = policy.evaluate(profile(level), SCENARIOS[scenario], expiry_warning_days=14, now=NOW)
    want = EXPECTED[scenario][level]
    assert verdict.reasons == want
    assert verdict.status is (Status.BLOCKED if want else Status.VERIFIED)
    assert all(finding.text for finding in verdict.findings)


def test_a_renewal_served_beside_the_pinned_certificate_passes_after_accept_add() -> None:
    """Load-balanced servers (Gmail-style): `accept --add` keeps the old certificate pinned too."""
    first = profile(Level.LEAF)
    both = policy.make_profile("mbsync:work", SCENARIOS["renewed-same-key"], Level.LEAF, NOW, previous=first)
    for live in (PINNED, SCENARIOS["renewed-same-key"]):
        assert policy.evaluate(both, live, expiry_warning_days=14, now=NOW).status is Status.VERIFIED
    assert policy.evaluate(both, SCENARIOS["new-key-same-ca"], expiry_warning_days=14, now=NOW).reasons == (
        "cert-changed",
    )


def test_untrusted_certificate_pinned_with_confirmation_passes_only_for_that_key() -> None:
    own = observe(cert("7", "M", self_issued=True), reasons=("untrusted-chain",))
    pinned = policy.make_profile("msmtp:home", own, policy.pin_level(None, own), NOW)
    assert pinned.level is Level.KEY and pinned.accepted == ("untrusted-chain",)
    assert policy.evaluate(pinned, own, expiry_warning_days=14, now=NOW).status is Status.VERIFIED
    renewed = observe(cert("8", "M", self_issued=True), reasons=("untrusted-chain",))
    assert policy.evaluate(pinned, renewed, expiry_warning_days=14, now=NOW).status is Status.VERIFIED
    other = observe(cert("9", "X", self_issued=True), reasons=("untrusted-chain",))
    assert policy.evaluate(pinned, other, expiry_warning_days=14, now=NOW).reasons == (
        "untrusted-chain",
        "key-changed",
    )
    # Accepting "untrusted" does not accept an expired certificate with the same key.
    stale = observe(cert("7", "M", self_issued=True, days_left=-2), reasons=("expired", "untrusted-chain"))
    assert policy.evaluate(pinned, stale, expiry_warning_days=14, now=NOW).reasons == ("expired",)


@pytest.mark.parametrize(
    ("level", "days_left", "warned"),
    [
        (Level.LEAF, 10, True),
        (Level.KEY, 14, True),
        (Level.KEY, 15, False),
        (Level.CA, 3, False),
        (Level.PKIX, 3, False),
    ],
)
def test_expiry_warning_never_blocks(level: Level, days_left: int, warned: bool) -> None:
    live = observe(cert("1", "K", days_left=days_left))
    verdict = policy.evaluate(profile(level, live), live, expiry_warning_days=14, now=NOW)
    assert verdict.status is Status.VERIFIED
    assert bool(verdict.warnings) is warned
    if warned:
        assert "mailpin accept mbsync:work" in verdict.warnings[0]


def account(**changes: object) -> Account:
    base = Account(Tool.MBSYNC, "work", Protocol.IMAP, "mail.example.org", 993, Mode.IMPLICIT, "rc:1")
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "want"),
    [
        ({}, None),
        ({"host": "MAIL.example.org"}, None),  # host names are case-insensitive
        ({"mode": Mode.NONE, "port": 143}, ("config-downgrade", "port-changed")),
        ({"mode": Mode.STARTTLS, "port": 143}, ("config-downgrade", "port-changed")),
        ({"mode": Mode.STARTTLS}, ("config-downgrade",)),
        ({"port": 1993}, ("config-downgrade", "port-changed")),
        ({"certcheck": False}, ("config-downgrade",)),
        ({"host": "imap.elsewhere.example"}, ("unpinned",)),
        # The tool now connects where mailpin cannot look: never "verified" against the old endpoint.
        ({"host": None, "port": None, "transport": "tunnel openssl s_client"}, ("config-downgrade",)),
        ({"port": None}, ("config-downgrade",)),
        ({"servername": "evil.example"}, ("config-downgrade",)),
        ({"servername": "MAIL.example.org"}, None),
        # The tool's own TLS settings (mbsync SSLVersions, offlineimap ssl_version) below the pinned 1.3.
        ({"tls_versions": ("TLSv1.2",)}, ("config-downgrade",)),
        ({"tls_versions": ("TLSv1.2", "TLSv1.3")}, None),
        ({"tls_versions": ("none",)}, None),  # no session at all: refused in net.tlsctx, naming the line
    ],
)
def test_config_drift_against_an_implicit_tls_pin(changes: dict[str, object], want: tuple[str, ...] | None) -> None:
    verdict = policy.config_drift(profile(Level.CA), account(**changes))
    assert (verdict.reasons if verdict else None) == want
    if verdict is not None:
        assert verdict.status is Status.BLOCKED


def test_a_version_cap_in_the_config_names_the_setting_and_its_line() -> None:
    capped = account(tls_versions=("TLSv1.2",), tls_sources=(("versions", "SSLVersions", "/home/u/.mbsyncrc:7"),))
    verdict = policy.config_drift(profile(Level.CA), capped)
    assert verdict is not None
    assert verdict.detail == "the config now caps TLS at TLSv1.2 (SSLVersions, /home/u/.mbsyncrc:7; pinned: TLSv1.3)"


def test_config_upgrade_from_starttls_is_a_new_endpoint_not_a_downgrade() -> None:
    starttls = replace(profile(Level.CA), mode=Mode.STARTTLS, port=143)
    verdict = policy.config_drift(starttls, account())
    assert verdict is not None and verdict.reasons == ("unpinned", "port-changed")


def test_failures_map_to_block_or_could_not_verify() -> None:
    pinned = profile(Level.CA)
    stripped = policy.failed(pinned, "mbsync:work", ProbeError("starttls-missing", "STARTTLS not offered"))
    assert stripped.status is Status.BLOCKED and stripped.reasons == ("starttls-missing",)
    assert "pinned: Implicit TLS on mail.example.org:993" in stripped.detail
    down = policy.failed(pinned, "mbsync:work", ProbeError("timeout", "server went silent"))
    assert down.status is Status.UNVERIFIED and down.reasons == ("timeout",)


def test_first_use() -> None:
    trusted, untrusted = PINNED, SCENARIOS["self-signed"]
    assert policy.first_use("a:b", trusted, pin_if_trusted=True).status is Status.PINNED
    blocked = policy.first_use("a:b", untrusted, pin_if_trusted=True)
    assert blocked.status is Status.BLOCKED and blocked.reasons == ("unpinned", "untrusted-chain")
    refused = policy.first_use("a:b", trusted, pin_if_trusted=False)
    assert refused.status is Status.BLOCKED and refused.reasons == ("unpinned",)


@pytest.mark.parametrize(
    ("requested", "trusted", "want"),
    [
        (None, True, Level.CA),
        (None, False, Level.KEY),
        (Level.PKIX, True, Level.PKIX),
        (Level.CA, False, Level.KEY),
        (Level.PKIX, False, Level.KEY),
        (Level.LEAF, False, Level.LEAF),
        (Level.LEAF, True, Level.LEAF),
    ],
)
def test_pin_level(requested: Level | None, trusted: bool, want: Level) -> None:
    live = PINNED if trusted else SCENARIOS["self-signed"]
    assert policy.pin_level(requested, live) is want


def test_make_profile_records_the_floor_the_keys_and_the_ca_keys() -> None:
    made = profile(Level.CA)
    assert made.tls_version == "TLSv1.3"
    assert made.cert_sha256 == (PINNED_LEAF.sha256,) and made.spki_sha256 == (PINNED_LEAF.spki_sha256,)
    assert set(made.ca_spki_sha256) == {ca.spki_sha256 for ca in CA_ONE}
    assert made.endpoint == ENDPOINT and made.accepted == ()


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("same", "the same certificate"),
        ("renewed-same-key", "same key (a renewal)"),
        ("new-key-same-ca", "a new key from the same CA"),
        ("new-key-other-valid-ca", "a different CA"),
        ("self-signed", "self-signed"),
        ("expired", "has expired"),
        ("wrong-name", "not for mail.example.org"),
        ("tls-1.2", "TLS version downgrade"),
    ],
)
def test_changes_are_classified_in_words(scenario: str, words: str) -> None:
    said = policy.changes(profile(Level.CA), SCENARIOS[scenario], NOW)
    assert any(words in line for line in said), said
    if scenario not in ("same", "expired", "wrong-name", "tls-1.2"):
        assert any("would have expired" in line and "not due" in line for line in said)


def test_certificate_checks_off_at_pin_time_is_not_a_later_downgrade() -> None:
    """offlineimap's STARTTLS path never checks certificates: the profile remembers that."""
    made = policy.make_profile("offlineimap:x", PINNED, Level.CA, NOW, certcheck=False)
    assert policy.config_drift(made, account(certcheck=False)) is None
    assert policy.config_drift(profile(Level.CA), account(certcheck=False)) is not None


def test_a_renewal_that_keeps_the_key_passes_key_level_even_from_another_ca() -> None:
    moved = observe(cert("2", "K", issuer="CN=CA two"), CA_TWO)
    assert policy.evaluate(profile(Level.KEY), moved, expiry_warning_days=14, now=NOW).status is Status.VERIFIED
    assert policy.evaluate(profile(Level.CA), moved, expiry_warning_days=14, now=NOW).reasons == ("ca-changed",)


def test_a_chain_anchored_in_the_servers_own_certificate_is_pinned_by_key() -> None:
    """A trust file holding the server's certificate itself: the validated path has no CA, so a `ca`
    pin would pin nothing. It gets `key`; a `ca` profile without CA keys (hand-made) passes nothing."""
    anchored = observe(cert("1", "K", self_issued=True), cas=())
    assert policy.pin_level(None, anchored) is Level.KEY
    assert policy.pin_level(Level.CA, anchored) is Level.KEY
    assert policy.pin_level(Level.PKIX, anchored) is Level.PKIX
    empty = replace(profile(Level.CA), ca_spki_sha256=())
    other = observe(cert("4", "O", issuer="CN=CA two"), CA_TWO)
    assert policy.evaluate(empty, other, expiry_warning_days=14, now=NOW).reasons == ("ca-changed",)


def test_certificates_merely_sent_along_are_not_taken_for_the_ca() -> None:
    """With a valid chain the CA keys are the validated path's, not extra certificates the server sent."""
    stray = ca("z", "CN=Stray")
    live = observe(cert("1", "K"), CA_ONE, served=(stray,))
    assert policy.ca_keys(live) == {c.spki_sha256 for c in CA_ONE}


@pytest.mark.parametrize(
    ("transport", "key", "yes"),
    [
        ('tunnel "/home/me/.local/bin/mailpin" tunnel mbsync:work', "mbsync:work", True),
        ("tunnel /usr/bin/python3 -P -m mailpin tunnel --config /home/me/.mbsyncrc mbsync:work", "mbsync:work", True),
        ("tunnel mailpin tunnel mbsync:other", "mbsync:work", False),  # another account's profile
        ("tunnel openssl s_client -connect evil:993 # mailpin tunnel", "mbsync:work", False),
        ("tunnel sh -c 'mailpin tunnel mbsync:work; nc evil 993'", "mbsync:work", False),
        ("preauth tunnel mailpin tunnel offlineimap:work", "offlineimap:work", False),  # logged in already
        ("socket /tmp/mailpin tunnel", "msmtp:work", False),
        ("tunnel mailpin tunnel --config", "mbsync:work", False),
    ],
)
def test_only_mailpins_own_tunnel_for_this_account_counts(transport: str, key: str, yes: bool) -> None:
    tool, _, name = key.partition(":")
    account = Account(Tool(tool), name, Protocol.IMAP, None, None, Mode.NONE, "rc:1", transport=transport)
    assert policy.is_mailpin_tunnel(account) is yes
