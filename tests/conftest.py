"""Shared fixtures: the test PKI, real servers on 127.0.0.1, and an isolated environment.

Session fixtures start each real server once (``dovecot``, ``smtpd``); tests use the function
fixtures ``dovecot_server`` / ``smtp_server``, which put the "good" certificate back if a test
switched it.  Tests that use a real server are marked ``real`` automatically, so
``pytest -m "not real"`` runs without Dovecot.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# tests/ is not a package: `python -m pytest` puts the project root on sys.path, the `pytest`
# script does not.  Make `tests.lab` importable either way.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.pki import TestPKI  # noqa: E402

if TYPE_CHECKING:
    from tests.lab.dns import DnsServer
    from tests.lab.dovecot import Dovecot
    from tests.lab.notifyd import NotifyDaemon
    from tests.lab.smtpd import SmtpServer

# Fixtures that need a real mail component; tests using them get the `real` marker.
REAL_FIXTURES = frozenset({"dovecot", "dovecot_server", "smtpd", "smtp_server", "session_bus"})
# System binaries often live in sbin directories that a user's PATH lacks.
SBIN = os.pathsep.join(("/usr/local/sbin", "/usr/sbin", "/sbin"))


def need(component: str) -> str:
    """Return where ``component`` (a program or an importable module) is, or give up the test.

    Missing components skip the test on a developer machine but fail it when ``CI=true``: CI
    installs everything, so a skip there would silently hide a broken setup.
    """
    path = os.environ.get("PATH", os.defpath) + os.pathsep + SBIN
    found = shutil.which(component, path=path)
    if found is None and component.isidentifier() and importlib.util.find_spec(component) is not None:
        found = component
    if found is None:
        message = f"{component} is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: required)", pytrace=False)
        pytest.skip(message)
    return found


# What datefudge puts in the environment (`MAILPIN_SHIFT=... bash tests/run`): its library, where
# to find it, and the shift. A program started without them runs at the real date.
CLOCK_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "DATEFUDGE", "DATEFUDGE_DOSTATIC")


def clock_environ() -> dict[str, str]:
    """The variables that keep the suite's clock, for an environment a test builds from scratch.

    A program that checks certificates against the lab PKI (made at the suite's "now") must run on
    the suite's clock: ``env={**clock_environ(), "PATH": ..., "HOME": ...}``.
    """
    return {name: os.environ[name] for name in CLOCK_VARIABLES if name in os.environ}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and the XDG base directories into tmp_path; drop OpenSSL trust overrides.

    Returns the fake home.  Only HOME is created; the XDG directories are where the XDG spec
    puts them by default but do not exist yet, as on a fresh account.
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    # These would change what Python/OpenSSL (and msmtp, mbsync) trust behind the tests' back.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    # A developer's desktop session must not receive the tests' blocks (tests use `session_bus`).
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    from mailpin.notify import desktop

    monkeypatch.setattr(desktop, "RUN_USER", tmp_path / "run-user")  # /run/user/$UID/bus, in this process
    return home


@pytest.fixture
def session_bus() -> Iterator[NotifyDaemon]:
    """A private session bus (dbus-daemon) with a recording org.freedesktop.Notifications server."""
    from tests.lab.notifyd import NotifyDaemon

    with NotifyDaemon(program=need("dbus-daemon")) as bus:
        yield bus


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """The test PKI; ``pki.ca_pem`` is the trust file (the test root only)."""
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def dovecot(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A running Dovecot serving "good" for the whole session (use ``dovecot_server``)."""
    need("dovecot")
    from tests.lab.dovecot import Dovecot

    server = Dovecot(tmp_path_factory.mktemp("dovecot"), pki)
    try:
        server.start("good")
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def smtpd(pki: TestPKI) -> Iterator[SmtpServer]:
    """A running aiosmtpd pair (SMTPS + submission/STARTTLS) serving "good" (use ``smtp_server``)."""
    need("aiosmtpd")
    from tests.lab.smtpd import SmtpServer

    server = SmtpServer(pki)
    try:
        server.start("good")
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot_server(dovecot: Dovecot) -> Iterator[Dovecot]:
    """The session Dovecot; serves "good" again after the test if the test switched it."""
    yield dovecot
    if dovecot.variant != "good":
        dovecot.serve("good")


@pytest.fixture
def dns_server(tmp_path: Path) -> Iterator[DnsServer]:
    """dnsmasq on 127.0.0.1 serving the lab's records (`serve`); mailpin's `[dns] nameservers` names it."""
    need("dnsmasq")
    from tests.lab.dns import DnsServer

    server = DnsServer(tmp_path / "dns")
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtpd: SmtpServer) -> Iterator[SmtpServer]:
    """The session SMTP server; serves "good", uncapped, again after the test if the test changed it."""
    yield smtpd
    smtpd.cap_tls()
    if smtpd.variant != "good":
        smtpd.serve("good")


@pytest.fixture
def shims(tmp_path: Path) -> Path:
    """A bin directory holding the repository's shims, first on PATH; MAILPIN names this mailpin."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("msmtp", "mbsync", "offlineimap", "mpop", "fetchmail", "getmail"):
        shutil.copy2(ROOT / "hooks" / name, directory / name)
    return directory
