"""Imports every model module, so the metadata is whole for migrations and checks."""

from cases import (
    audit,
    case,
    clients,
    contacts,
    debtors,
    disputes,
    documents,
    jobs,
    ledger,
    messages,
    offers,
    plans,
    referrals,
    second_factor,
    sessions,
    sign_in_limits,
    stamps,  # noqa: F401 (the hook that keeps the portal's page stamps current)
    users,
)
from payments import fees, remittance, statements, unmatched, webhooks

MODEL_MODULES = (
    audit,
    case,
    clients,
    contacts,
    debtors,
    disputes,
    documents,
    jobs,
    messages,
    offers,
    plans,
    referrals,
    second_factor,
    sessions,
    sign_in_limits,
    users,
    fees,
    ledger,
    statements,
    remittance,
    unmatched,
    webhooks,
)
