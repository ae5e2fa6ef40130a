"""A config mailpin wrote or edited, read by the tool itself before it is written (`msmtp --pretend`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping

from mailpin.env import Env
from mailpin.state.settings import Settings


def msmtp_refuses(
    env: Env, configured: Settings, config: bytes, account: str, expected: Mapping[str, str]
) -> str | None:
    """msmtp's own reading of CONFIG for ACCOUNT (`--pretend`): None when it takes it and shows the
    EXPECTED values (`port = 465`, ...); else what it said, in one line."""
    from mailpin.errors import ConfigError
    from mailpin.run.handover import find_tool

    try:
        binary = find_tool("msmtp", env.environ, configured.tools.get("msmtp"), configured.source or "")
    except ConfigError as exc:
        return f"msmtp cannot check it: {exc}"
    with tempfile.TemporaryDirectory(prefix="mailpin-check-") as directory:
        path = os.path.join(directory, "msmtprc")  # 0600 in a 0700 directory: msmtp wants it private
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(config)
        try:
            done = subprocess.run(
                [binary, "--pretend", f"--file={path}", f"--account={account}"],
                capture_output=True, text=True, timeout=30, env=dict(env.environ), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run {binary}: {exc}"
    said = done.stderr.strip().splitlines()
    if done.returncode != 0:
        return said[-1] if said else f"exit {done.returncode}"
    shown = dict(line.split(" = ", 1) for line in done.stdout.splitlines() if " = " in line)
    wrong = [f"{name} = {shown.get(name)}" for name, value in expected.items() if shown.get(name) != value]
    return f"it reads {', '.join(wrong)}" if wrong else None
