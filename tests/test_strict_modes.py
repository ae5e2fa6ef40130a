"""mailpin's own state is protected like ssh's StrictModes (issue 17 item 7): pins.conf, the
settings and the queue are refused — 78, naming the file and the fix — when another user owns them
or can write them, or can replace them in their directory. A read-only file of root's in a sticky
directory (home-manager's /nix/store) is fine, and so is the user's own, as mailpin writes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_pins_real import cli

NOBODY = 65534
CASES = [("pins", ["accounts"]), ("settings", ["accounts"]), ("queue", ["queue"])]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root (CI runs as root)")


def state(home: Path) -> dict[str, Path]:
    return {
        "pins": home / ".config" / "mailpin" / "pins.conf",
        "settings": home / ".config" / "mailpin" / "config",
        "queue": home / ".local" / "state" / "mailpin" / "queue",
    }


@pytest.fixture
def pinned(isolated_env: Path) -> dict[str, Path]:
    """An empty but valid pin store and settings file, written by mailpin itself (init, no accounts)."""
    files = state(isolated_env)
    files["pins"].parent.mkdir(parents=True, mode=0o700)
    from mailpin.env import Env
    from mailpin.state.store import PinStore

    PinStore.for_env(Env.from_os())._write({})  # as mailpin writes it: header, version, end marker
    files["settings"].write_text("[notify]\ndesktop = no\n")
    files["settings"].chmod(0o600)
    files["queue"].mkdir(parents=True, mode=0o700)
    return files


def test_the_users_own_state_is_used(pinned: dict[str, Path]) -> None:
    for command in (["accounts"], ["queue", "list"]):
        assert cli(*command)[0] == 0, command


@pytest.mark.parametrize(
    ("name", "command"), [("pins", ["accounts"]), ("settings", ["accounts"]), ("queue", ["queue"])]
)
def test_state_writable_by_others_is_refused(pinned: dict[str, Path], name: str, command: list[str]) -> None:
    target = pinned[name]
    target.chmod(0o777 if target.is_dir() else 0o666)
    code, _, err = cli(*command)
    assert code == 78 and str(target) in err and "chmod go-w" in err, err


@as_root
@pytest.mark.parametrize(
    ("name", "command"), [("pins", ["accounts"]), ("settings", ["accounts"]), ("queue", ["queue"])]
)
def test_state_owned_by_another_user_is_refused(pinned: dict[str, Path], name: str, command: list[str]) -> None:
    os.chown(pinned[name], NOBODY, NOBODY)
    code, _, err = cli(*command)
    assert code == 78 and f"owned by uid {NOBODY}" in err, err


def test_a_directory_others_can_write_cannot_hold_the_pins(pinned: dict[str, Path]) -> None:
    pinned["pins"].parent.chmod(0o777)  # anyone could put another pins.conf in its place
    try:
        code, _, err = cli("accounts")
    finally:
        pinned["pins"].parent.chmod(0o700)
    assert code == 78 and "which holds" in err and "chmod go-w" in err, err  # the settings are there too


@as_root
def test_a_read_only_file_of_roots_in_a_sticky_directory_is_fine(pinned: dict[str, Path], tmp_path: Path) -> None:
    """home-manager: ~/.config/mailpin/pins.conf -> /nix/store/…-pins.conf (root, 0444, in a 1775 dir)."""
    store = tmp_path / "nix-store"
    store.mkdir()
    os.chmod(store, 0o1775)
    kept = store / "abc-pins.conf"
    kept.write_bytes(pinned["pins"].read_bytes())
    kept.chmod(0o444)
    os.chown(store, 0, NOBODY)
    pinned["pins"].unlink()
    pinned["pins"].symlink_to(kept)
    assert cli("accounts")[0] == 0
    kept.chmod(0o666)  # the same, writable by others: refused, naming the file the link leads to
    code, _, err = cli("accounts")
    assert code == 78 and str(kept) in err, err
