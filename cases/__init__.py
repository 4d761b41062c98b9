"""The collection domain: clients, debtors, cases, referrals, contacts, offers, plans, audit."""
