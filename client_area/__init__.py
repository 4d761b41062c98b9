"""The client area (/client): a creditor business refers accounts, follows its own cases and
disputes, and reads its statements and reports."""

from client_area import (  # noqa: F401 (their routes register on bp)
    dispute_pages,
    early_out_accounts,
    referral_pages,
    report_pages,
    statement_pages,
)
from client_area.views import bp

__all__ = ["bp"]
