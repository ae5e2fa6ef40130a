"""parsed.json: what configobj made of the settings and the pin store, remembered (state/memo.py).

A remembered reading must be exactly the full reading: the same Settings and Profiles, the same
errors for any file that is not byte for byte the one remembered, nothing taken from a memo that is
not the user's own or that no longer fits, and configobj not imported at all when it fits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Level
from mailpin.state import memo, settings
from mailpin.state.store import PinStore
from tests.test_store import make_profile

SETTINGS = """\
level = key
timeout = 4
[accounts]
  [[msmtp:work]]
  level = leaf
  enforce = no
[notify]
notmuch_tags = +mailpin, +inbox
"""


def _memo(env: Env) -> dict[str, object]:
    data = json.loads((env.cache_home / "mailpin" / "parsed.json").read_text())
    assert isinstance(data, dict)
    return data


def _write_settings(env: Env, text: str | bytes) -> None:
    file = settings.path(env)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(text.encode() if isinstance(text, str) else text)


def _store(env: Env, count: int = 2) -> PinStore:
    store = PinStore.for_env(env)
    with store.update() as profiles:
        for index in range(count):
            profile = make_profile(f"msmtp:acct{index}", port=465 + index)
            profiles[profile.account] = profile
    return store


def test_settings_remembered_read_equals_the_full_read(isolated_env: Path) -> None:
    env = Env.from_os()
    _write_settings(env, SETTINGS)
    first = settings.load(env)
    assert "settings" in _memo(env)
    assert settings.load(env) == first == settings.parse(SETTINGS, str(settings.path(env)))
    assert first.level_for("msmtp:work") is Level.LEAF and first.account_enforce == {"msmtp:work": False}


def test_pins_remembered_read_equals_the_full_read(isolated_env: Path) -> None:
    env = Env.from_os()
    store = _store(env)
    first = store.load()
    assert "pins" in _memo(env)
    second = store.load()
    assert second == first and len(first) == 2
    assert PinStore(store.path, store.lock_path).load() == first  # no memo: the full read


def test_a_changed_file_is_read_in_full_and_its_error_said(isolated_env: Path) -> None:
    env = Env.from_os()
    _write_settings(env, SETTINGS)
    settings.load(env)
    _write_settings(env, SETTINGS.replace("timeout = 4", "timeout = 4000"))
    with pytest.raises(ConfigError, match="timeout"):
        settings.load(env)
    store = _store(env)
    store.load()
    data = store.path.read_bytes()
    store.path.write_bytes(data.replace(b"port = 465", b"port = 70000"))
    with pytest.raises(ConfigError, match="port"):
        store.load()


def test_a_memo_that_no_longer_fits_is_not_taken(isolated_env: Path) -> None:
    """Values under the right key that do not make profiles: the full read, as if there were none."""
    env = Env.from_os()
    store = _store(env)
    truth = store.load()
    memo_file = env.cache_home / "mailpin" / "parsed.json"
    data = _memo(env)
    pins = data["pins"]
    assert isinstance(pins, dict)
    for broken in ([["msmtp:acct0", {"port": "x"}]], [[1, 2, 3]], "text", [["msmtp:acct0", []]]):
        memo_file.write_text(json.dumps({**data, "pins": {**pins, "values": broken}}))
        assert store.load() == truth


def test_a_memo_that_is_not_the_users_own_is_ignored(isolated_env: Path) -> None:
    """Group- or world-writable: another user could have written it; its values are not taken."""
    env = Env.from_os()
    _write_settings(env, SETTINGS)
    truth = settings.load(env)
    memo_file = env.cache_home / "mailpin" / "parsed.json"
    data = _memo(env)
    entry = data["settings"]
    assert isinstance(entry, dict) and isinstance(entry["values"], dict)
    lie = {**entry["values"], "level": "pkix", "timeout": 600.0}
    memo_file.write_text(json.dumps({**data, "settings": {**entry, "values": lie}}))
    os.chmod(memo_file, 0o666)
    assert settings.load(env) == truth
    assert os.stat(memo_file).st_mode & 0o777 == 0o600 and _memo(env)["settings"] == entry  # written afresh
    # The user's own is taken as it stands (theirs to write, as the settings are): the memo is used.
    memo_file.write_text(json.dumps({**data, "settings": {**entry, "values": lie}}))
    assert settings.load(env).level is Level.PKIX


def test_the_key_covers_bytes_spec_and_the_reading_code(tmp_path: Path) -> None:
    reader = tmp_path / "reader.py"
    reader.write_text("# v1\n")
    base = memo.key(b"level = key\n", "spec", [str(reader)])
    assert base is not None
    assert memo.key(b"level = key \n", "spec", [str(reader)]) != base
    assert memo.key(b"level = key\n", "spec2", [str(reader)]) != base
    reader.write_text("# v2 \n")  # the reader changed (size and time)
    assert memo.key(b"level = key\n", "spec", [str(reader)]) != base
    assert memo.key(b"level = key\n", "spec", [str(tmp_path / "gone.py")]) is None  # nothing kept


def test_a_remembered_read_imports_no_configobj(isolated_env: Path) -> None:
    """The point of it: a run whose files were read before does not load configobj at all."""
    env = Env.from_os()
    _write_settings(env, SETTINGS)
    settings.load(env)
    _store(env).load()
    script = (
        "import sys\n"
        "from mailpin.env import Env\n"
        "from mailpin.state import settings\n"
        "from mailpin.state.store import PinStore\n"
        "env = Env.from_os()\n"
        "print(settings.load(env).level.value, len(PinStore.for_env(env).load()))\n"
        "print(sorted(name for name in sys.modules if name.startswith('configobj')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["key 2", "[]"]
    settings.path(env).write_text(SETTINGS + "# an edit\n")  # not the bytes remembered: configobj reads
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["key 2", "['configobj', 'configobj._version', 'configobj.validate']"]
