"""`mailpin probe` and its peers on the same endpoints: openssl s_client, gnutls-cli, msmtp
--serverinfo (SMTP) and sslyze's certificate scan — whole commands, interleaved, medians."""

from __future__ import annotations

import shutil

from _common import MAILPIN, ROOT, Lab, Sample, interleaved, median_ms, timed

SSLYZE = ROOT / ".venv-sslyze" / "bin" / "sslyze"  # its own venv: it pins its own cryptography


def endpoints(lab: Lab) -> list[tuple[str, str, int]]:
    return [
        ("smtp", "implicit", lab.smtp.smtps_port),
        ("smtp", "starttls", lab.smtp.submission_port),
        ("imap", "implicit", lab.dovecot.imaps_port),
        ("imap", "starttls", lab.dovecot.imap_port),
    ]


def commands(lab: Lab, protocol: str, mode: str, port: int) -> dict[str, list[str]]:
    ca = str(lab.pki.ca_pem)
    starttls = mode == "starttls"
    found: dict[str, list[str]] = {
        "mailpin probe": [str(MAILPIN), "probe", f"localhost:{port}", "--protocol", protocol, "--mode", mode,
                          "--trust-file", ca],
        "openssl s_client": ["openssl", "s_client", "-connect", f"localhost:{port}", "-servername", "localhost",
                             "-CAfile", ca, "-verify_return_error", "-brief",
                             *(["-starttls", protocol] if starttls else [])],
    }  # fmt: skip
    if shutil.which("gnutls-cli"):
        found["gnutls-cli"] = ["gnutls-cli", "--x509cafile", ca, "--port", str(port), "localhost",
                               *(["--starttls-proto", protocol] if starttls else [])]  # fmt: skip
    if protocol == "smtp":
        found["msmtp --serverinfo"] = ["msmtp", "--serverinfo", "--host=localhost", f"--port={port}",
                                       "--tls=on", f"--tls-starttls={'on' if starttls else 'off'}",
                                       f"--tls-trust-file={ca}"]  # fmt: skip
    if SSLYZE.exists():
        found["sslyze --certinfo"] = [str(SSLYZE), "--quiet", "--certinfo", f"--certinfo_ca_file={ca}",
                                      *([f"--starttls={protocol}"] if starttls else []),
                                      f"localhost:{port}"]  # fmt: skip
    return found


def compare(lab: Lab, runs: int) -> list[tuple[str, dict[str, list[Sample]]]]:
    """Per endpoint, every available peer's samples (the first is mailpin's)."""
    _, env = lab.home("peers")
    rows = []
    for protocol, mode, port in endpoints(lab):
        cases = {
            name: (lambda argv=argv: timed(argv, env)) for name, argv in commands(lab, protocol, mode, port).items()
        }
        rows.append((f"{protocol} {mode}", interleaved(cases, runs)))
    return rows


def table(rows: list[tuple[str, dict[str, list[Sample]]]]) -> list[str]:
    names: list[str] = []
    for _, samples in rows:
        names += [name for name in samples if name not in names]
    lines = ["| endpoint | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for endpoint, samples in rows:
        ours = median_ms(samples["mailpin probe"])
        cells = []
        for name in names:
            if name not in samples:
                cells.append("—")
                continue
            theirs = median_ms(samples[name])
            cells.append(f"{theirs:.0f} ms" + ("" if name == "mailpin probe" else f" ({ours / theirs:.2f}×)"))
        lines.append(f"| {endpoint} | " + " | ".join(cells) + " |")
    return lines
