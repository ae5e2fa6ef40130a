"""Account setup as RFC 8314 means it: find the Implicit TLS endpoint, move an account there (upgrade),
set a new one up right (setup)."""
