"""The JSON API under /api/v1: bearer tokens, JSON errors, an OpenAPI description."""

from api import cases, contacts, payments, referrals, statements  # noqa: F401  (their routes register on the blueprint)
from api.base import bp

__all__ = ["bp"]
