"""The debtor portal (/portal): its own sign-in, session, pages and language (en/es)."""

from portal import (  # noqa: F401 (routes register on the blueprint)
    early_out_pages,
    offer_pages,
    pay,
    plan_dates,
    plan_pages,
    requests,
    views,
    wording,
)
from portal.access import bp

__all__ = ["bp"]
