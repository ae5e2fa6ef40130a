"""Everything that touches a socket lives in this package."""
