"""The client area (/client): a creditor business refers accounts, follows its own cases and
reads its statements."""

from client_area import (  # noqa: F401 (their routes register on bp)
    early_out_accounts,
    referral_pages,
    statement_pages,
)
from client_area.views import bp

__all__ = ["bp"]
