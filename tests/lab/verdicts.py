"""What a careful client must conclude about each lab certificate (trust: the lab root, name: localhost).

variant -> (chain_valid, hostname_valid, reasons). Written down by hand from how each variant is
made in `pki.py`, not computed by mailpin.
"""

EXPECTED = {
    "good": (True, True, ()),
    "renewed": (True, True, ()),
    "new-key": (True, True, ()),
    "foreign-ca": (False, True, ("untrusted-chain",)),
    "expired": (False, True, ("expired",)),
    "not-yet-valid": (False, True, ("not-yet-valid",)),
    "wrong-name": (True, False, ("hostname-mismatch",)),
    "self-signed": (False, True, ("untrusted-chain",)),
}
