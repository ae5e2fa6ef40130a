"""The command line as scripts use it: exit statuses, one-line errors, `python -m mailpin`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from mailpin import __version__
from mailpin.cli import main
from tests.conftest import need


def test_version_from_python_dash_m() -> None:
    out = subprocess.run([sys.executable, "-m", "mailpin", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"mailpin {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["probe", "localhost"],  # --protocol and --mode are required
        ["probe", "localhost", "--protocol", "nntp", "--mode", "implicit"],
        ["probe", "localhost", "--protocol", "imap", "--mode", "implicit", "--timeout", "0"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "target", ["localhost:0", "localhost:99999", "localhost:x", "[::1", ":143", "a..b:25", "x" * 64 + ".example"]
)
def test_bad_targets_are_usage_errors_with_one_line(target: str, capsys) -> None:
    assert main(["probe", target, "--protocol", "imap", "--mode", "implicit"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailpin: ")
    assert err.count("\n") == 1


def test_invalid_server_name_is_a_usage_error(capsys) -> None:
    assert (
        main(["probe", "127.0.0.1:1", "--protocol", "smtp", "--mode", "starttls", "--servername", "mail..example"]) == 2
    )
    assert "mail..example" in capsys.readouterr().err


def test_missing_trust_file_is_a_config_error_naming_it(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.pem"
    status = main(["probe", "127.0.0.1:1", "--protocol", "imap", "--mode", "implicit", "--trust-file", str(missing)])
    assert status == 78
    err = capsys.readouterr().err
    assert str(missing) in err
    assert err.count("\n") == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_exits_75_and_says_so_in_json(capsys) -> None:
    port = _closed_port()
    status = main(["probe", f"127.0.0.1:{port}", "--protocol", "smtp", "--mode", "starttls", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert status == 75
    assert data["status"] == "unverified"
    assert data["reasons"] == ["unreachable"]
    assert data["port"] == port
    assert data["mode"] == "starttls"
    assert captured.err == f"mailpin: {data['error']}\n"


@pytest.mark.parametrize(
    ("protocol", "mode", "port"),
    [("imap", "implicit", 993), ("imap", "starttls", 143), ("smtp", "implicit", 465),
     ("smtp", "starttls", 587), ("pop3", "implicit", 995), ("pop3", "starttls", 110)],
)  # fmt: skip
def test_default_ports_follow_the_protocol(protocol: str, mode: str, port: int, capsys) -> None:
    # Nothing listens on ::1 here at these ports in the sandbox; only the chosen port matters.
    main(["probe", "[::1]", "--protocol", protocol, "--mode", mode, "--json", "--timeout", "1"])
    assert json.loads(capsys.readouterr().out)["port"] == port


def test_cli_entry_point_is_installed() -> None:
    # `mailpin` on PATH (pyproject [project.scripts]) runs the same main.
    exe = need("mailpin")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["tunnel", "mbsync:work"],
        ["tunnel", "--config", "/home/me/.mbsyncrc", "mbsync:work"],
        ["tunnel", "--config=/proc/self/fd/3", "offlineimap:Remote"],
    ],
)
def test_the_tunnels_fast_path_reads_what_argparse_reads(argv: list[str]) -> None:
    from mailpin.cli import _tunnel_args, build_parser

    fast, full = _tunnel_args(argv), build_parser().parse_args(argv)
    assert fast is not None
    assert (fast.command, fast.account, fast.config) == (full.command, full.account, full.config)


@pytest.mark.parametrize(
    "argv",
    [["tunnel"], ["tunnel", "-h"], ["tunnel", "--help"], ["tunnel", "a", "b"], ["tunnel", "--config", "f"],
     ["tunnel", "--conf", "f", "a"], ["tunnel", "--config", "f", "--json"], ["run", "msmtp"]],
)  # fmt: skip
def test_any_other_tunnel_shape_goes_to_argparse(argv: list[str]) -> None:
    from mailpin.cli import _tunnel_args

    assert _tunnel_args(argv) is None
