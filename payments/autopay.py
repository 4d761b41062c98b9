"""Autopay: charging due plan installments off-session from the saved card, never twice.

Each attempt has an idempotency key (`installment-{id}-attempt-{n}`) that is committed before
Stripe hears of it. An installment found `processing` on a later run was interrupted between
the call and the commit: its PaymentIntent is looked up by that key in Stripe's metadata and
its outcome used, and the card is charged only when Stripe has none (localstripe ignores
idempotency keys, so this lookup is what keeps a rerun from charging again).

Runs may overlap (two workers, the daily job and a manual run). A runner works on an
installment only while it holds that installment's claim, a lock that lives exactly as long
as the runner: on PostgreSQL a session advisory lock on a connection of its own (taken with
`pg_try_advisory_lock`, so a held one is skipped, and dropped by the server when the
runner's connection dies); on SQLite, one run at a time (an exclusive `flock` on a file beside
the database, dropped by the kernel when the process dies). A row lock cannot do this: it
ends with the commit that must come before the Stripe call. So `processing` with nobody
holding the claim means interrupted, and only the one runner holding it reconciles; a new
attempt is started by a conditional UPDATE that only one runner can win.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case
from cases.jobs import enqueue
from cases.plans import (
    BREAK_AFTER_DAYS,
    RETRY_AFTER_DAYS,
    Installment,
    PaymentPlan,
    break_plan,
    mark_paid,
    overdue_plans,
)
from payments.gateway import GatewayError, PaymentGateway, PaymentIntentInfo
from payments.webhooks import apply_succeeded_intent

log = logging.getLogger(__name__)
AUTOPAY = audit.Actor(None, "autopay")
LOCK_CLASS = 7007  # the first key of installments' advisory locks on PostgreSQL


@dataclass
class ChargeRun:
    today: dt.date
    charged: list[int] = field(default_factory=list)  # installment ids
    failed: list[int] = field(default_factory=list)
    needs_authentication: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # Stripe unreachable or still processing
    broken: list[int] = field(default_factory=list)  # plan ids

    def as_json(self) -> dict:
        return {
            "as_of": self.today.isoformat(),
            "charged": len(self.charged),
            "failed": len(self.failed),
            "needs_authentication": len(self.needs_authentication),
            "pending": len(self.pending),
            "broken": len(self.broken),
        }


def _chargeable(today: dt.date) -> sa.ColumnElement[bool]:
    """By its own columns, an installment to charge today: due and not yet tried, or due for a
    retry. One 10 days past due is not charged: its plan is broken."""
    cutoff = today - dt.timedelta(days=BREAK_AFTER_DAYS)
    return sa.and_(
        Installment.due_on > cutoff,
        sa.or_(
            sa.and_(Installment.status == "scheduled", Installment.due_on <= today),
            sa.and_(
                Installment.status == "failed",
                Installment.next_attempt_on.is_not(None),
                Installment.next_attempt_on <= today,
            ),
        ),
    )


def due_installments(session: Session, today: dt.date) -> list[int]:
    """Ids of autopay installments to charge today, or interrupted mid-attempt."""
    return list(
        session.scalars(
            sa.select(Installment.id)
            .join(PaymentPlan)
            .where(
                PaymentPlan.status == "active",
                PaymentPlan.autopay.is_(True),
                PaymentPlan.stripe_payment_method_id.is_not(None),
                sa.or_(Installment.status == "processing", _chargeable(today)),
            )
            .order_by(Installment.due_on, Installment.id)
        )
    )


class _Claims:
    """One runner's claims on installments (see the module's docstring). On PostgreSQL, advisory
    locks on a connection of the runner's own, outside its transactions; on SQLite the run is
    alone (`_alone`) and every claim is granted."""

    def __init__(self, session: Session):
        engine = session.get_bind().engine
        self._connection = None
        if engine.dialect.name == "postgresql":
            self._connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def hold(self, installment_id: int) -> Iterator[bool]:
        """Whether this runner holds the installment (False: another runner is on it)."""
        if self._connection is None:
            yield True
            return
        key = {"kind": LOCK_CLASS, "id": installment_id}
        if not self._connection.scalar(sa.text("SELECT pg_try_advisory_lock(:kind, :id)"), key):
            yield False
            return
        try:
            yield True
        finally:
            self._connection.execute(sa.text("SELECT pg_advisory_unlock(:kind, :id)"), key)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            self._connection.close()


_ALONE_IN_MEMORY = threading.Lock()


@contextmanager
def _alone(session: Session) -> Iterator[None]:
    """On SQLite, wait for any other charge run on this database to end, and keep others out
    until this one does. On PostgreSQL runs overlap: the claims keep them apart."""
    engine = session.get_bind().engine
    database = engine.url.database
    if engine.dialect.name != "sqlite":
        yield
    elif not database or database == ":memory:":
        with _ALONE_IN_MEMORY:
            yield
    else:
        with Path(f"{database}.charge-due.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
            yield


def _claim(session: Session, installment: Installment, today: dt.date) -> bool:
    """Start a new attempt, if no other run started or finished one since we read it."""
    claimed = session.execute(
        sa.update(Installment)
        .where(
            Installment.id == installment.id,
            Installment.attempts == installment.attempts,
            _chargeable(today),
        )
        .values(
            attempts=Installment.attempts + 1,
            status="processing",
            next_attempt_on=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return claimed == 1


def _existing(gateway: PaymentGateway, reference: str, key: str) -> PaymentIntentInfo | None:
    found = gateway.find_payment_intents(case_reference=reference, idempotency_key=key)
    if not found:
        return None
    return next((i for i in found if i.succeeded), found[-1])


def charge_installment(
    session: Session,
    gateway: PaymentGateway,
    installment_id: int,
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
    after_charge=None,
) -> None:
    """One installment whose claim the caller holds: start (or resume) its attempt, charge or
    reconcile, record the outcome, commit. `after_charge` is a test hook called between
    Stripe's answer and our commit."""
    installment = session.get(Installment, installment_id, populate_existing=True)
    resuming = installment.status == "processing"  # and nobody else holds it: interrupted
    if not resuming:
        if not _claim(session, installment, today):
            session.rollback()
            return  # another run charged it, or is retrying it later
        session.refresh(installment)
    plan = installment.plan
    case = session.get(Case, plan.case_id)
    charge = {
        "amount_cents": installment.amount_cents,
        "customer_id": plan.stripe_customer_id,
        "payment_method_id": plan.stripe_payment_method_id,
        "case_reference": case.reference,
        "idempotency_key": installment.idempotency_key,
        "metadata": {
            "installment_id": str(installment.id),
            "plan_id": str(plan.id),
            "source": "autopay",
        },
    }
    # The attempt's key is on record before Stripe is called, and no transaction is left open
    # (on SQLite: no write lock held) while Stripe answers.
    session.commit()
    intent = None
    if resuming:
        intent = _existing(gateway, charge["case_reference"], charge["idempotency_key"])
    if intent is None:
        intent = gateway.charge_off_session(**charge)
    if after_charge is not None:
        after_charge(intent)
    _record_outcome(session, installment, case, intent, today=today, zone=zone, run=run)
    session.commit()


