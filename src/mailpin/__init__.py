"""mailpin: pinned TLS profiles (RFC 8314) in front of msmtp, mbsync and offlineimap."""

__version__ = "0.1.0"
