"""Test laboratory for mailpin: a throw-away PKI and real mail servers on 127.0.0.1.

Modules:

* :mod:`tests.lab.pki` -- a test root CA, an intermediate, and server certificates in several
  "variants" (good, renewed, new key, foreign CA, expired, not yet valid, wrong name, self-signed).
* :mod:`tests.lab.dovecot` -- a standalone Dovecot (IMAP/POP3, Implicit TLS and STARTTLS) whose
  served certificate can be switched while it runs.
* :mod:`tests.lab.smtpd` -- an aiosmtpd server (Implicit TLS and STARTTLS) that records every
  message and whose served certificate can be switched while it runs.
* :mod:`tests.lab.hostile` -- scripted hostile servers (STARTTLS stripping, injection, stalls).
* :mod:`tests.lab.verdicts` -- what a careful client concludes about each certificate variant.
* :mod:`tests.lab.campaign` -- the attack matrix of docs/SECURITY.md: every scenario, who plays it,
  and the outcome DESIGN expects.
* :mod:`tests.lab.report` -- outcome records that `docs/gen_security.py` turns into its tables.
* :mod:`tests.lab.flood`, :mod:`tests.lab.pinloop`, :mod:`tests.lab.rusage` -- the fault runs'
  flooding servers, a pin-store writer to SIGKILL, and a small launcher that reads a command's peak RSS.
* :mod:`tests.lab.notifyd`, :mod:`tests.lab.split` -- a private session bus with a recording
  notification server; a server that treats mailpin's check and the tool's own session differently.
* :mod:`tests.lab.counting` -- a forwarder to a real server that counts the connections of one run.
* :mod:`tests.lab.dns` -- dnsmasq serving the lab's SRV records (mailpin upgrade).
"""

from __future__ import annotations

import subprocess


def stop_child(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """End a process the lab started (ours, by its PID): SIGTERM, then SIGKILL if it lingers; reaped."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
