"""The tool's own TLS settings hold on mailpin's session, or the account is refused (issue 17 item 2).

`mailpin run` puts its tunnel in and turns the tool's TLS off inside it (mbsync `SSLType None`,
offlineimap `ssl=no`): the tool's `SSLVersions`/`TLSVersions`, `CipherString`, `ssl_version`,
`sslcacertfile` and client certificate would be dropped if mailpin's session did not apply them.
Each real case: a server that the tool alone refuses because of the setting is refused through
`mailpin run` with no LOGIN reaching it — on the tunnel's own session (a split server shows the
probe a benign server, the tunnel the one the setting refuses); a sibling the tool alone accepts
passes through mailpin.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mailpin.configs import mbsync
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool
from mailpin.net.tlsctx import observing_context
from tests.conftest import need
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.lab.split import SplitServer
from tests.test_campaign import write_config
from tests.test_enforce_real import leaked, tool
from tests.test_pins_real import cli
from tests.test_run_real import shim_env

# -- the readers: each setting read the way the tool reads it ---------------------------------------------


def mbsync_account(body: str) -> Account:
    text = f"IMAPAccount lab\nHost localhost\nUser test\nPass secret\nSSLType IMAPS\n{body}"
    return mbsync.parse(text, "/home/u/.mbsyncrc", "/home/u").accounts[0]


@pytest.mark.parametrize(
    ("body", "offered"),
    [
        ("", ()),  # the library's default: mailpin's own range (TLS 1.2 and 1.3)
        ("SSLVersions TLSv1.3\n", ("TLSv1.3",)),
        ("SSLVersions TLSv1.2 TLSv1.3\n", ("TLSv1.2", "TLSv1.3")),
        ("SSLVersions TLSv1 TLSv1.3\n", ("TLSv1",)),  # OpenSSL: the lowest contiguous run only
        ("SSLVersions SSLv3\n", ("none",)),
        ("TLSVersions +1.3 -1.2\n", ("TLSv1.3",)),  # isync 1.5: from its default, TLS 1.2 and 1.3
        ("TLSVersions -1.3\n", ("TLSv1.2",)),
        ("SSLVersions TLSv1.2\nTLSVersions +1.3\n", ("TLSv1.2", "TLSv1.3")),
    ],
)
def test_mbsync_versions_are_the_range_openssl_offers(body: str, offered: tuple[str, ...]) -> None:
    assert mbsync_account(body).tls_versions == offered


def test_mbsync_cipher_string_and_client_certificate_are_carried_with_their_lines() -> None:
    account = mbsync_account("CipherString ECDHE+AESGCM\nClientCertificate ~/c.pem\nClientKey ~/k.pem\n")
    assert account.ciphers == "ECDHE+AESGCM"
    assert (account.client_cert, account.client_key) == ("/home/u/c.pem", "/home/u/k.pem")
    assert ("ciphers", "CipherString", "/home/u/.mbsyncrc:6") in account.tls_sources
    # socket.c presents a certificate only with its key: one of them alone presents nothing.
    alone = mbsync_account("ClientCertificate ~/c.pem\n")
    assert (alone.client_cert, alone.client_key) == (None, None)


def offlineimap_account(home: Path, options: str) -> Account:
    from mailpin.configs import offlineimap
    from mailpin.env import Env

    (home / ".offlineimaprc").write_text(
        "[general]\naccounts = lab\n\n[Account lab]\nlocalrepository = l\nremoterepository = r\n\n"
        "[Repository l]\ntype = Maildir\nlocalfolders = ~/m\n\n"
        f"[Repository r]\ntype = IMAP\nremotehost = localhost\nremoteuser = test\n{options}"
    )
    return offlineimap.load([], Env.from_os()).accounts[0]


def test_offlineimap_ssl_version_and_client_certificate_are_carried(isolated_env: Path) -> None:
    options = "sslcacertfile = OS-DEFAULT\ntls_level = tls_secure\nssl_version = tls1_2\nsslclientcert = ~/c.pem\n"
    account = offlineimap_account(isolated_env, options)
    assert account.tls_versions == ("TLSv1.2",) and account.client_cert == f"{isolated_env}/c.pem"
    assert account.trust_file == "/etc/ssl/certs/ca-certificates.crt"  # OS-DEFAULT on Debian
    assert ("versions", "ssl_version", f"{isolated_env}/.offlineimaprc:18") in account.tls_sources
    # The STARTTLS path (ssl = no) applies none of them: imaplib2.starttls() is called without arguments.
    plain = offlineimap_account(isolated_env, "ssl = no\nssl_version = tls1_2\nsslclientcert = ~/c.pem\n")
    assert (plain.tls_versions, plain.client_cert) == ((), None)


# -- the one place contexts are made: applied, or refused naming file:line and the setting ------------------

BASE = Account(tool=Tool.MBSYNC, name="lab", protocol=Protocol.IMAP, host="localhost", port=993,
               mode=Mode.IMPLICIT, source="/home/u/.mbsyncrc:1")  # fmt: skip


def test_versions_and_ciphers_narrow_mailpins_context() -> None:
    context = observing_context(replace(BASE, tls_versions=("TLSv1.3",)))
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    both = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    context = observing_context(replace(BASE, tls_versions=both, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:AES128-SHA"))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2  # mailpin's floor stays (RFC 8996)
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert tls12 == ["ECDHE-ECDSA-AES256-GCM-SHA384"]  # AES128-SHA: the tool's, but never mailpin's
    # Only ciphers mailpin excludes: TLS 1.3 alone remains, never a cipher outside either list.
    assert observing_context(replace(BASE, ciphers="AES128-SHA")).minimum_version is ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tls_versions": ("TLSv1", "TLSv1.1")}, "SSLVersions: the tool would speak TLS 1.1 at most"),
        ({"tls_versions": ("none",)}, "SSLVersions: no TLS version is left enabled"),
        ({"ciphers": "NO-SUCH-CIPHER"}, "CipherString: OpenSSL selects no TLS 1.2 cipher"),
        ({"ciphers": "AES128-SHA", "tls_versions": ("TLSv1.2",)}, "CipherString: 'AES128-SHA' leaves no TLS 1.2"),
        ({"client_cert": "/nonexistent/c.pem", "client_key": "/nonexistent/k.pem"}, "ClientKey: cannot load"),
        ({"client_key": "/nonexistent/k.pem"}, "ClientKey: a client key without its certificate"),
        ({"system_trust": False}, "SystemCertificates: no trust file and the system store off"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_setting(changes: dict[str, object], words: str) -> None:
    rc = "/home/u/.mbsyncrc"
    sources = (("versions", "SSLVersions", f"{rc}:7"), ("ciphers", "CipherString", f"{rc}:8"),
               ("client", "ClientKey", f"{rc}:9"), ("trust", "SystemCertificates", f"{rc}:10"))  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        observing_context(replace(BASE, tls_sources=sources, **changes))  # type: ignore[arg-type]
    assert raised.value.exit_status == 78 and raised.value.source == "/home/u/.mbsyncrc"
    assert words in raised.value.problem and raised.value.line in (7, 8, 9, 10)


def test_an_encrypted_client_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.lab.pki import crafted

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "c.pem").write_bytes(crafted("client", key).public_bytes(serialization.Encoding.PEM))
    locked = serialization.BestAvailableEncryption(b"passphrase")
    pkcs8 = serialization.PrivateFormat.PKCS8
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, locked))
    client = replace(BASE, client_cert=str(tmp_path / "c.pem"), client_key=str(tmp_path / "k.pem"))
    with pytest.raises(ConfigError, match="encrypted: mailpin cannot ask for its passphrase"):
        observing_context(client)
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    assert observing_context(client).minimum_version is ssl.TLSVersion.TLSv1_2  # presented, as by the tool


# -- the real tools, on loopback ------------------------------------------------------------------------


def imap_server(
    pki, variant: str = "good", maximum: ssl.TLSVersion | None = None, *, minimum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> HostileServer:  # fmt: skip
    cert = pki.cert(variant)
    server = HostileServer(hostile.benign("imap"), chain_pem=cert.chain_pem, key_pem=cert.key_pem, implicit_tls=True)
    serve(server, pki, variant, maximum, minimum=minimum, ciphers=ciphers)
    return server


def serve(
    server: HostileServer, pki, variant: str, maximum: ssl.TLSVersion | None = None, *,
    minimum: ssl.TLSVersion | None = None, ciphers: str | None = None,
) -> None:  # fmt: skip
    """From the next handshake on: this certificate, TLS versions and (TLS 1.2) ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum or ssl.TLSVersion.TLSv1_2
    context.maximum_version = maximum or ssl.TLSVersion.TLSv1_3
    if ciphers is not None:
        context.set_ciphers(ciphers)
    cert = pki.cert(variant)
    context.load_cert_chain(cert.chain_pem, cert.key_pem)
    server.tls_context = context


