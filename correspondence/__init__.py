"""Everything that speaks to a debtor or a client: email, text and PDF rendering, letterheads,
languages, mail and text delivery, receipts, notices, settlement letters, plan agreements,
reminders and statements' mail."""
