"""Telling the user about a block where they will see it."""