def _record_outcome(
    session: Session,
    installment: Installment,
    case: Case,
    intent: PaymentIntentInfo,
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
) -> None:
    installment.payment_intent_id = intent.id
    details = {
        "case_id": case.id,
        "payment_intent": intent.id,
        "attempt": installment.attempts,
        "amount_cents": installment.amount_cents,
    }
    if intent.succeeded:
        apply_succeeded_intent(session, intent, intent.created.astimezone(zone).date())
        mark_paid(session, installment, actor=AUTOPAY)
        audit.record(session, AUTOPAY, "installment", installment.id, "installment.paid", **details)
        run.charged.append(installment.id)
    elif intent.needs_authentication:
        installment.status = "failed"
        installment.last_error = "authentication_required"
        installment.next_attempt_on = None  # only the debtor, on-session, can complete it
        audit.record(
            session, AUTOPAY, "installment", installment.id, "installment.needs_auth", **details
        )
        enqueue(session, "agency.autopay:email_authentication", installment.id, queue="mail")
        run.needs_authentication.append(installment.id)
    elif intent.status in ("processing", "requires_capture"):
        run.pending.append(installment.id)  # stays `processing`: the next run reconciles it
    else:
        installment.status = "failed"
        installment.last_error = (intent.last_error_code or intent.status)[:80]
        installment.next_attempt_on = today + dt.timedelta(days=RETRY_AFTER_DAYS)
        audit.record(
            session,
            AUTOPAY,
            "installment",
            installment.id,
            "installment.failed",
            code=installment.last_error,
            retry_on=installment.next_attempt_on.isoformat(),
            **details,
        )
        run.failed.append(installment.id)


