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
the database, dropped by the kernel when the process dies), whose worker processes are each
handed batches of their own. A row lock cannot do this: it ends with the commit that must
come before the Stripe call. So `processing` with nobody holding the claim means interrupted,
and only the one runner holding it reconciles; a new attempt is started by a conditional
UPDATE that only one runner can win.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import multiprocessing
import multiprocessing.util
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cases import audit, stamps
from cases.case import Case
from cases.jobs import declare, enqueue
from cases.plans import (
    BREAK_AFTER_DAYS,
    RETRY_AFTER_DAYS,
    Installment,
    PaymentPlan,
    break_plan,
    lapse_plan,
    mark_paid,
    overdue_plans,
    unconfirmed_plans,
)
from payments.gateway import GatewayError, PaymentGateway, PaymentIntentInfo
from payments.stripe_budget import Caller
from payments.webhooks import apply_succeeded_intent, apply_succeeded_intents

# "Your bank asks you to confirm this payment", written by correspondence.autopay_mail.
AUTHENTICATION_EMAIL = declare("autopay.authentication_email", queue="mail")

log = logging.getLogger(__name__)
AUTOPAY = audit.Actor(None, "autopay")
# A PaymentIntent in these states may still succeed: its installment stays `processing`.
PENDING = ("processing", "requires_capture")
LOCK_CLASS = 7007  # the first key of installments' advisory locks on PostgreSQL
BATCH = 10  # installments a runner claims together, and records together