def mbsyncrc(home: Path, pki, port: int, extra: str) -> None:
    """The lab's mbsync account (Implicit TLS, the test CA), with the IMAPAccount lines `extra` too."""
    write_config("mbsync", home, port, True, pki.ca_pem)
    rc = home / ".mbsyncrc"
    rc.write_text(rc.read_text().replace("SystemCertificates no\n", f"SystemCertificates no\n{extra}\n", 1))


def offlineimaprc(home: Path, pki, port: int, trust: str) -> None:
    """The lab's offlineimap account (`ssl = yes`), its `sslcacertfile` line replaced by `trust`."""
    write_config("offlineimap", home, port, True, pki.ca_pem)
    rc = home / ".offlineimaprc"
    rc.write_text(rc.read_text().replace(f"sslcacertfile = {pki.ca_pem}\n", trust, 1))


# tool, its setting when pinned (at TLS 1.2, the floor), the setting under test, what the probe's
# server serves after the pin (variant, highest version), what the tool's own session meets (variant,
# highest and lowest version, TLS 1.2 ciphers).
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
CASES = {
    "mbsync-SSLVersions": (
        "mbsync", "SSLVersions TLSv1.2 TLSv1.3", "SSLVersions TLSv1.3", ("good", None),
        ("good", TLS12, None, None),
    ),
    "mbsync-CipherString": (
        "mbsync", "SSLVersions TLSv1.2", "SSLVersions TLSv1.2\nCipherString ECDHE-ECDSA-AES256-GCM-SHA384",
        ("good", None), ("good", TLS12, None, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ),
    "offlineimap-ssl_version": (
        "offlineimap", "sslcacertfile = {ca}\n", "sslcacertfile = {ca}\ntls_level = tls_secure\nssl_version = tls1_2\n",
        ("good", None), ("good", None, TLS13, None),
    ),
    "offlineimap-sslcacertfile": (
        "offlineimap", "sslcacertfile = {foreign}\n", "sslcacertfile = {foreign}\n", ("foreign-ca", None),
        ("good", None, None, None),
    ),
}  # fmt: skip


def configure(name: str, home: Path, pki, port: int, setting: str) -> tuple[list[str], str]:
    """Write the tool's config; the command that runs it, and the account's key."""
    if name == "mbsync":
        mbsyncrc(home, pki, port, setting)
        return ["mbsync", "-a"], "mbsync:lab"
    offlineimaprc(home, pki, port, setting.format(ca=pki.ca_pem, foreign=pki.foreign_ca_pem))
    return ["offlineimap", "-o", "-u", "quiet", "-a", "lab"], "offlineimap:lab"


def alone(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The real tool by itself (no shim on this PATH), under the suite's clock and home."""
    import os

    return tool([need(argv[0]), *argv[1:]], dict(os.environ))


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_setting_refuses_never_gets_a_login_through_the_tunnel(
    isolated_env: Path, shims: Path, pki, case: str
) -> None:
    """The probe meets a server the setting allows; the tool's own session (the tunnel's) one the
    setting refuses. Before, mailpin's session dropped the setting and relayed the LOGIN."""
    name, pinned, setting, benign, refused = CASES[case]
    need(name)
    variant, maximum, minimum, ciphers = refused
    with (
        imap_server(pki, *benign) as good,
        imap_server(pki, variant, maximum, minimum=minimum, ciphers=ciphers) as evil,
        SplitServer(good.port, evil.port) as split,
    ):
        # The tool alone, straight to the server its setting refuses: no login.
        argv, key = configure(name, isolated_env, pki, evil.port, setting)
        alone(argv)
        assert evil.connections >= 1 and not leaked(evil), evil.received
        # Pinned with a setting that allowed it (the floor: TLS 1.2), then the setting under test.
        serve(good, pki, benign[0], TLS12)
        configure(name, isolated_env, pki, split.port, pinned)
        assert cli("init", "--yes", key)[0] == 0
        serve(good, pki, *benign)
        configure(name, isolated_env, pki, split.port, setting)
        # One connection (run/relay.py): the run's only session meets the server the setting refuses.
        split.connections, split.benign_connections = 0, 0
        done = tool(argv, shim_env(shims))
        assert split.connections == 1, done.stderr
        assert done.returncode != 0 and not leaked(evil), evil.received
        assert SAYS[case] in done.stderr, done.stderr  # and the block line names the setting that held


SAYS = {
    "mbsync-SSLVersions": b"mailpin's session keeps to the tool's own SSLVersions (",
    "mbsync-CipherString": b"CipherString (",
    "offlineimap-ssl_version": b"mailpin's session keeps to the tool's own ssl_version (",
    "offlineimap-sslcacertfile": b"[untrusted-chain, ca-changed]",
}


PASSING = {
    "mbsync-SSLVersions": ("mbsync", "SSLVersions TLSv1.3"),
    "mbsync-CipherString": ("mbsync", "SSLVersions TLSv1.2\nCipherString ECDHE-ECDSA-AES256-GCM-SHA384"),
    "offlineimap-ssl_version": ("offlineimap", "sslcacertfile = {ca}\ntls_level = tls_secure\nssl_version = tls1_2\n"),
    "offlineimap-sslcacertfile": ("offlineimap", "sslcacertfile = {ca}\n"),
}


@pytest.mark.parametrize("case", sorted(PASSING))
def test_what_the_setting_allows_passes_through_mailpin(
    isolated_env: Path, shims: Path, dovecot_server, pki, case: str
) -> None:
    name, setting = PASSING[case]
    need(name)
    argv, _ = configure(name, isolated_env, pki, dovecot_server.imaps_port, setting)
    done = alone(argv)
    assert done.returncode == 0, done.stderr
    done = tool(argv, shim_env(shims))  # unpinned: pinned on first use, then through the tunnel
    assert done.returncode == 0, done.stderr


def test_mbsync_trusting_nothing_is_refused_naming_the_line(isolated_env: Path, pki, dovecot_server) -> None:
    """`SystemCertificates no` without `CertificateFile`: mbsync accepts no certificate at all;
    mailpin does not trust one in its place (not even with --accept-untrusted)."""
    need("mbsync")
    mbsyncrc(isolated_env, pki, dovecot_server.imaps_port, "")
    rc = isolated_env / ".mbsyncrc"
    rc.write_text(rc.read_text().replace(f"CertificateFile {pki.ca_pem}\n", ""))
    assert alone(["mbsync", "-a"]).returncode != 0
    code, out, err = cli("check", "mbsync:lab")
    assert code == 78 and f"{rc}:7: SystemCertificates: no trust file" in out + err, out + err
    assert cli("init", "--yes", "--accept-untrusted", "mbsync:lab")[0] != 0


def test_the_pinned_floor_holds_on_the_tunnels_own_session(isolated_env: Path, shims: Path, pki) -> None:
    """Pinned at TLS 1.3; the probe meets TLS 1.3, the tool's own session a server stuck at 1.2."""
    need("mbsync")
    with imap_server(pki) as good, imap_server(pki, "good", TLS12) as evil, SplitServer(good.port, evil.port) as split:
        mbsyncrc(isolated_env, pki, split.port, "")
        assert cli("init", "--yes", "mbsync:lab")[0] == 0
        split.connections, split.benign_connections = 0, 0  # the run's one session meets the 1.2 server
        done = tool(["mbsync", "-a"], shim_env(shims))
        assert split.connections == 1 and evil.handshakes == 1, done.stderr
        assert b"tls-version-downgrade" in done.stderr and not leaked(evil), evil.received


def client_certificate(directory: Path, passphrase: bytes | None) -> tuple[Path, Path]:
    """A self-signed client certificate and its key (encrypted with `passphrase`, if given)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.lab.pki import crafted

    key = ec.generate_private_key(ec.SECP256R1())
    cert, key_pem = directory / "client.pem", directory / "client-key.pem"
    cert.write_bytes(crafted("mailpin test client", key).public_bytes(serialization.Encoding.PEM))
    locked = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, locked))
    return cert, key_pem


CLIENT = {
    "mbsync": "ClientCertificate {cert}\nClientKey {key}",
    "offlineimap": "sslcacertfile = {ca}\nsslclientcert = {cert}\nsslclientkey = {key}\n",
}


@pytest.mark.parametrize(
    ("name", "encrypted"),
    [("mbsync", False), ("mbsync", True), ("offlineimap", False)],
    ids=["mbsync-presented", "mbsync-encrypted-key-refused", "offlineimap-presented"],
)
def test_the_tunnel_presents_the_tools_client_certificate(
    isolated_env: Path, shims: Path, pki, tmp_path: Path, name: str, encrypted: bool
) -> None:
    """A server that requires the tool's client certificate gets it from mailpin's session (probe and
    tunnel) as from the tool alone; a key behind a passphrase is refused (78) before any connection."""
    need(name)
    cert, key = client_certificate(tmp_path, b"passphrase" if encrypted else None)
    with imap_server(pki) as server:
        assert server.tls_context is not None
        server.tls_context.verify_mode = ssl.CERT_REQUIRED
        server.tls_context.load_verify_locations(cert)
        setting = CLIENT[name].format(cert=cert, key=key, ca="{ca}")
        argv, _ = configure(name, isolated_env, pki, server.port, setting)
        if not encrypted:
            alone(argv)
            assert leaked(server), server.tls_failures  # the tool alone presents it, and logs in
            server.received.clear()
        done = tool(argv, shim_env(shims))  # unpinned: pinned on first use, then the tunnel
        if encrypted:
            assert done.returncode == 78 and server.connections == 0, done.stderr
            assert f"{isolated_env}/.mbsyncrc:10: ClientKey: the client key is encrypted".encode() in done.stderr
        else:
            assert server.handshakes >= 2 and leaked(server), done.stderr  # alone, then the run's one session


def test_offlineimap_os_default_is_the_distributions_bundle_alone(
    isolated_env: Path, shims: Path, pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sslcacertfile = OS-DEFAULT` is one file (utils/distro_utils.py), never SSL_CERT_FILE: with the
    lab CA there, offlineimap alone refuses the lab's server, and so does mailpin — no LOGIN."""
    need("offlineimap")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_pem))
    with imap_server(pki) as server:
        argv, key = configure("offlineimap", isolated_env, pki, server.port, "sslcacertfile = OS-DEFAULT\n")
        alone(argv)
        assert server.connections >= 1 and not leaked(server), server.received
        done = tool(argv, shim_env(shims))
        assert done.returncode != 0 and b"untrusted-chain" in done.stderr and not leaked(server), server.received
        assert cli("check", key)[0] != 0


