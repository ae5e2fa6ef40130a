"""mailpin's own settings file: defaults, every setting, and a loud ConfigError (78) for anything off."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Level
from mailpin.state.settings import SAMPLE, SPEC, Settings, Unpinned, load, parse, path

FULL = """\
level = leaf
timeout = 2.5
unpinned = block
expiry_warning_days = 0

[accounts]
  [[msmtp:work]]
  level = key
  [[personal]]   # every tool's "personal"
  level = pkix
  [[mbsync:personal]]
  level = ca
  [[offlineimap:quiet]]   # no level: no entry
"""


def write(content: str | bytes) -> Path:
    file = path(Env.from_os())
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content.encode() if isinstance(content, str) else content)
    return file


def load_error(content: str | bytes) -> tuple[Path, ConfigError]:
    file = write(content)
    with pytest.raises(ConfigError) as caught:
        load(Env.from_os())
    assert caught.value.exit_status == ExitStatus.CONFIG
    return file, caught.value


def test_path_is_under_xdg_config_home(isolated_env: Path) -> None:
    assert path(Env.from_os()) == isolated_env / ".config" / "mailpin" / "config"


def test_no_file_means_defaults() -> None:
    settings = load(Env.from_os())
    assert settings == Settings()
    assert (settings.level, settings.timeout, settings.unpinned) == (None, 10.0, Unpinned.PIN_IF_TRUSTED)
    assert (settings.expiry_warning_days, dict(settings.account_levels), settings.source) == (14, {}, None)


def test_every_setting_is_read() -> None:
    file = write(FULL)
    settings = load(Env.from_os())
    assert settings.level is Level.LEAF
    assert settings.timeout == 2.5
    assert settings.unpinned is Unpinned.BLOCK
    assert settings.expiry_warning_days == 0
    assert dict(settings.account_levels) == {
        "msmtp:work": Level.KEY,
        "personal": Level.PKIX,
        "mbsync:personal": Level.CA,
    }
    assert settings.source == str(file)


def test_empty_file_and_bom_mean_defaults() -> None:
    write(b"\xef\xbb\xbf")
    assert load(Env.from_os()) == Settings(source=str(path(Env.from_os())))
    assert parse("", "x") == parse("\n# only a comment\n[accounts]\n", "x") == Settings(source="x")


@pytest.mark.parametrize(
    ("account", "level"),
    [
        ("msmtp:work", Level.KEY),  # exact entry
        ("mbsync:work", Level.LEAF),  # no entry: the default level
        ("msmtp:personal", Level.PKIX),  # bare-name entry
        ("offlineimap:personal", Level.PKIX),
        ("mbsync:personal", Level.CA),  # the exact entry wins over the bare name
        ("offlineimap:quiet", Level.LEAF),  # a section without a level adds nothing
        ("personal", Level.PKIX),
    ],
)
def test_level_for_prefers_exact_then_bare_then_default(account: str, level: Level) -> None:
    assert parse(FULL, "x").level_for(account) is level


def test_level_for_without_a_default_is_none() -> None:
    settings = parse("[accounts]\n[[personal]]\nlevel = key\n", "x")
    assert settings.level_for("msmtp:work") is None
    assert settings.level_for("msmtp:personal") is Level.KEY


def test_every_setting_in_the_spec_has_a_default() -> None:
    checks = [line for line in SPEC.splitlines() if "=" in line]
    assert checks
    assert all("default=" in line for line in checks)


def test_sample_parses_to_the_defaults() -> None:
    assert parse(SAMPLE, "sample") == Settings(source="sample")


def test_sample_commented_settings_are_valid_when_uncommented() -> None:
    text = re.sub(r"(?m)^#(\s*(\[|[a-z_]+ = ))", r" \1", SAMPLE)
    settings = parse(text, "sample")
    assert settings.level is Level.CA
    assert dict(settings.account_levels) == {"msmtp:work": Level.KEY, "personal": Level.PKIX}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("unpined = block", "unknown setting 'unpined' (did you mean 'unpinned'?)"),
        ("Level = ca", "unknown setting 'Level' (did you mean 'level'?)"),
        ("expiry_warning = 3", "unknown setting 'expiry_warning' (did you mean 'expiry_warning_days'?)"),
        ("colour = red", "unknown setting 'colour'"),
        ("[acounts]", "unknown section 'acounts' (did you mean 'accounts'?)"),
        ("[DEFAULT]\nlevel = key", "unknown section 'DEFAULT'"),
        (
            "[accounts]\n[[msmtp:work]]\nlvl = key",
            "unknown setting 'lvl' in accounts/msmtp:work (did you mean 'level'?)",
        ),
        ("[accounts]\npersonal = key", "unknown setting 'personal' in accounts (expected a section: [[personal]])"),
        ("[accounts]\n[[a]]\n[[[b]]]", "unknown section 'b' in accounts/a"),
        ("[level]", "'level' must be a setting (level = …), not a section"),
        ("accounts = key", "'accounts' must be a section [accounts], not a setting"),
        (
            "[accounts]\n[[msmpt:work]]\nlevel = key",
            "accounts/msmpt:work: unknown tool 'msmpt' (did you mean 'msmtp'?)",
        ),
        (
            "[accounts]\n[[x:work]]",
            "accounts/x:work: unknown tool 'x' (one of msmtp, mbsync, offlineimap, mpop, fetchmail, getmail)",
        ),
        ("[accounts]\n[[mbsync:]]", "accounts/mbsync:: no account name (use [[TOOL:NAME]] or [[NAME]])"),
    ],
)
def test_unknown_names_are_errors_with_a_hint(text: str, problem: str) -> None:
    file, error = load_error(text)
    assert str(error) == f"{file}: {problem}"
    assert (error.source, error.line) == (str(file), None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("level = lef", "level = 'lef': must be one of leaf, key, ca, pkix"),
        ("level =", "level is empty: must be one of leaf, key, ca, pkix"),
        ('level = ""', "level is empty: must be one of leaf, key, ca, pkix"),
        ("level = None", "level = 'None': must be one of leaf, key, ca, pkix"),
        ("level = ca, key", "level = 'ca, key': must be one of leaf, key, ca, pkix"),
        ("unpinned = accept", "unpinned = 'accept': must be one of block, pin-if-trusted"),
        (
            "[accounts]\n[[msmtp:work]]\nlevel = lef",
            "accounts/msmtp:work/level = 'lef': must be one of leaf, key, ca, pkix",
        ),
        ("[accounts]\n[[personal]]\nlevel =", "accounts/personal/level is empty: must be one of leaf, key, ca, pkix"),
    ]
    + [
        (f"timeout = {bad}", f"timeout = '{bad}': must be a number of seconds, more than 0 and at most 600")
        for bad in ("0", "0.0", "600.5", "-1", "nan", "inf", "1e2", "1_0", "ten")
    ]
    + [
        (f"expiry_warning_days = {bad}", f"expiry_warning_days = '{bad}': must be a whole number from 0 to 365")
        for bad in ("-1", "366", "1.5", "+3", "two")
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(text: str, problem: str) -> None:
    file, error = load_error(text)
    assert str(error) == f"{file}: {problem}"


@pytest.mark.parametrize(("text", "value"), [("timeout = 600", 600.0), ("timeout = .5", 0.5), ("timeout = 7.", 7.0)])
def test_timeout_bounds(text: str, value: float) -> None:
    assert parse(text, "x").timeout == value


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("level = ca\ntimeout = 5\nlevel = key", 3, "duplicate keyword name"),
        ("[accounts]\n[[a]]\nlevel = key\n[[a]]", 4, "duplicate section name"),
        ("# hi\n[accounts\n", 2, "invalid line ('[accounts') (matched as neither section nor keyword)"),
        ("\n\n[[accounts]]", 3, "section too nested"),
        ('level = "ca', 1, "parse error in value"),
        ('timeout = 10\nlevel = """ca', 2, "parse error in multiline value"),
        ("level = ca\r\nlevel = ca\r\n", 2, "duplicate keyword name"),
    ],
)
def test_syntax_errors_carry_the_line(text: str, line: int, problem: str) -> None:
    file, error = load_error(text)
    assert str(error) == f"{file}:{line}: {problem}"
    assert error.line == line


