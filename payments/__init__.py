"""Money: the ledger, fee schedules, the payment gateway, webhooks, statements."""
