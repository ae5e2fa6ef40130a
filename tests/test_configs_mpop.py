"""mpop's accounts are mpop's accounts: mailpin's reader against the real mpop 1.4 (`mpop --pretend`).

Hand-written cases for each rule (defaults, inheritance, default ports, the "default" account, the
command line's settings over every account, refusals) and seeded random configs with random command
lines: the accounts mpop lists, in its order, with the settings that decide the connection — or its
refusal, which mailpin must share.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from mailpin.configs import mpop
from mailpin.errors import ConfigError, MailpinError
from mailpin.model import Account, Mode
from tests.conftest import need

FP = ":".join(f"{n:02X}" for n in range(32))


def pretend(home: Path, text: str, argv: list[str]) -> tuple[int, str]:
    rc = home / "mpoprc"
    rc.write_text(text)
    rc.chmod(0o600)
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LC_ALL": "C"}
    done = subprocess.run(
        [need("mpop"), "-C", str(rc), "-P", *argv], capture_output=True, timeout=10, env=env, cwd=home, check=False
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def accounts_of(output: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for line in output.splitlines():
        if line.startswith("using account "):
            found.append({"name": line.split()[2]})
        elif " = " in line and found:
            key, _, value = line.partition(" = ")
            found[-1][key] = value
    return found


def mailpin(home: Path, text: str, argv: list[str]) -> list[Account] | MailpinError:
    """The accounts mailpin says `mpop -P ARGV` lists (its -P left out: mailpin's run of it connects nowhere)."""
    rc = home / "mpoprc"
    try:
        command = mpop.parse_argv(["-C", str(rc), *argv])
        config = mpop.parse(text, str(rc), str(home))
        return mpop.select_parsed(config, command)
    except MailpinError as exc:
        return exc


def expected(printed: dict[str, str]) -> dict[str, object]:
    """What mpop printed, in mailpin's terms."""
    tls, starttls = printed["tls"] == "on", printed["tls_starttls"] == "on"
    trust = printed["tls_trust_file"]
    socket = printed["socket"] if printed["socket"] != "(not set)" else None
    fp = printed["tls_fingerprint"]
    proxy = printed["proxy host"] if printed["proxy host"] != "(not set)" else None
    transport = f"socket {socket}" if socket else (f"proxy {proxy}:{printed['proxy port']}" if proxy else None)
    return {
        "name": printed["name"],
        "mode": Mode.NONE if not tls else (Mode.STARTTLS if starttls else Mode.IMPLICIT),
        "port": None if socket else int(printed["port"]),
        "host": None if socket or printed["host"] == "(not set)" else printed["host"],
        "transport": transport,
        "system_trust": trust == "system",
        "trust_file": None if trust in ("system", "(not set)") else trust,
        "fingerprints": () if fp == "(not set)" else (fp,),
        "certcheck": printed["tls_certcheck"] == "on",
    }


def seen(account: Account) -> dict[str, object]:
    return {key: getattr(account, key) for key in ("name", "mode", "port", "host", "transport", "system_trust",
            "trust_file", "fingerprints", "certcheck")}  # fmt: skip


def compare(home: Path, text: str, argv: list[str]) -> str | None:
    """None when mailpin and mpop agree; else the difference, in words."""
    status, output = pretend(home, text, argv)
    mine = mailpin(home, text, argv)
    if status != 0:
        if not isinstance(mine, MailpinError):
            return f"mpop refuses ({output.strip()!r}), mailpin reads {[a.name for a in mine]}"
        return None
    if isinstance(mine, MailpinError):
        return f"mailpin refuses ({mine}), mpop reads it"
    theirs = [expected(printed) for printed in accounts_of(output)]
    ours = [seen(account) for account in mine]
    return None if theirs == ours else f"mpop: {theirs}\nmailpin: {ours}"


HAND = [
    ("defaults then accounts", "defaults\ntls on\ntls_trust_file /t.pem\ndelivery mbox ~/m\naccount a\nhost h\n"
     "account b : a\ntls_starttls off\naccount default : b\nport 1995\n", [["-a"], ["b"], [], ["a", "a"]]),
    ("plain POP3 on 110", "account default\nhost h\ndelivery maildir ~/M\n", [[], ["-a"]]),
    ("inheritance takes what the parent set, not its defaults",
     "account a\nhost h\ntls on\ntls_certcheck off\ndelivery mbox x\ndefaults\ntls_starttls off\n"
     "account b : a\ntls_trust_file\n", [["b"], ["-a"]]),
    ("socket and fingerprint", f"account a\nhost h\nsocket /run/s\ntls on\ntls_fingerprint {FP}\ndelivery mbox x\n",
     [["a"]]),
    ("the command line over every account", "defaults\ndelivery mbox x\nhost h\naccount a\naccount b\ntls on\n"
     "tls_trust_file system\n", [["-a", "--tls=on", "--tls-starttls=off", "--tls-trust-file=/c"], ["--port=2000", "b"],
                                 ["--tls-certcheck=off", "--tls", "a"], ["--tls=", "a"], ["--por=7", "a"]]),
    ("first command not account", "host h\naccount a\n", [["a"]]),
    ("unknown command", "account a\nhost h\ntls_nocertcheck\n", [["a"]]),
    ("no delivery", "account a\nhost h\n", [["a"]]),
    ("no such account", "account a\nhost h\ndelivery mbox x\n", [["b"], []]),
    ("tls without trust", "account a\nhost h\ntls on\ntls_trust_file\ndelivery mbox x\n", [["a"]]),
    ("bad sizes and delivery", "account a\nhost h\nkillsize 10k\nskipsize 2m\ndelivery mda /bin/cat\n", [["a"]]),
    ("bad size", "account a\nhost h\nkillsize 10g\ndelivery mbox x\n", [["a"]]),
    ("bad delivery", "account a\nhost h\ndelivery pipe x\n", [["a"]]),
    ("both -a and names", "account a\nhost h\ndelivery mbox x\n", [["-a", "a"], ["--host=h", "a"]]),
]  # fmt: skip


@pytest.mark.parametrize(("title", "text", "argvs"), HAND, ids=[case[0] for case in HAND])
def test_hand_written_configs_read_as_mpop_reads_them(tmp_path: Path, title: str, text: str, argvs: list) -> None:
    problems = [f"{argv}: {problem}" for argv in argvs if (problem := compare(tmp_path, text, argv)) is not None]
    assert not problems, "\n".join(problems)


_LINES = [
    "host h", "host 127.0.0.1", "port 995", "port 0", "port 70000", "port 0x3e3", "tls", "tls on", "tls off",
    "tls maybe", "tls_starttls off", "tls_starttls", "tls_trust_file /ca.pem", "tls_trust_file",
    "tls_trust_file system",
    f"tls_fingerprint {FP}", "tls_fingerprint 12:34", "tls_certcheck off", "tls_certcheck on", "socket /s", "socket",
    "delivery mbox ~/m", "delivery maildir", "timeout off", "timeout 0", "keep", "only_new off", "killsize 5k",
    "proxy_host p", "proxy_port 99999", "auth apop", "auth kerberos", "user u", "tls_host_override name",
    "received_header off", "pipelining auto",
]  # fmt: skip


def _random_config(rng: random.Random) -> tuple[str, list[str]]:
    names: list[str] = []
    out = ["defaults", "delivery mbox ~/m", "host h"] if rng.random() < 0.85 else []
    if rng.random() < 0.5:
        out += ["defaults", *rng.sample(_LINES, rng.randint(0, 3))]
    for index in range(rng.randint(1, 4)):
        name = f"acc{index}" if rng.random() < 0.85 else "default"
        parents = rng.sample(names, min(len(names), rng.randint(0, 2))) if names and rng.random() < 0.4 else []
        out.append(f"account {name}" + (f" : {', '.join(parents)}" if parents else ""))
        names.append(name)
        out += rng.sample(_LINES, rng.randint(0, 3))
        if rng.random() < 0.2:
            out += ["defaults", rng.choice(_LINES)]
    argv = rng.choice([["-a"], [], names[:1], names[-1:], names[:2], ["nosuch"]])
    if rng.random() < 0.3:
        argv = [rng.choice(["--tls=on", "--tls-starttls=off", "--port=110", "--tls-trust-file=", "--socket=/o"]), *argv]
    return "\n".join(out) + "\n", argv


def test_random_configs_read_as_mpop_reads_them(tmp_path: Path) -> None:
    rng = random.Random(21)
    problems = []
    for case in range(120):
        text, argv = _random_config(rng)
        problem = compare(tmp_path, text, argv)
        if problem is not None:
            problems.append(f"case {case} argv {argv}:\n{text}{problem}")
    assert not problems, "\n\n".join(problems[:5]) + f"\n({len(problems)} differ)"


def test_a_broken_config_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        mpop.parse("account a\nhost h\nport 99999\n", "/home/u/.mpoprc", "/home/u")
    assert (caught.value.source, caught.value.line) == ("/home/u/.mpoprc", 3)
    assert "invalid argument 99999 for command port" in str(caught.value)


def test_the_password_is_never_in_an_account(tmp_path: Path) -> None:
    config = mpop.parse("account a\nhost h\npassword hunter2-secret\ndelivery mbox x\n", "rc", str(tmp_path))
    assert "hunter2" not in repr(config.accounts)