def test_non_utf8_names_the_line() -> None:
    file, error = load_error(b"level = ca\n# caf\xe9\n")
    assert str(error) == f"{file}:2: not UTF-8 text (byte 0xe9)"


def test_a_directory_is_an_error() -> None:
    file = path(Env.from_os())
    file.mkdir(parents=True)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(file))}: cannot read: Is a directory$") as caught:
        load(Env.from_os())
    assert caught.value.exit_status == 78


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_an_error() -> None:
    file = write("level = ca\n")
    file.chmod(0)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(file))}: cannot read: Permission denied$"):
        load(Env.from_os())


def test_a_symlink_loop_is_an_error() -> None:
    file = path(Env.from_os())
    file.parent.mkdir(parents=True)
    file.symlink_to(file)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(file))}: cannot read: Too many levels of symbolic links$"):
        load(Env.from_os())


def test_a_broken_symlink_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    file = path(Env.from_os())
    file.parent.mkdir(parents=True)
    file.symlink_to(tmp_path / "dotfiles" / "mailpin.conf")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(file))}: is a broken symbolic link$"):
        load(Env.from_os())


LINES = st.sampled_from(
    [
        "level = ca",
        "level = lef",
        "level =",
        "timeout = 5",
        "unpinned = block",
        "expiry_warning_days = 9",
        "[accounts]",
        "[[msmtp:work]]",
        "[[personal]]",
        "[[[deep]]]",
        "[level]",
        "accounts = x",
        "[DEFAULT]",
        "  level = key",
        '"quoted key" = "v"',
        'level = """ca',
        '"""',
        "level = a, b,",
        "x = %(y)s",
        "# comment",
        "",
    ]
)
PIECES = st.sampled_from(["[", "]", "[[", "]]", "=", '"', "'", '"""', ",", "#", ":", "\n", "\r", " ", "\t", "\\"])


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.one_of(LINES, st.text(max_size=12)), max_size=15).map("\n".join),
        st.lists(st.one_of(PIECES, LINES, st.text(max_size=4)), max_size=40).map("".join),
    )
)
def test_parse_returns_settings_or_raises_config_error(text: str) -> None:
    try:
        result: Settings | ConfigError = parse(text, "prop")
    except ConfigError as error:
        result = error
    assert result.source == "prop"
    assert isinstance(result, Settings) or result.exit_status == 78
