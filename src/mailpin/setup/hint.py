"""Accounts that could move to Implicit TLS, said once: at the end of `mailpin init`, and in `doctor`.

For each account on STARTTLS or without TLS, the Implicit TLS port (465, 993, 995) is tried on the
host it is configured with — the host the tool connects to anyway: no DNS question of mailpin's
own, no other host — with a certificate that must validate as `mailpin upgrade` requires. An account
found able to move is named once, with `mailpin upgrade ACCOUNT`; the accounts named are kept in
`$XDG_STATE_HOME/mailpin/upgrade-told.json` and not named again (a user who stays on STARTTLS on
purpose is not nagged on every check). `mailpin upgrade` itself asks DNS too, and always says all.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from mailpin.commands.verify import Target, Verifier
from mailpin.model import DEFAULT_PORTS, Account, Mode
from mailpin.setup import find
from mailpin.state import cachefile

_NAME = "upgrade-told.json"
_TIMEOUT = 3.0  # seconds per try: a hint must not hold up init or doctor


def could_move(verifier: Verifier, targets: Sequence[Target]) -> list[tuple[str, str]]:
    """(account, HOST:PORT) for each account that could move and was not named before; each is then
    remembered as named."""
    from mailpin.commands.upgrade import as_moved, candidates

    state = verifier.env.state_home
    known = cachefile.read(state, _NAME).get("told")
    told = {key for key in known if isinstance(key, str)} if isinstance(known, list) else set()
    accounts = [account for account in candidates(targets) if account.key not in told]
    if not accounts:
        return []
    quick = replace(verifier.settings, timeout=min(verifier.settings.timeout, _TIMEOUT))
    asker = Verifier(verifier.env, quick)

    def works(account: Account) -> str | None:
        assert account.host is not None
        port = DEFAULT_PORTS[(account.protocol, Mode.IMPLICIT)]
        candidate = find.Candidate(account.host, port, "the well-known port")
        tried = find.attempt(asker, as_moved(account), candidate, None)
        return f"{account.host}:{port}" if tried.problem is None else None

    with ThreadPoolExecutor(max_workers=min(8, len(accounts))) as pool:
        answers = list(pool.map(works, accounts))
    found = [(account.key, where) for account, where in zip(accounts, answers, strict=True) if where]
    if found:
        cachefile.write(state, _NAME, {"told": sorted(told | {key for key, _ in found})})  # unwritten: said again
    return found
