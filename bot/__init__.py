"""Boomerang: customer win-back — who lapsed, talk to them, count who came back."""

__version__ = "0.1.0"
