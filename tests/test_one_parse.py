"""One parse: a `mailpin run` reads the tool's command line once (issue 19, STYLE "One Invocation").

Before, one msmtp argv was read four times on the way from the wrapper to the plan (the message
check, the config's -C, the account's choice, where mailpin's flags go), mbsync's twice and
offlineimap's three times. Here each tool's parser is counted over the wrapper's own sequence:
`_start` (the message, the early connections), `decide_on`, `plan_for`.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailpin.configs import getmail, mbsync_argv, mpop, msmtp_argv, offlineimap
from mailpin.env import Env
from mailpin.errors import ToolUsageError
from mailpin.model import Tool
from mailpin.net import early
from mailpin.run import enforce, wrapper
from mailpin.run.decide import decide_on
from mailpin.state.settings import load as load_settings
from tests.test_enforce_real import mbsyncrc, offlineimaprc
from tests.test_getmail_real import write_getmailrc
from tests.test_mpop_real import write_mpoprc
from tests.test_pins_real import cli
from tests.test_run_real import MESSAGE, write_msmtprc

# The lowest reader of each tool's argv: every other reading goes through it.
PARSERS = {
    Tool.MSMTP: (msmtp_argv, "_getopt"),
    Tool.MBSYNC: (mbsync_argv, "parse_argv"),
    Tool.OFFLINEIMAP: (offlineimap, "_options"),
    Tool.MPOP: (mpop, "getopt_long"),
    Tool.GETMAIL: (getmail, "_options"),
}


def counting(monkeypatch: pytest.MonkeyPatch) -> Counter[Tool]:
    calls: Counter[Tool] = Counter()

    def counted(tool: Tool, real: Callable[..., Any]) -> Callable[..., Any]:
        def parse(*args: Any) -> Any:
            calls[tool] += 1
            return real(*args)

        return parse

    for tool, (module, name) in PARSERS.items():
        monkeypatch.setattr(module, name, counted(tool, getattr(module, name)))
    return calls


def with_stdin(message: bytes) -> Env:
    return replace(Env.from_os(), stdin=io.TextIOWrapper(io.BytesIO(message)))


@pytest.mark.parametrize("tool", list(PARSERS), ids=[tool.value for tool in PARSERS])
def test_a_run_reads_the_command_line_once(
    isolated_env: Path, pki, smtp_server, dovecot_server, monkeypatch: pytest.MonkeyPatch, tool: Tool
) -> None:
    if tool is Tool.MSMTP:
        write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
        argv, account = ["-oi", "-a", "smtps", "you@example.org"], "smtps"
    elif tool is Tool.MBSYNC:
        mbsyncrc(isolated_env, dovecot_server.imaps_port, pki.ca_pem)
        argv, account = ["-V", "lab"], "lab"
    elif tool is Tool.MPOP:
        write_mpoprc(isolated_env, pki.ca_pem, dovecot_server.pop3s_port, dovecot_server.pop3_port)
        argv, account = ["-q", "implicit"], "implicit"
    elif tool is Tool.GETMAIL:
        write_getmailrc(
            isolated_env, "pop", "SimplePOP3SSLRetriever", dovecot_server.pop3s_port, f"ca_certs = {pki.ca_pem}"
        )
        argv, account = ["-q", "-r", "pop"], "pop"
    else:
        offlineimaprc(isolated_env, dovecot_server.imaps_port)
        rc = isolated_env / ".offlineimaprc"
        rc.write_text(rc.read_text().replace("ssl = no\n", f"ssl = yes\nsslcacertfile = {pki.ca_pem}\n"))
        argv, account = ["-o", "-k", "Repository_lab-remote:remotehost=localhost", "-a", "lab"], "lab"
    assert cli("init", "--yes", f"{tool.value}:{account}")[0] == 0
    env = with_stdin(MESSAGE)
    configured = load_settings(env)
    calls = counting(monkeypatch)
    invocation, opened = wrapper._start(tool, argv, env, early.Hints.of_run(env.environ, tool.value, argv), None)
    try:
        decision = decide_on(env, invocation, configured, keep=enforce.relays(configured), early=opened)
        made = enforce.plan_for(env, decision, configured)
    finally:
        if opened is not None:
            opened.close()
    try:
        assert decision.passed, [outcome.verdict for outcome in decision.outcomes]
        assert calls == {tool: 1}
        assert decision.invocation.message == (MESSAGE if tool is Tool.MSMTP else None)  # read once, replayed
        assert made.argv != argv and made.keep_fds  # the plan was made from that one reading
        # The plan's additions sit where the tool's own reading says its options end: after them all
        # (msmtp permutes, offlineimap's -k and -c apply in order), or before mbsync's first channel.
        if tool is Tool.MBSYNC:
            assert made.argv[0] == "-V" and made.argv[1].startswith("--config=") and made.argv[2:] == ["lab"]
        elif tool is Tool.GETMAIL:  # the rc file in memory instead of the file: -r is getmail's only way
            assert made.argv[:2] == ["-q", "-r"] and made.argv[2].startswith("/proc/self/fd/") and len(made.argv) == 3
        else:
            assert made.argv[: len(argv)] == argv
    finally:
        if made.relay is not None:
            made.relay.abandon()
        decision.close()
        for fd in made.keep_fds:
            os.close(fd)


def test_a_command_line_msmtp_refuses_is_read_once_and_refused_before_any_config(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block: msmtp refuses `-a x --host=y`. Nothing is read from stdin (msmtp reads nothing
    either), and the refusal comes where msmtp's own does, before the config, which is broken here:
    read, it would have been the error."""
    (isolated_env / ".msmtprc").write_text("account x\nport none\n")
    env = with_stdin(MESSAGE)
    calls = counting(monkeypatch)
    argv = ["-a", "x", "--host=y", "you@example.org"]
    invocation, opened = wrapper._start(Tool.MSMTP, argv, env, early.Hints.of_run(env.environ, "msmtp", argv), None)
    assert opened is None and invocation.message is None and env.stdin.read() == MESSAGE.decode()
    with pytest.raises(ToolUsageError, match="cannot use both --host and --account"):
        decide_on(env, invocation, load_settings(env))
    assert calls == {Tool.MSMTP: 1}
