"""A config mailpin wrote or edited, read by the tool itself before it is written (`msmtp --pretend`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

from mailpin.env import Env
from mailpin.state.settings import Settings


def _private_copy(directory: str, name: str, config: bytes) -> str:
    path = os.path.join(directory, name)  # 0600 in a 0700 directory: the tools want it private
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(config)
    return path


def _read_by(
    env: Env, configured: Settings, tool: str, config: bytes, args: Sequence[str]
) -> tuple[subprocess.CompletedProcess[str] | None, str, str | None]:
    """The real TOOL run on a private copy of CONFIG, ARGS its arguments (`{}`: the copy's path):
    (what it did, the copy's path, None), or (None, "", why it could not be run)."""
    from mailpin.errors import ConfigError
    from mailpin.run.handover import find_tool

    try:
        binary = find_tool(tool, env.environ, configured.tools.get(tool), configured.source or "")
    except ConfigError as exc:
        return None, "", f"{tool} cannot check it: {exc}"
    with tempfile.TemporaryDirectory(prefix="mailpin-check-") as directory:
        path = _private_copy(directory, f"{tool}rc", config)
        try:
            done = subprocess.run(
                [binary, *(arg.replace("{}", path) for arg in args)],
                capture_output=True, text=True, timeout=30, env=dict(env.environ), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return None, "", f"cannot run {binary}: {exc}"
    return done, path, None


def mbsync_refuses(env: Env, configured: Settings, config: bytes) -> str | None:
    """mbsync's own reading of CONFIG: it reads the whole file before it looks for a channel, and
    names the file and line of what it refuses (`FILE:LINE: …`); asked for a channel no config has,
    it connects to nothing. None when it read the file without a word about it."""
    done, path, problem = _read_by(env, configured, "mbsync", config, ["-c", "{}", "--list", "mailpin-no-such-channel"])
    if done is None:
        return problem
    said = [line for line in done.stderr.splitlines() if line.startswith(path)]
    return said[0].replace(path, "the edited config", 1) if said else None


def msmtp_refuses(
    env: Env, configured: Settings, config: bytes, account: str, expected: Mapping[str, str], tool: str = "msmtp"
) -> str | None:
    """msmtp's (or mpop's: the same --pretend) own reading of CONFIG for ACCOUNT: None when it takes
    it and shows the EXPECTED values (`port = 465`, ...); else what it said, in one line."""
    named = [f"--account={account}"] if tool == "msmtp" else ["--", account]  # mpop names accounts as operands
    done, _, problem = _read_by(env, configured, tool, config, ["--pretend", "--file={}", *named])
    if done is None:
        return problem
    said = done.stderr.strip().splitlines()
    if done.returncode != 0:
        return said[-1] if said else f"exit {done.returncode}"
    shown = dict(line.split(" = ", 1) for line in done.stdout.splitlines() if " = " in line)
    wrong = [f"{name} = {shown.get(name)}" for name, value in expected.items() if shown.get(name) != value]
    return f"it reads {', '.join(wrong)}" if wrong else None