@dataclass
class ChargeRun:
    today: dt.date
    charged: list[int] = field(default_factory=list)  # installment ids
    failed: list[int] = field(default_factory=list)
    needs_authentication: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # Stripe unreachable or still processing
    broken: list[int] = field(default_factory=list)  # plan ids
    # Plans whose dates, moved at the end of a dispute hold, the debtor did not confirm in
    # time (plan ids; in the log, not in the JSON summary).
    lapsed: list[int] = field(default_factory=list)

    def add(self, other: ChargeRun) -> None:
        """What another runner (a worker process) did, added to this run's."""
        for name in ("charged", "failed", "needs_authentication", "pending", "broken", "lapsed"):
            getattr(self, name).extend(getattr(other, name))

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
    """Ids of autopay installments to charge today, or interrupted mid-attempt (to reconcile,
    even if their plan broke meanwhile)."""
    return list(
        session.scalars(
            sa.select(Installment.id)
            .join(PaymentPlan)
            .where(
                sa.or_(
                    Installment.status == "processing",
                    sa.and_(
                        # Only while the case is on its plan: not during a dispute hold,
                        # nor while its plan is paused (the hold, then until the debtor
                        # confirms the dates the hold's end moved it to).
                        sa.exists().where(Case.id == PaymentPlan.case_id, Case.status == "plan"),
                        PaymentPlan.status == "active",
                        PaymentPlan.autopay.is_(True),
                        PaymentPlan.stripe_payment_method_id.is_not(None),
                        _chargeable(today),
                    ),
                )
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
    def hold(self, installment_ids: list[int]) -> Iterator[list[int]]:
        """Those of the installments this runner now holds (another runner is on the rest)."""
        if self._connection is None:
            yield installment_ids
            return
        ids = {"kind": LOCK_CLASS, "ids": installment_ids}
        held = list(self._connection.scalars(_TRY_LOCK, ids))
        try:
            yield held
        finally:
            self._connection.execute(_UNLOCK, {"kind": LOCK_CLASS, "ids": held})

    def close(self) -> None:
        if self._connection is not None:
            self._connection.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            self._connection.close()


_TRY_LOCK = sa.text(
    "SELECT id FROM unnest(CAST(:ids AS integer[])) AS id WHERE pg_try_advisory_lock(:kind, id)"
)
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:kind, id) FROM unnest(CAST(:ids AS integer[])) id")
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


def _load(
    session: Session, installment_ids, *, cases: bool = True
) -> tuple[dict[int, Installment], dict[int, Case]]:
    """The installments as committed now, with their plans (and the plans' installments), and
    (with `cases`) their cases, by id: three queries for a whole batch."""
    plans = session.scalars(
        sa.select(PaymentPlan)
        .where(
            PaymentPlan.id.in_(
                sa.select(Installment.plan_id).where(Installment.id.in_(installment_ids))
            )
        )
        .options(orm.selectinload(PaymentPlan.installments))
        .execution_options(populate_existing=True)
    ).all()
    found = []
    if cases:
        found = session.scalars(
            sa.select(Case)
            .where(Case.id.in_([p.case_id for p in plans]))
            .execution_options(populate_existing=True)
        ).all()
    wanted, installments = set(installment_ids), {}
    for plan in plans:
        for installment in plan.installments:
            set_committed_value(installment, "plan", plan)  # no lazy load for what is here
            if installment.id in wanted:
                installments[installment.id] = installment
    return installments, {c.id: c for c in found}


def _claim(session: Session, installments: list[Installment], today: dt.date) -> list[int]:
    """Start a new attempt on each installment still to be charged: ones another run started
    or finished since we read them are left alone. The ids claimed."""
    if not installments:
        return []
    # Its plan still active: one a dispute paused since we read it is not charged.
    plan_active = (
        sa.select(PaymentPlan.id)
        .where(PaymentPlan.id == Installment.plan_id, PaymentPlan.status == "active")
        .exists()
    )
    claimed = session.execute(
        sa.update(Installment)
        .where(Installment.id.in_([i.id for i in installments]), plan_active, _chargeable(today))
        .values(
            attempts=Installment.attempts + 1,
            status="processing",
            next_attempt_on=None,
            last_error=None,
        )
        .returning(Installment.id, Installment.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    attempts = dict(claimed)
    # A bulk update: no flush hook changes the portal's stamps, so this does.
    stamps.touch(session, plan_ids=[i.plan_id for i in installments if i.id in attempts])
    for installment in installments:
        if installment.id in attempts:
            set_committed_value(installment, "attempts", attempts[installment.id])
            set_committed_value(installment, "status", "processing")
    return list(attempts)


def _charge(installment: Installment, case: Case) -> dict:
    """The arguments of the off-session charge for the installment's current attempt."""
    plan = installment.plan
    return {
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


def _existing(gateway: PaymentGateway, reference: str, key: str) -> PaymentIntentInfo | None:
    found = gateway.find_payment_intents(case_reference=reference, idempotency_key=key)
    if not found:
        return None
    return next((i for i in found if i.succeeded), found[-1])


def charge_batch(
    session: Session,
    gateway: PaymentGateway,
    installment_ids: list[int],
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
    after_charge=None,
) -> None:
    """Installments whose claims the caller holds: start (or resume) their attempts and commit;
    charge each (or reconcile one interrupted); record the outcomes and commit. An
    interruption leaves the batch `processing`, for the next run to reconcile. `after_charge`
    is a test hook called between Stripe's answer and our commit."""
    installments, cases = _load(session, installment_ids)
    resuming = {i for i, installment in installments.items() if installment.status == "processing"}
    fresh = [installments[i] for i in installment_ids if i in installments and i not in resuming]
    started = [*resuming, *_claim(session, fresh, today)]
    charges = {i: _charge(installments[i], cases[installments[i].plan.case_id]) for i in started}
    # The attempts' keys are on record before Stripe is called, and no transaction is left
    # open (on SQLite: no write lock held) while Stripe answers.
    session.commit()
    intents, abandoned = {}, []
    for installment_id, charge in charges.items():
        try:
            intent = None
            if installment_id in resuming:
                intent = _existing(gateway, charge["case_reference"], charge["idempotency_key"])
                if intent is None and installments[installment_id].plan.status != "active":
                    abandoned.append(installment_id)  # never charged, and its plan broke
                    continue  # (or a dispute paused it)
            if intent is None:
                intent = gateway.charge_off_session(**charge)
        except GatewayError as exc:
            log.warning(
                "installment %s: Stripe failed (%s); next run reconciles", installment_id, exc
            )
            run.pending.append(installment_id)
            continue
        if after_charge is not None:
            after_charge(intent)
        intents[installment_id] = intent
    if not intents and not abandoned:
        return
    # The cases are read again as they are posted to, under their locks (post_arrived).
    installments, _ = _load(session, [*intents, *abandoned], cases=False)
    # The payments first, all together (a few statements for the batch), then the
    # installments' outcomes, their audit events in one INSERT.
    apply_succeeded_intents(
        session,
        [
            (intent, intent.created.astimezone(zone).date(), installments[i].plan.case_id)
            for i, intent in intents.items()
            if intent.succeeded
        ],
    )
    events: list[dict] = []
    for installment_id, intent in intents.items():
        installment = installments[installment_id]
        _record_outcome(session, installment, intent, today=today, run=run, events=events)
    audit.insert_rows(session, events)
    for installment_id in abandoned:
        installment = installments[installment_id]
        if installment.plan.status == "paused":
            _withheld(installment)
        else:
            _missed(installment, "plan broken before it was charged", run)
    session.commit()


def _withheld(installment: Installment, why: str | None = None) -> None:
    """An installment of a plan a dispute hold paused, not paid: `scheduled` again if it was
    never charged, `failed` (`why`) with no retry if Stripe declined it. Never missed: the
    hold's end moves it (cases.plans.resume_after_hold)."""
    installment.status = "scheduled" if why is None else "failed"
    installment.next_attempt_on = None
    installment.last_error = why[:80] if why else None


def _missed(installment: Installment, why: str, run: ChargeRun) -> None:
    installment.status = "missed"
    installment.next_attempt_on = None
    installment.last_error = why[:80]
    run.failed.append(installment.id)


def _record_outcome(
    session: Session,
    installment: Installment,
    intent: PaymentIntentInfo,
    *,
    today: dt.date,
    run: ChargeRun,
    events: list[dict],
) -> None:
    """The installment's outcome; its audit event added to `events` (inserted by the caller)."""
    details = {
        "case_id": installment.plan.case_id,
        "payment_intent": intent.id,
        "attempt": installment.attempts,
        "amount_cents": installment.amount_cents,
    }
    installment.payment_intent_id = intent.id
    if intent.succeeded:  # and posted, by the caller
        mark_paid(session, installment, actor=AUTOPAY)
        events.append(
            audit.row(AUTOPAY, "installment", installment.id, "installment.paid", **details)
        )
        run.charged.append(installment.id)
    elif installment.plan.status == "paused" and intent.status not in PENDING:
        # Reconciled after a dispute paused its plan, and not paid: no retry, no email to the
        # debtor during the hold, not missed; the hold's end moves it.
        _withheld(installment, intent.last_error_code or intent.status)
        events.append(
            audit.row(AUTOPAY, "installment", installment.id, "installment.withheld", **details)
        )
    elif installment.plan.status != "active" and intent.status not in PENDING:
        # Reconciled after its plan broke, and not paid: missed like the plan's others.
        _missed(installment, intent.last_error_code or intent.status, run)
    elif intent.needs_authentication:
        installment.status = "failed"
        installment.last_error = "authentication_required"
        installment.next_attempt_on = None  # only the debtor, on-session, can complete it
        events.append(
            audit.row(AUTOPAY, "installment", installment.id, "installment.needs_auth", **details)
        )
        enqueue(session, AUTHENTICATION_EMAIL, installment.id)
        run.needs_authentication.append(installment.id)
    elif intent.status in PENDING:
        run.pending.append(installment.id)  # stays `processing`: the next run reconciles it
    else:
        installment.status = "failed"
        installment.last_error = (intent.last_error_code or intent.status)[:80]
        installment.next_attempt_on = today + dt.timedelta(days=RETRY_AFTER_DAYS)
        events.append(
            audit.row(
                AUTOPAY,
                "installment",
                installment.id,
                "installment.failed",
                code=installment.last_error,
                retry_on=installment.next_attempt_on.isoformat(),
                **details,
            )
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
    session: Session, gateway: PaymentGateway, batches: list[list[int]], **kwargs
) -> None:
    """One runner: each batch of installments, as many of each as it can claim."""
    claims = _Claims(session)
    try:
        for batch in batches:
            with claims.hold(batch) as held:  # another run is on the rest, and reports them
                if held:
                    charge_batch(session, gateway, held, **kwargs)
    finally:
        claims.close()


# In a worker process: its own session, claims, gateway and day (set by `_start_worker`).
_WORKER: dict = {}


def _charge_in_processes(
    open_session: Callable[[], AbstractContextManager[Session]],
    gateway: PaymentGateway,
    batches: list[list[int]],
    workers: int,
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
) -> None:
    """Batches shared out among `workers` processes as each becomes free. Processes, not
    threads: a charge costs milliseconds of Python, and threads of one process share one
    core. They fork from a server process that imported this module and the session opener's
    beforehand (so each starts in a moment), and that holds no connection to inherit."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, type(open_session).__module__])
    pool = ProcessPoolExecutor(
        workers,
        context,
        initializer=_start_worker,
        # The workers share the request budget (each a part of it, when it is in memory).
        initargs=(open_session, gateway.shared_by(workers), today, zone),
    )
    try:
        for part in pool.map(_charge_in_worker, batches):
            run.add(part)
    except BaseException:
        # A worker that died (BrokenProcessPool) or failed: its batch stays `processing`, for
        # the next run to reconcile; the batches not begun are not.
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()  # the workers end their sessions and claims as they exit


def _start_worker(open_session, gateway: PaymentGateway, today: dt.date, zone: ZoneInfo) -> None:
    resources = ExitStack()
    session = resources.enter_context(open_session())
    claims = _Claims(session)
    resources.callback(claims.close)
    _WORKER.update(session=session, claims=claims, gateway=gateway, today=today, zone=zone)
    multiprocessing.util.Finalize(None, resources.close, exitpriority=10)


def _charge_in_worker(batch: list[int]) -> ChargeRun:
    worker = _WORKER
    run = ChargeRun(worker["today"])
    with worker["claims"].hold(batch) as held:  # another run is on the rest, and reports them
        if held:
            charge_batch(
                worker["session"],
                worker["gateway"],
                held,
                today=worker["today"],
                zone=worker["zone"],
                run=run,
            )
    return run


def _shared_in_memory(session: Session) -> bool:
    engine = session.get_bind().engine
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


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
    """Charge every autopay installment due on `today`, then break plans 10 days past due
    and lapse those whose dates, moved when a dispute hold ended, the debtor left unconfirmed.

    Installments go in batches of BATCH, each claimed and committed before its Stripe calls,
    and its outcomes recorded and committed after them: an interruption loses at most one
    batch's answers, which the next run reconciles. With `workers` above 1, that many worker
    processes charge at once, each in a session `worker_session()` opens there: it and
    `gateway` must pickle (shell.autopay_cli.worker_sessions, StripeGateway)."""
    if workers > 1 and worker_session is None:
        raise ValueError("workers above 1 need a worker_session to open their own sessions")
    if workers > 1 and after_charge is not None:
        raise ValueError("after_charge (a test hook) runs in this process: use one worker")
    if workers > 1 and _shared_in_memory(session):
        raise ValueError("worker processes cannot share an in-memory SQLite database")
    if gateway is not None:
        gateway = gateway.for_caller(Caller.AUTOPAY)  # after the portal and webhooks
    run = ChargeRun(today)
    with _alone(session):
        due = due_installments(session, today)
        session.commit()
        batches = [due[i : i + BATCH] for i in range(0, len(due), BATCH)]
        if workers > 1 and len(batches) > 1:
            _charge_in_processes(
                worker_session,
                gateway,
                batches,
                min(workers, len(batches)),
                today=today,
                zone=zone,
                run=run,
            )
        else:
            _charge_each(
                session,
                gateway,
                batches,
                today=today,
                zone=zone,
                run=run,
                after_charge=after_charge,
            )
        for plan in overdue_plans(session, today):
            if break_plan(
                session,
                plan,
                actor=AUTOPAY,
                reason=f"an installment is {BREAK_AFTER_DAYS} days past due",
            ):
                run.broken.append(plan.id)
        # A hold never breaks a plan: dates it moved and the debtor did not confirm lapse it.
        for plan in unconfirmed_plans(session, today):
            if lapse_plan(session, plan, actor=AUTOPAY):
                run.lapsed.append(plan.id)
        session.commit()
    log.info("plans charge-due %s: %s, %d lapsed", today, run.as_json(), len(run.lapsed))
    return run
