"""The JSON API under /api/v1: bearer tokens, JSON errors, an OpenAPI description."""

from api import (  # noqa: F401 (their routes register on the blueprint)
    case_lookup,
    dialer,
    payment_posting,
    referral_upload,
    statement_download,
)
from api.base import bp

__all__ = ["bp"]
