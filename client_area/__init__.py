"""The client area (/client): a creditor business refers accounts, follows its own cases and
reads its statements."""

from client_area import referral_pages, statement_pages  # noqa: F401 (their routes register on bp)
from client_area.views import bp

__all__ = ["bp"]