@pytest.mark.parametrize("case", ["the-leaf-itself", "issued-by-a-non-ca"])
def test_mbsync_certificate_file_trusts_no_more_through_mailpin(
    isolated_env: Path, shims: Path, pki, tmp_path: Path, case: str
) -> None:
    """socket.c: a CertificateFile certificate that is no CA (X509_check_ca) is trusted only as the
    exact server certificate, never as an issuer. mailpin agrees: the certificate itself passes (and
    mailpin checks its dates and name as well), a leaf it signed is refused, as by mbsync alone."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from tests.lab.pki import crafted, write_served

    need("mbsync")
    server_auth = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    leafish = ((x509.BasicConstraints(ca=False, path_length=None), True), server_auth,
               (x509.SubjectAlternativeName([x509.DNSName("localhost")]), False))  # fmt: skip
    trusted_key = ec.generate_private_key(ec.SECP256R1())
    trusted = crafted("localhost", trusted_key, *leafish)
    served, served_key = trusted, trusted_key
    if case == "issued-by-a-non-ca":
        served_key = ec.generate_private_key(ec.SECP256R1())
        served = crafted("localhost", served_key, *leafish, issuer=(trusted.subject, trusted_key))
    chain, key = write_served(tmp_path, served, served_key)
    (tmp_path / "trusted.pem").write_bytes(trusted.public_bytes(serialization.Encoding.PEM))
    with HostileServer(hostile.benign("imap"), chain_pem=chain, key_pem=key, implicit_tls=True) as server:
        mbsyncrc(isolated_env, pki, server.port, "")
        rc = isolated_env / ".mbsyncrc"
        rc.write_text(rc.read_text().replace(str(pki.ca_pem), str(tmp_path / "trusted.pem")))
        alone(["mbsync", "-a"])
        accepted = bool(leaked(server))
        assert accepted is (case == "the-leaf-itself"), server.received
        server.received.clear()
        done = tool(["mbsync", "-a"], shim_env(shims))  # unpinned: pinned on first use when it validates
        assert bool(leaked(server)) is accepted, done.stderr


def test_the_tunnel_applies_offlineimap_k_edits_of_this_run(isolated_env: Path, pki) -> None:
    """`offlineimap -k Repository_R:ssl_version=…` edits the account for that run: the tunnel, given
    the run's -k options, keeps to them as the pre-flight probe did (none is dropped)."""
    from mailpin.commands import tunnel as tunnel_command
    from mailpin.env import Env
    from mailpin.model import Status

    def opened(*edits: str):  # type: ignore[no-untyped-def]
        options = [word for edit in edits for word in ("-k", f"Repository_lab-remote:{edit}")]
        _, session = tunnel_command.open_verified(Env.from_os(), "offlineimap:lab", str(rc), options)
        if session.chan is not None:
            session.chan.close()
        return session.outcome.verdict

    with imap_server(pki, minimum=TLS13) as server:
        configure("offlineimap", isolated_env, pki, server.port, "sslcacertfile = {ca}\n")
        rc = isolated_env / ".offlineimaprc"
        verdict = opened("tls_level=tls_secure", "ssl_version=tls1_2")  # TLS 1.2 only: this server has 1.3 only
        assert verdict.status is Status.BLOCKED and "ssl_version" in verdict.detail, verdict
        verdict = opened("ssl_version=tls1")
        assert (
            verdict.status is Status.CONFIG_ERROR
            and "ssl_version (offlineimap -k): the tool would speak TLS 1.0 at most" in verdict.why
        ), verdict
        assert opened().status is Status.PINNED and server.handshakes == 1  # the file alone: TLS 1.3 passes


