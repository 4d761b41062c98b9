"""The debtor portal (/portal): its own sign-in, session and templates."""

from portal.views import bp

__all__ = ["bp"]
