"""The second factor of staff and client users: TOTP secrets (encrypted at rest), codes accepted
once, recovery codes, enrolment links, the limit on bad codes, and an admin's reset."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import pyotp
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.model import Base, utcnow
from cases.sign_in_limits import SignInAttempt
from cases.users import User

RECOVERY_CODES = 10
ENROLMENT_LINK_LIFETIME = dt.timedelta(hours=72)
# A code of the previous or the next 30-second step is accepted too (clocks drift a little).
VALID_WINDOW = 1
# Bad codes are limited like passwords: five within 15 minutes refuse the account's codes for
# 15 minutes. They are rows of sign_in_attempts, shared by every process.
MAX_BAD_CODES = 5
LOCK_WINDOW = dt.timedelta(minutes=15)


def locked_keys(session: Session, keys: list[str], now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    rows = session.execute(
        sa.select(SignInAttempt.key, sa.func.count())
        .where(SignInAttempt.key.in_(keys), SignInAttempt.at > now - LOCK_WINDOW)
        .group_by(SignInAttempt.key)
    )
    return [key for key, count in rows if count >= MAX_BAD_CODES]


def record_failure(session: Session, keys: list[str], now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    session.add_all(SignInAttempt(key=key, at=now) for key in keys)


def clear_failures(session: Session, keys: list[str]) -> None:
    session.execute(sa.delete(SignInAttempt).where(SignInAttempt.key.in_(keys)))


class RecoveryCode(Base):
    """A one-time code that stands in for the authenticator; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[dt.datetime | None]


class EnrolmentLink(Base):
    """A link that lets a new user set up the authenticator before it expires; used once."""

    __tablename__ = "enrolment_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class SecondFactorError(ValueError):
    """A code or link was refused; the message says why."""


class TooManyCodes(SecondFactorError):
    """Too many bad codes for this account: refused for a while whatever the code."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _failure_key(user: User) -> str:
    return f"mfa:user:{user.id}"


def is_enrolled(user: User) -> bool:
    return user.totp_enrolled_at is not None


def pending_secret(session: Session, user: User, key: str) -> str:
    """The secret the user is enrolling with: made once, kept encrypted, shown until confirmed."""
    if is_enrolled(user):
        raise SecondFactorError("this user has already set up an authenticator")
    if user.totp_secret:
        try:
            return Fernet(key).decrypt(user.totp_secret.encode()).decode()
        except InvalidToken:
            pass  # made under another key: start again with a new one
    secret = pyotp.random_base32()
    user.totp_secret = Fernet(key).encrypt(secret.encode()).decode()
    return secret


def provisioning_uri(secret: str, user: User, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _lock_and_check(session: Session, user: User) -> None:
    """Take the user's row lock (codes for one account are checked one at a time, so that
    concurrent guesses cannot exceed the limit) and refuse if too many codes were wrong."""
    session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    if locked_keys(session, [_failure_key(user)]):
        raise TooManyCodes("Too many wrong codes. Please wait 15 minutes and try again.")


def _accept_step(session: Session, user: User, step: int) -> bool:
    """Record the step of an accepted code, unless this or a later step was accepted already
    (a code is good once): one conditional UPDATE, so two requests cannot both win."""
    result = session.execute(
        sa.update(User)
        .where(
            User.id == user.id,
            sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def _secret(user: User, key: str) -> str:
    try:
        return Fernet(key).decrypt((user.totp_secret or "").encode()).decode()
    except InvalidToken:
        raise SecondFactorError(
            "this account's authenticator cannot be read with the current MFA_ENCRYPTION_KEY; "
            "ask an admin to reset your second factor"
        ) from None


def _refuse(session: Session, user: User, message: str):
    record_failure(session, [_failure_key(user)])
    raise SecondFactorError(message)


def confirm_enrolment(
    session: Session, user: User, key: str, code: str, *, actor: audit.Actor
) -> list[str]:
    """Check the first code from the new authenticator; return the recovery codes (shown once)."""
    if is_enrolled(user):
        raise SecondFactorError("this user has already set up an authenticator")
    _lock_and_check(session, user)
    code = _normalise(code)
    step = _matching_step(_secret(user, key), code, utcnow()) if code.isdigit() else None
    if step is None or not _accept_step(session, user, step):
        _refuse(session, user, "That code is not right. Enter the 6 digits the app shows now.")
    clear_failures(session, [_failure_key(user)])
    user.totp_enrolled_at = utcnow()
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_sha256(c)) for c in codes)
    audit.record(session, actor, "user", user.id, "user.second_factor_enrolled")
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def check_code(session: Session, user: User, key: str, code: str) -> str:
    """Accept a TOTP code (once) or an unused recovery code; return which ("totp" or
    "recovery"), or raise SecondFactorError and count the failure."""
    if not is_enrolled(user):
        raise SecondFactorError("this user has not set up an authenticator")
    _lock_and_check(session, user)
    code = _normalise(code)
    if code.isdigit() and len(code) == 6:
        step = _matching_step(_secret(user, key), code, utcnow())
        if step is None:
            _refuse(session, user, "That code is not right.")
        if not _accept_step(session, user, step):
            _refuse(session, user, "That code was used already. Wait for the next one.")
        kind = "totp"
    else:
        used = session.execute(
            sa.update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == _sha256(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1:
            _refuse(session, user, "That code is not right.")
        kind = "recovery"
        audit.record(
            session,
            audit.Actor.user(user),
            "user",
            user.id,
            "user.recovery_code_used",
            left=unused_recovery_codes(session, user),
        )
    clear_failures(session, [_failure_key(user)])
    return kind


def unused_recovery_codes(session: Session, user: User) -> int:
    return session.scalar(
        sa.select(sa.func.count()).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )


def reset(session: Session, user: User, *, actor: audit.Actor) -> None:
    """Forget the user's authenticator and recovery codes: they enrol again at next sign-in."""
    if actor.user_id == user.id:
        raise SecondFactorError("you cannot reset your own second factor; ask another admin")
    was_enrolled = is_enrolled(user)
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record(
        session, actor, "user", user.id, "user.second_factor_reset", was_enrolled=was_enrolled
    )


def issue_enrolment_link(
    session: Session,
    user: User,
    *,
    actor: audit.Actor,
    lifetime: dt.timedelta = ENROLMENT_LINK_LIFETIME,
) -> str:
    """A token for the user's enrolment link (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + lifetime
    session.add(EnrolmentLink(user_id=user.id, token_hash=_sha256(token), expires_at=expires_at))
    audit.record(
        session,
        actor,
        "user",
        user.id,
        "user.enrolment_link_issued",
        expires_at=expires_at.isoformat(),
    )
    return token


def enrolment_link(session: Session, token: str) -> EnrolmentLink:
    """The link with this token, if it may still be used: refused when unknown, used, expired,
    or its user is inactive or enrolled already."""
    link = session.scalar(
        sa.select(EnrolmentLink).where(EnrolmentLink.token_hash == _sha256(token)).with_for_update()
    )
    if link is None or link.used_at is not None:
        raise SecondFactorError("This enrolment link is not valid or was used already.")
    if link.expires_at <= utcnow():
        raise SecondFactorError(
            "This enrolment link has expired. Ask an admin for a new one, or sign in to set up "
            "your authenticator."
        )
    user = session.get(User, link.user_id)
    if user is None or not user.active:
        raise SecondFactorError("This enrolment link is not valid or was used already.")
    if is_enrolled(user):
        raise SecondFactorError("This account has set up its authenticator already: sign in.")
    return link