def test_mailpin_run_hands_the_runs_k_edits_to_the_tunnel(isolated_env: Path, shims: Path, pki) -> None:
    """The whole path: `mailpin run offlineimap -k …:ssl_version=tls1_2`. The probe meets a server
    that allows TLS 1.2; the tunnel's own session one that speaks TLS 1.3 only, which offlineimap
    alone, with that -k, refuses. The tunnel is told the run's -k, so no LOGIN gets through."""
    need("offlineimap")
    edits = ["-k", "Repository_lab-remote:tls_level=tls_secure", "-k", "Repository_lab-remote:ssl_version=tls1_2"]
    with (
        imap_server(pki, "good", None) as good,
        imap_server(pki, "good", None, minimum=TLS13) as evil,
        SplitServer(good.port, evil.port) as split,
    ):
        argv, key = configure("offlineimap", isolated_env, pki, evil.port, "sslcacertfile = {ca}\n")
        alone([*argv, *edits])
        assert evil.connections >= 1 and not leaked(evil), evil.received
        configure("offlineimap", isolated_env, pki, split.port, "sslcacertfile = {ca}\n")
        serve(good, pki, "good", TLS12)
        assert cli("init", "--yes", key)[0] == 0
        split.connections, split.benign_connections = 0, 0  # the run's one session meets the 1.3-only server
        done = tool([*argv, *edits], shim_env(shims))
        assert split.connections == 1, done.stderr
        assert done.returncode != 0 and not leaked(evil), evil.received
        assert b"ssl_version (offlineimap -k)" in done.stderr, done.stderr
