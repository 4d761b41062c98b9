"""Email delivery over SMTP: the `mail` queue's job, and what each message must carry.

The hand-over follows cases.messages: the contact rules are asked again first (a message a
rule now forbids is `held`), then the mail server is given the message. A transient failure
(the server unreachable or disconnecting, an SMTP 4xx) is tried again later with a growing
wait (`retry_later`); a permanent one (an SMTP 5xx: a refused recipient, a refused message)
and a missing MAIL_SERVER fail the message at once.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from cases.early_out import sender_of
from cases.jobs import Job, OutboxJob, handles
from cases.messages import (
    DELIVER_EMAIL,
    OutboundMessage,
    claim,
    fail,
    forbidden_now,
    handover_time,
    hold,
    mark_sent,
    wait_for_retry,
)
from cases.model import utcnow
from shell.job_runner import SWEEP_AFTER


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


def retry_later(session: Session, job: Job, message: OutboundMessage, reason: str) -> None:
    """A transient failure: the message stays queued and its next attempt is written to the
    job outbox, not run now. The outbox's sweep (every minute: `flask jobs sweep` from cron
    without Redis, RQ's cron scheduler with it, and each worker as it starts) sends a job
    SWEEP_AFTER after it was asked for, so the attempt is written as asked for SWEEP_AFTER
    before it is due. Written in this unit of work, it survives a restart and Redis being
    away; once cases.messages.MAX_ATTEMPTS are spent the message fails instead."""
    due = wait_for_retry(session, message, reason, utcnow())
    if due is not None:
        session.add(
            OutboxJob(
                name=job.name, queue=job.queue, args=[message.id], created_at=due - SWEEP_AFTER
            )
        )


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def smtp_failure(exc: Exception) -> tuple[str, bool]:
    """(why, permanent) for a failed SMTP hand-over: a 5xx answer is permanent (sending again
    would get the same answer), a 4xx or a connection that failed is transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = [(code, _answer(code, text)) for code, text in exc.recipients.values()]
        why = "; ".join(text for _, text in answers)
        return f"the mail server refused the address: {why}", all(c >= 500 for c, _ in answers)
    if isinstance(exc, smtplib.SMTPResponseException):
        why = _answer(exc.smtp_code, exc.smtp_error)
        return f"the mail server answered {why}", exc.smtp_code >= 500
    return f"the mail server could not be reached: {type(exc).__name__}: {exc}", False


@handles(DELIVER_EMAIL.name)
def deliver(session: Session, message_id: int) -> None:
    """Hand one queued email to the mail server, if the rules still allow it. Sent, failed
    and held messages are never handed over again (a job run twice is safe)."""
    message = claim(session, message_id, "email")
    if message is None:
        return
    violations = forbidden_now(session, message, handover_time(message))
    if violations:
        hold(session, message, violations)
        return
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        fail(session, message, "MAIL_SERVER is not set")
        return
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    if message.purpose == "early_out":  # in the client's name (cases.early_out)
        name, reply_to = sender_of(session, message.case_id)
        email.replace_header("From", formataddr((name, parseaddr(email["From"])[1])))
        if reply_to:
            email["Reply-To"] = reply_to
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = f"<outbox-{message.id}@recourse>"
    email.set_content(message.body)
    message.attempts += 1
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
            smtp.send_message(email)
    except (OSError, smtplib.SMTPException) as exc:
        why, permanent = smtp_failure(exc)
        if permanent:
            fail(session, message, why)
        else:
            retry_later(session, DELIVER_EMAIL, message, why)
        return
    mark_sent(session, message)
