"""The demo's story, step by step, for a person: pin, send and sync, then two attacks.

Each step runs the real `mailpin` command, shows what it printed, and checks that it did what the
story says (exit status, key words, what the servers saw). The first step that does not raises
`Failed`, naming the step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TextIO

from mailpin.demo.lab import SRV, Lab, Ran, command_line

MSMTP, MBSYNC = "msmtp:demo", "mbsync:demo"
BLOCKED = 69


@dataclass
class Failed(Exception):
    step: str
    why: str

    def __str__(self) -> str:
        return f"step {self.step!r} did not behave as shown: {self.why}"


class Story:
    def __init__(self, lab: Lab, out: TextIO, quiet: bool = False) -> None:
        self.lab, self.out, self.quiet = lab, out, quiet
        self.step = ""
        self.count = 0

    def header(self, title: str) -> None:
        self.count += 1
        self.step = title
        print(f"\n{self.count}. {title}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", file=self.out, flush=True)

    def ok(self, text: str) -> None:
        print(f"   ✓ {text}", file=self.out, flush=True)

    def run(self, *args: str, stdin: bool = False) -> Ran:
        source = self.lab.message if stdin else None
        print(f"   $ {command_line(args, source)}", file=self.out, flush=True)
        ran = self.lab.run(*args, stdin=source)
        if not self.quiet:
            for line in "\n".join(part for part in (ran.stdout, ran.stderr) if part).splitlines():
                print(f"       {line}".rstrip(), file=self.out)
        self.out.flush()
        return ran

    def check(self, condition: bool, why: str, ran: Ran | None = None) -> None:
        if condition:
            return
        if ran is not None:
            why += f" (`{ran.shown}` exited {ran.status})"
            if self.quiet:  # the output was not shown: it is the evidence
                why += "\n" + "\n".join(f"       {line}" for line in (ran.stdout + "\n" + ran.stderr).splitlines())
        raise Failed(self.step, why)


def play(story: Story) -> None:
    setting(story)
    pin(story)
    send_and_sync(story)
    upgrade(story)
    strip_starttls(story)
    foreign_ca(story)
    errors = story.lab.smtp.errors + story.lab.imap.errors + story.lab.dns.errors
    story.check(not errors, "the demo's servers failed: " + "; ".join(errors))


def setting(story: Story) -> None:
    lab = story.lab
    story.header("A throwaway CA, two mail servers, two accounts")
    story.say(f"everything lives in {lab.root} — here ~ is {lab.home}")
    story.say("a CA of our own, and a foreign one; certificates for localhost from both")
    story.say(f"SMTP server on localhost:{lab.smtp.ports['implicit']} (Implicit TLS)")
    story.say(f"IMAP server on localhost:{lab.imap.ports['starttls']} (STARTTLS), two messages in INBOX")
    story.say("~/.msmtprc:  account demo, Implicit TLS, tls_trust_file = our CA")
    story.say("~/.mbsyncrc: channel demo, STARTTLS, CertificateFile = our CA")
    missing = [tool for tool, here in lab.tools.items() if not here]
    if missing:
        story.say(f"{' and '.join(missing)} not installed: `mailpin check` stands in for sending / syncing")


def pin(story: Story) -> None:
    story.header("Pin both accounts")
    ran = story.run("init", "--yes", MSMTP, MBSYNC)
    story.check(ran.status == 0, "init should pin both accounts", ran)
    story.check(f"{MSMTP}: pinned" in ran.stdout and f"{MBSYNC}: pinned" in ran.stdout, "both should be pinned", ran)
    story.ok("both pinned: mode, port, TLS version, and the CA that signed each certificate")


def send_and_sync(story: Story) -> None:
    lab = story.lab
    story.header("Send and sync through mailpin")
    if lab.tools["msmtp"]:
        ran = story.run("run", "msmtp", "-a", "demo", "-t", stdin=True)
        story.check(ran.status == 0, "the message should be sent", ran)
        got = lab.smtp.received[-1].data if lab.smtp.received else b""
        sent = lab.message.read_bytes().replace(b"\n", b"\r\n")
        story.check(got == sent, "the server should have received it as written")
        story.ok("verified, then msmtp sent it: the server received it, byte for byte")
    else:
        _verified(story, MSMTP)
    if lab.tools["mbsync"]:
        ran = story.run("run", "mbsync", "-a")
        story.check(ran.status == 0, "mbsync should sync", ran)
        story.check(lab.synced() == len(lab.imap.inbox), f"~/Mail/demo/INBOX should hold {len(lab.imap.inbox)}")
        story.ok(f"verified, then mbsync synced over that very session: {lab.synced()} messages in ~/Mail/demo/INBOX")
    else:
        _verified(story, MBSYNC)


def upgrade(story: Story) -> None:
    lab = story.lab
    story.header("Move an old STARTTLS account to Implicit TLS")
    story.say(
        f"~/.msmtprc also has `account old`: STARTTLS on port {lab.smtp.ports['starttls']}, from old@demo.example"
    )
    story.say(f"the demo's DNS server says {SRV} is localhost:{lab.smtp.ports['implicit']} (RFC 8314 §5.1)")
    if not lab.tools["msmtp"]:
        story.say("msmtp is not installed: `mailpin upgrade` checks its edit with `msmtp --pretend`; skipped")
        return
    ran = story.run("upgrade", "--yes", "msmtp:old")
    story.check(ran.status == 0 and "written (backup" in ran.stdout, "the account should move", ran)
    rc = (lab.home / ".msmtprc").read_text()
    moved = f"account old\nhost localhost\nport {lab.smtp.ports['implicit']}\ntls_starttls off\n" in rc
    story.check(moved, "~/.msmtprc should have port and tls_starttls changed in place, nothing else")
    story.ok("found by SRV, certificate valid for localhost: two lines changed, a backup kept, pinned again")
    sent = len(lab.smtp.received)
    ran = story.run("run", "msmtp", "-a", "old", "-t", stdin=True)
    story.check(ran.status == 0 and len(lab.smtp.received) == sent + 1, "the message should be sent", ran)
    story.check(lab.smtp.received[-1].implicit, "it should have come over the Implicit TLS port")
    story.ok("the next send went over Implicit TLS; a config back on STARTTLS would now be a config-downgrade")


def _verified(story: Story, account: str) -> None:
    ran = story.run("check", account)
    story.check(ran.status == 0 and "verified" in ran.stdout, f"{account} should verify", ran)
    story.ok(f"{account} verified against its pin")


def strip_starttls(story: Story) -> None:
    lab = story.lab
    story.header("Attack 1: STARTTLS stripped on the IMAP server")
    story.say("the server stops offering STARTTLS, as a man in the middle can make it look")
    lab.imap.offer_starttls = False
    logins = lab.imap.logins
    if lab.tools["mbsync"]:
        ran = story.run("run", "mbsync", "-a")
        story.check(ran.status == BLOCKED, "mbsync should be blocked with exit 69", ran)
        ran_what = "mbsync never ran"
    else:
        ran = story.run("check", MBSYNC)
        story.check(ran.status == BLOCKED, "the check should block with exit 69", ran)
        ran_what = "nothing ran"
    story.check("starttls-missing" in ran.stdout + ran.stderr, "the block should say STARTTLS is missing", ran)
    story.check(lab.imap.logins == logins, "the server should have seen no password")
    story.ok(f"blocked (exit 69): {ran_what}, and the server saw no password")
    _notification(story, ran, MBSYNC)
    lab.imap.offer_starttls = True
    story.say("stripping is never accepted (`mailpin accept` refuses it): the attacker goes away,")
    story.say("and the server offers STARTTLS again")


def foreign_ca(story: Story) -> None:
    lab = story.lab
    story.header("Attack 2: a certificate from another CA on the SMTP server")
    story.say("the server now presents a certificate for localhost from a CA you never configured")
    lab.smtp.foreign = True
    received, logins = len(lab.smtp.received), lab.smtp.logins
    held = False
    if lab.tools["msmtp"]:
        ran = story.run("run", "msmtp", "-a", "demo", "-t", stdin=True)
        held = "message held as" in ran.stderr
        story.check(ran.status == BLOCKED and held, "the send should be blocked (exit 69) and the message held", ran)
        what = "nothing was sent and the message is held"
    else:
        ran = story.run("check", MSMTP)
        story.check(ran.status == BLOCKED, "the check should block with exit 69", ran)
        what = "nothing ran"
    story.check("ca-changed" in ran.stdout + ran.stderr, "the block should name the CA change", ran)
    story.check((len(lab.smtp.received), lab.smtp.logins) == (received, logins), "the server should get nothing")
    story.ok(f"blocked (exit 69): {what}; the server saw no password")
    _notification(story, ran, MSMTP)

    ran = story.run("review", MSMTP)
    story.check(ran.status == BLOCKED and "different CA" in ran.stdout, "review should name the new CA", ran)
    story.ok("review shows pinned and live side by side: a new key from a different CA")
    story.say("say you know why (your provider moved to another CA) and accept the new certificate;")
    story.say("it does not validate against your trust file, so accepting it needs --accept-untrusted:")
    ran = story.run("accept", "--accept-untrusted", MSMTP)
    story.check(ran.status == 0, "accept should re-pin the account", ran)
    story.ok("re-pinned: exactly this key, from now on")
    ran = story.run("check", MSMTP, MBSYNC)
    story.check(ran.status == 0 and ran.stdout.count("verified") >= 2, "both accounts should verify again", ran)
    story.ok("both accounts verify again")
    if held:
        ran = story.run("queue", "flush")
        story.check(ran.status == 0 and "sent" in ran.stdout, "the held message should be sent", ran)
        story.check(len(lab.smtp.received) == received + 1, "the server should have received the held message")
        story.ok("the held message went out, once")


def _notification(story: Story, ran: Ran, account: str) -> None:
    """Say whether the block reached the desktop; with no desktop, what the notification says: its
    summary and body, from the block mailpin wrote to the (demo's) audit log, in the same words
    `mailpin.notify.alerts` uses."""
    from mailpin.notify.alerts import WORDS

    block = story.lab.last_block(account)
    reasons = [str(reason) for reason in block.get("reasons", [])] or ["?"]
    summary = f"{account}: {WORDS.get('ca-changed' if 'ca-changed' in reasons else reasons[0], reasons[0])}"
    if story.lab.told(account):
        story.ok(f'a notification is on your desktop: "{summary}"')
        return
    held = re.search(r"message held as [^;]*", ran.stderr)
    story.say("no desktop session here, so no notification; on a desktop it would read:")
    body = (block.get("endpoint"), block.get("detail"), held and held[0], f"Review: mailpin review {account}")
    for text in (summary, *body):
        if text:
            story.say(f"    {text}")
