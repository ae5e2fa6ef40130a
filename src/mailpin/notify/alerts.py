"""Tell the user about a block where they will see it: a desktop notification, and (when enabled)
an alert message in their notmuch inbox — once per account and reasons per interval for what runs
on its own (a timer's sync, a notmuch hook, `mailpin check`), at every blocked send for a person.

Many of these tools run where stderr goes nowhere (aerc discards it, msmtpq queues silently, a
timer's journal is read by nobody): a block nobody sees is an outage users "fix" by turning the
check off (anchors.md lesson 7). Telling is best effort: nothing here ever changes a verdict or an
exit status, and the whole of it is bounded in time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mailpin.env import Env
from mailpin.model import Status
from mailpin.net.replies import printable, printable_lines

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.commands.verify import Outcome
    from mailpin.state.settings import Notify

BUDGET = 0.5  # seconds for all desktop notifications of one run: a block must not wait on a dead bus

# What changed, in the words of a notification's summary line; the first reason of a verdict leads.
WORDS = {
    "ca-changed": "certificate from a different CA",
    "key-changed": "certificate with a different key",
    "cert-changed": "a different certificate",
    "untrusted-chain": "certificate not trusted",
    "expired": "certificate expired",
    "not-yet-valid": "certificate not valid yet",
    "hostname-mismatch": "certificate for another name",
    "starttls-missing": "STARTTLS stripped",
    "starttls-refused": "STARTTLS refused",
    "plaintext-injection": "data injected before TLS",
    "preauth": "PREAUTH greeting: STARTTLS impossible",
    "mode-changed": "no TLS where TLS was pinned",
    "tls-version-downgrade": "TLS version downgrade",
    "config-downgrade": "the config asks for less than the profile",
    "port-changed": "another port",
    "unpinned": "no TLS profile",
    "protocol-error": "server broke the protocol",
    "unreachable": "could not verify: server unreachable",
    "timeout": "could not verify: timed out",
}

_TOLD = {Status.BLOCKED: "blocked", Status.UNVERIFIED: "unverified"}


def what_changed(outcome: Outcome) -> str:
    reasons = outcome.verdict.reasons
    if not reasons:
        return "cannot verify"
    # A change of certificate reads better led by the CA when the CA changed too.
    lead = "ca-changed" if "ca-changed" in reasons else reasons[0]
    return WORDS.get(lead, lead)


def body(outcome: Outcome, held: str = "") -> str:
    key = outcome.target.key
    lines = [str(outcome.endpoint) if outcome.endpoint else key]
    lines.append(outcome.verdict.why)
    if held:
        lines.append(held)
    lines.append(f"Review: mailpin review {key}" if outcome.target.profile else f"Pin it: mailpin init {key}")
    return printable_lines("\n".join(lines))


def announce(
    env: Env, outcomes: Sequence[Outcome], settings: Notify, held: str = "", *, send: bool = False
) -> list[str]:
    """Tell each block that is news; forget accounts that verified. Returns what was done, for the
    audit log and for tests ("desktop msmtp:work via dbus …", "notmuch msmtp:work").

    `send`: this run read a message to send (msmtp as a mail program's sendmail). A person just
    pressed send and their mail program may show nothing of why it failed (aerc discards stderr and
    shows only "exit status 69"), so the desktop is told every time, the interval notwithstanding.
    The interval is for runs nobody watches: a timer's sync every five minutes must not show the
    same block every five minutes. A told send still counts for the interval of those runs."""
    from mailpin.notify.ratelimit import RateLimit

    limit = RateLimit.for_env(env)
    try:
        limit.clear([o.target.key for o in outcomes if o.verdict.status in (Status.VERIFIED, Status.PINNED)])
    except OSError:
        pass  # only about noise
    told = [o for o in outcomes if o.verdict.status in _TOLD]
    if not told:
        return []
    # Decide, tell and record under one lock, so that a timer, a MUA and a hook hitting the same
    # block at once tell it once. Recorded only when it reached someone: a block told to nobody
    # (no desktop yet, over SSH) is still news when a desktop is there.
    with limit.locked():
        news = [o for o in told if limit.is_news(o.target.key, o.verdict.reasons, _TOLD[o.verdict.status], env.now(),
                                                 settings.interval if o.verdict.status is Status.BLOCKED
                                                 else settings.unverified_interval)]  # fmt: skip
        shown = told if send else news
        done: list[tuple[str, str]] = []
        if settings.desktop:
            done += _desktop(env, shown, held)
        if settings.notmuch:  # one alert in the inbox per episode, sends or not: mail is read later
            done += _notmuch(env, [o for o in news if o.verdict.status is Status.BLOCKED], settings, held)
        for outcome in shown:
            if any(key == outcome.target.key for key, _ in done):
                limit.record(outcome.target.key, outcome.verdict.reasons, _TOLD[outcome.verdict.status], env.now())
    return [f"{how} {key}" for key, how in done]


def _desktop(env: Env, news: Sequence[Outcome], held: str) -> list[tuple[str, str]]:
    from mailpin.notify.desktop import Note, send

    done = []
    deadline = time.monotonic() + BUDGET
    for outcome in news:
        left = deadline - time.monotonic()
        if left <= 0.05:
            break
        note = Note(
            summary=printable(f"{outcome.target.key}: {what_changed(outcome)}", 400),
            body=body(outcome, held),
            critical=outcome.verdict.status is Status.BLOCKED,
        )
        path = send(note, env.environ, timeout=left)
        if not path:
            break  # nothing reaches a desktop here (SSH, a server): do not try again for the next account
        done.append((outcome.target.key, f"desktop via {path}"))
    return done


def _notmuch(env: Env, news: Sequence[Outcome], settings: Notify, held: str) -> list[tuple[str, str]]:
    if not news:
        return []
    from mailpin.errors import MailpinError
    from mailpin.notify import notmuch

    done = []
    to = notmuch.user_address(env.environ)
    for outcome in news:
        message = notmuch.alert_message(
            outcome.target.key, what_changed(outcome), _alert_text(outcome, held), env.now(), to
        )
        try:
            notmuch.insert(message, settings.notmuch_tags, env.environ)
        except MailpinError as exc:
            print(f"mailpin: notmuch alert not added: {exc}", file=env.stderr)
            break
        done.append((outcome.target.key, "notmuch"))
    return done


def _alert_text(outcome: Outcome, held: str) -> str:
    key = outcome.target.key
    lines = [
        f"mailpin blocked {key}: the live connection does not meet the TLS profile pinned for it.",
        "",
        body(outcome, held),
        "",
        "What to do:",
        f"  mailpin review {key}    pinned and live side by side, and what changed",
        f"  mailpin accept {key}    if you expected this change (a new certificate, a new server)",
        "  mailpin queue list      messages held while blocked; `mailpin queue flush` sends them after review",
        "",
        "Nothing was sent to the server: no password, no message.",
    ]
    return "\n".join(lines)
