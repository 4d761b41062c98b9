"""Text delivery through the configured provider: the `mail` queue's job for channel "text".

The hand-over follows cases.messages: the contact rules are asked again first (a text a rule
now forbids is `held`), then the provider is given the text. A transient failure (the provider
unreachable, a 5xx, 408 or 429) is tried again later with a growing wait
(correspondence.mail.retry_later); a permanent one (any other 4xx, such as an invalid number),
an answer without a message id, and a missing SMS_API_URL fail the text at once.
"""

from __future__ import annotations

import urllib.error

from flask import current_app
from sqlalchemy.orm import Session

from cases.jobs import handles
from cases.messages import (
    DELIVER_TEXT,
    claim,
    fail,
    forbidden_now,
    handover_time,
    hold,
    mark_sent,
)
from cases.sms import HttpTextProvider, TextError, TextProvider
from correspondence.mail import retry_later

# Provider answers worth another try: a timeout, too many requests, and any 5xx.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def text_provider() -> TextProvider:
    config = current_app.config
    return HttpTextProvider(config["SMS_API_URL"], config["SMS_API_KEY"])


def text_failure(exc: TextError) -> tuple[str, bool]:
    """(why, permanent) for a text the provider did not take. The provider's HTTP answer is
    the error the TextError was raised from: a 4xx (but 408, 425, 429) is permanent. No
    answer at all (unreachable, a timeout) is transient. An answer that said yes but gave no
    message id is permanent: the provider may have taken it, and a second try could send it
    twice."""
    answer = exc.__context__
    if isinstance(answer, urllib.error.HTTPError):
        code = answer.code
        return str(exc), 400 <= code < 500 and code not in TRANSIENT_STATUSES
    if isinstance(answer, OSError):
        return str(exc), False
    return str(exc), True


@handles(DELIVER_TEXT.name)
def deliver(session: Session, message_id: int) -> None:
    """Hand one queued text to the provider, if the rules still allow it. Sent, failed and
    held texts are never handed over again (a job run twice is safe)."""
    message = claim(session, message_id, "text")
    if message is None:
        return
    violations = forbidden_now(session, message, handover_time(message))
    if violations:
        hold(session, message, violations)
        return
    if not current_app.config.get("SMS_API_URL"):
        fail(session, message, "SMS_API_URL is not set")
        return
    message.attempts += 1
    try:
        provider_id = text_provider().send(message.to_address, message.body)
    except TextError as exc:
        why, permanent = text_failure(exc)
        if permanent:
            fail(session, message, why)
        else:
            retry_later(session, DELIVER_TEXT, message, why)
        return
    mark_sent(session, message, provider_id=provider_id)
