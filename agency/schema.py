"""Imports every model module, so the metadata is whole for migrations and checks."""

from cases import (
    audit,
    case,
    clients,
    contacts,
    debtors,
    disputes,
    documents,
    ledger,
    offers,
    plans,
    referrals,
    users,
)
from payments import fees

MODEL_MODULES = (
    audit,
    case,
    clients,
    contacts,
    debtors,
    disputes,
    documents,
    offers,
    plans,
    referrals,
    users,
    fees,
    ledger,
)
