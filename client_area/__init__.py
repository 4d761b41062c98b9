"""The client area (/client): a creditor business refers accounts, follows its own cases and
reads its statements."""

from client_area import statements  # noqa: F401 (its routes register on the blueprint)
from client_area.views import bp

__all__ = ["bp"]