def settle_authenticated(
    session: Session, installment: Installment, intent: PaymentIntentInfo, *, zone: ZoneInfo
) -> bool:
    """The debtor confirmed a PaymentIntent on-session: post it and mark the installment paid."""
    if not intent.succeeded or intent.id != installment.payment_intent_id:
        return False
    apply_succeeded_intent(session, intent, intent.created.astimezone(zone).date())
    if installment.status != "paid":
        mark_paid(session, installment, actor=AUTOPAY)
    return True


def _charge_each(
    session: Session, gateway: PaymentGateway, installment_ids: Iterator[int], **kwargs
) -> None:
    """One runner: each installment it can claim, each its own unit of work."""
    run: ChargeRun = kwargs["run"]
    claims = _Claims(session)
    try:
        for installment_id in installment_ids:
            with claims.hold(installment_id) as held:
                if not held:
                    continue  # another run is charging it, and reports it
                try:
                    charge_installment(session, gateway, installment_id, **kwargs)
                except GatewayError as exc:
                    session.rollback()
                    log.warning(
                        "installment %s: Stripe failed (%s); next run reconciles",
                        installment_id,
                        exc,
                    )
                    run.pending.append(installment_id)
    finally:
        claims.close()


def _dealt(installment_ids: list[int]) -> Callable[[], Iterator[int]]:
    """Hands each id to exactly one of the threads that iterate over it."""
    remaining, lock = iter(installment_ids), threading.Lock()

    def share() -> Iterator[int]:
        while True:
            with lock:
                installment_id = next(remaining, None)
            if installment_id is None:
                return
            yield installment_id

    return share


def charge_due(
    session: Session,
    gateway: PaymentGateway,
    *,
    today: dt.date,
    zone: ZoneInfo,
    workers: int = 1,
    worker_session: Callable[[], AbstractContextManager[Session]] | None = None,
    after_charge=None,
) -> ChargeRun:
    """Charge every autopay installment due on `today`, then break plans 10 days past due.

    Commits after each installment (and before each Stripe call): it is its own unit of work,
    so an interruption loses at most one answer, which the next run reconciles. With `workers`
    above 1, that many threads charge at once, each in a session `worker_session()` opens."""
    run = ChargeRun(today)
    kwargs = {"today": today, "zone": zone, "run": run, "after_charge": after_charge}
    with _alone(session):
        due = due_installments(session, today)
        session.commit()
        if workers > 1 and len(due) > 1:
            share, errors = _dealt(due), []

            def work() -> None:
                try:
                    with worker_session() as own:
                        _charge_each(own, gateway, share(), **kwargs)
                except Exception as exc:  # noqa: BLE001 - raised below, once all have stopped
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(min(workers, len(due)))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
        else:
            _charge_each(session, gateway, iter(due), **kwargs)
        for plan in overdue_plans(session, today):
            break_plan(
                session,
                plan,
                actor=AUTOPAY,
                reason=f"an installment is {BREAK_AFTER_DAYS} days past due",
            )
            run.broken.append(plan.id)
        session.commit()
    log.info("plans charge-due %s: %s", today, run.as_json())
    return run
