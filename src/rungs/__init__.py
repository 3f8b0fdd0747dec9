"""Rungs: escalation management that reaches the right person at the right level in time."""

__version__ = "0.1.0"
