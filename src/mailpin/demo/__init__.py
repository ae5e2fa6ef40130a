"""`mailpin demo`: mailpin's main job, on throwaway servers, in a few seconds.

A temporary directory gets its own HOME with msmtp and mbsync configs, a throwaway CA and two
loopback servers started by this process (`lab.py`, `smtp.py`, `imap.py`); the story (`story.py`)
pins, sends and syncs through the wrappers, then plays two attacks. Nothing of the user's is read or
written; everything is removed at the end, whatever happened.
"""

from __future__ import annotations

import time

from mailpin.env import Env


def run(env: Env, *, keep: bool = False, quiet: bool = False) -> int:
    """0 when every step behaved as shown, else 1 (the step that did not is named)."""
    from mailpin.demo import lab, story

    out = env.stdout
    started = time.monotonic()
    print("mailpin demo: pin two accounts, then watch two attacks fail — on throwaway servers.", file=out)
    print("Nothing of yours is read or changed.", file=out, flush=True)
    failed: story.Failed | None = None
    try:
        with lab.opened(env.environ, keep=keep) as world:
            root, told = world.root, story.Story(world, out, quiet=quiet)
            try:
                story.play(told)
            except story.Failed as exc:
                failed = exc
    except KeyboardInterrupt:
        kept = "kept" if keep else "removed"
        print(f"\nmailpin demo: interrupted; servers stopped, temporary directory {kept}.", file=env.stderr)
        return 130
    seconds = time.monotonic() - started
    where = f"kept {root}" if keep else f"removed {root}"
    print(f"\nServers stopped; {where}.", file=out)
    if failed is not None:
        print(f"mailpin demo: FAILED after {seconds:.1f} s: {failed}", file=env.stderr)
        return 1
    print(f"All {told.count} steps behaved as shown, in {seconds:.1f} s.", file=out)
    return 0
