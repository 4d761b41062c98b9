"""Text delivery through the configured provider: the `mail` queue's job for channel "text"."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from cases.jobs import handles
from cases.messages import DELIVER_TEXT, OutboundMessage
from cases.model import utcnow
from cases.sms import HttpTextProvider, TextError, TextProvider

MAX_ATTEMPTS = 5


def text_provider() -> TextProvider:
    config = current_app.config
    return HttpTextProvider(config.get("SMS_API_URL", ""), config.get("SMS_API_KEY", ""))


@handles(DELIVER_TEXT.name)
def deliver(session: Session, message_id: int) -> None:
    """Send one queued text. Sent texts are never sent again (a retried job is safe)."""
    message = session.get(OutboundMessage, message_id, with_for_update=True)
    if message is None or message.status == "sent" or message.channel != "text":
        return
    if not current_app.config.get("SMS_API_URL"):
        message.status = "failed"
        message.error = "SMS_API_URL is not set"
        return
    message.attempts += 1
    try:
        provider_id = text_provider().send(message.to_address, message.body)
    except TextError as exc:
        message.status = "failed" if message.attempts >= MAX_ATTEMPTS else "queued"
        message.error = str(exc)
        return
    message.status = "sent"
    message.provider_id = provider_id
    message.sent_at = utcnow()
    message.error = None
