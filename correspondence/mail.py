"""Email delivery over SMTP: the `mail` queue's job, and what each message must carry."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from cases.jobs import handles
from cases.messages import DELIVER_EMAIL, OutboundMessage
from cases.model import utcnow

MAX_ATTEMPTS = 5


def render_email(template: str, language: str = "en", **context) -> tuple[str, str]:
    """(subject, body) from templates/email/<name>.txt in `language` (en or es); its first
    line is the subject."""
    with force_locale(language):
        text = render_template(f"email/{template}.txt", **context)
    subject, _, body = text.partition("\n")
    return subject.removeprefix("Subject:").strip(), body.lstrip("\n")


def render_text(template: str, language: str = "en", **context) -> str:
    """A text message's body from templates/email/<name>.txt in `language` (en or es)."""
    with force_locale(language):
        return render_template(f"email/{template}.txt", **context).strip()


@handles(DELIVER_EMAIL.name)
def deliver(session: Session, message_id: int) -> None:
    """Send one queued message. Sent messages are never sent again (a retried job is safe)."""
    message = session.get(OutboundMessage, message_id, with_for_update=True)
    if message is None or message.status == "sent":
        return
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        message.status = "failed"
        message.error = "MAIL_SERVER is not set"
        return
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = f"<outbox-{message.id}@recourse>"
    email.set_content(message.body)
    message.attempts += 1
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
            smtp.send_message(email)
    except (OSError, smtplib.SMTPException) as exc:
        message.status = "failed" if message.attempts >= MAX_ATTEMPTS else "queued"
        message.error = f"{type(exc).__name__}: {exc}"
        return
    message.status = "sent"
    message.sent_at = utcnow()
    message.error = None
