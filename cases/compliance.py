"""The contact rules of SPEC §6 as pure functions: may this contact happen now, and if not, when.

Consumer debts follow the FDCPA (15 U.S.C. 1692 et seq.), Regulation F (12 CFR 1006) and the
stricter Massachusetts and Washington rules; commercial debts follow agency policy. No
database, no web: plain values in (the debtor's facts, the case's earlier contacts, the contact
asked about), plain values out (the rules it breaks, and the next moment it would break none).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cases.timezones import US_ZONES

CHANNELS = ("call", "email", "letter", "text", "portal")
DIRECTIONS = ("outbound", "inbound")
CALL_OUTCOMES = ("no_answer", "voicemail", "busy", "wrong_number", "conversation")
KINDS = ("consumer", "commercial")

RULES = (
    "time_window",
    "inconvenient_time",
    "call_frequency",
    "conversation_quiet_period",
    "massachusetts_limit",
    "massachusetts_other_numbers",
    "washington_limit",
    "cease",
    "attorney",
    "dispute_hold",
    "opt_out",
    "commercial_daily_call",
    "wrong_number",
    "validation_notice_overdue",
)

# Purposes a message can have, for the exceptions the law allows:
PURPOSES = (
    "collection",
    "validation_notice",
    "cease_confirmation",
    "remedy_notice",
    "verification",
    # The original creditor's name and address, answering a request under 1006.38(c).
    "original_creditor",
    "attorney",
    # A receipt for a payment the debtor just made: an answer, at once, to the debtor's own act.
    "receipt",
    # A reminder in the client's name before collection (cases.early_out): the hours, opt-outs,
    # text consent and stop still apply; it starts no validation-notice clock.
    "early_out",
)

# 12 CFR 1006.6(b)(1)(i): before 8 a.m. or after 9 p.m. local time is presumed inconvenient.
WINDOW_START = time(8, 0)
WINDOW_END = time(21, 0)  # exclusive: 21:00:00 itself is "after 9 p.m."
TIMED_CHANNELS = ("call", "text", "email")
OPT_OUT_CHANNELS = ("call", "text", "email")

ROLLING = timedelta(days=7)
# 12 CFR 1006.14(b)(2)(i)(A): more than seven calls within seven consecutive days.
FEDERAL_CALL_LIMIT = 7
# 12 CFR 1006.14(b)(2)(i)(B): the conversation's date is day one of seven.
QUIET_DAYS = 7
MASSACHUSETTS_LIMIT = 2
# 209 CMR 18.14(1)(d): two in each 30-day period to a number that is not the debtor's own.
MASSACHUSETTS_OTHER_LIMIT = 2
MASSACHUSETTS_OTHER_PERIOD = timedelta(days=30)
WASHINGTON_LIMIT = 3
COMMERCIAL_DAILY_CALLS = 1

# Rules that waiting does not cure: only a change in the facts (a withdrawn opt-out, a sent
# verification, ...) lifts them, so no next allowed time is offered.
NEVER_BY_WAITING = frozenset(
    {"cease", "attorney", "dispute_hold", "opt_out", "wrong_number", "validation_notice_overdue"}
)
# 12 CFR 1006.34(a)(1)(i)(B): the validation notice goes out within five days after the
# initial communication (SPEC §6.7).
NOTICE_DAYS = timedelta(days=5)
HORIZON = timedelta(days=31)

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_PLURAL = {"call": "calls", "text": "texts", "email": "emails"}


def _require_aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} is a naive datetime: pass a timezone-aware one")


def _require(value: object, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of: {', '.join(allowed)} (got {value!r})")


@dataclass(frozen=True)
class PastContact:
    channel: str  # call, email, letter, text, portal
    direction: str  # outbound | inbound
    outcome: str | None  # for calls: no_answer, voicemail, busy, wrong_number, conversation
    occurred_at: datetime  # aware
    target: str | None = None  # the number (or address) used, when known

    def __post_init__(self) -> None:
        _require(self.channel, CHANNELS, "channel")
        _require(self.direction, DIRECTIONS, "direction")
        if self.channel == "call" and self.outcome is not None:
            _require(self.outcome, CALL_OUTCOMES, "call outcome")
        _require_aware(self.occurred_at, "occurred_at")

    @property
    def is_call_attempt(self) -> bool:
        # SPEC §6.2: every outbound call but `busy` is an attempt; a busy line was never placed.
        return self.channel == "call" and self.direction == "outbound" and self.outcome != "busy"

    @property
    def is_conversation(self) -> bool:
        return self.channel == "call" and self.outcome == "conversation"


@dataclass(frozen=True)
class TimeRange:
    days: tuple[int, ...]  # weekday numbers 0=Mon..6=Sun the debtor named (all 7 if every day)
    start: time  # debtor's local time
    end: time  # end exclusive; start < end (an overnight wish is two ranges)

    def __post_init__(self) -> None:
        if not self.days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in self.days):
            raise ValueError("days must be weekday numbers 0 (Monday) to 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("an inconvenient time is the debtor's wall-clock time, without a zone")
        if not self.start < self.end:
            raise ValueError("start must be before end (an overnight range is two ranges)")
        object.__setattr__(self, "days", tuple(sorted(set(self.days))))

    def covers(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def describe(self) -> str:
        days = "every day" if len(self.days) == 7 else ", ".join(_DAY_NAMES[d] for d in self.days)
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class DebtorFacts:
    kind: str  # consumer | commercial
    state: str | None  # 2-letter state of the debtor's address (MA and WA have extra rules)
    zones: tuple[str, ...]  # candidate time zones (from cases.timezones.candidate_zones)
    inconvenient: tuple[TimeRange, ...] = ()
    cease_requested_at: datetime | None = None
    attorney_since: datetime | None = None  # the agency knows an attorney represents the debtor
    dispute_hold: bool = False  # case is `disputed` inside the validation period
    opted_out: frozenset[str] = frozenset()  # "call", "text", "email"
    # Numbers a call found to be someone else's (SPEC §6.13): never called or texted again.
    wrong_numbers: frozenset[str] = frozenset()
    # Numbers on file that are not the debtor's own (work, other): Massachusetts allows two
    # calls or texts to them in 30 days (209 CMR 18.14(1)(d)).
    other_numbers: frozenset[str] = frozenset()
    # No validation notice yet and a first communication on record: after this instant only
    # the notice may go out (first communication + 5 days).
    notice_due_by: datetime | None = None

    def __post_init__(self) -> None:
        _require(self.kind, KINDS, "kind")
        for name in self.zones:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r}") from None
        for when, what in (
            (self.cease_requested_at, "cease_requested_at"),
            (self.attorney_since, "attorney_since"),
            (self.notice_due_by, "notice_due_by"),
        ):
            if when is not None:
                _require_aware(when, what)
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "inconvenient", tuple(self.inconvenient))
        object.__setattr__(self, "opted_out", frozenset(self.opted_out))
        object.__setattr__(self, "wrong_numbers", frozenset(self.wrong_numbers))
        object.__setattr__(self, "other_numbers", frozenset(self.other_numbers))


@dataclass(frozen=True)
class Violation:
    rule: str  # stable code, one of RULES
    message: str  # plain English for a collector, naming times in the debtor's zone


@dataclass(frozen=True)
class Window:
    allowed: bool
    reasons: tuple[str, ...]  # messages of the violations now (empty when allowed)
    # Earliest instant >= at when check() would be empty, in UTC; `at` itself when allowed now;
    # None when no wait will do (cease, attorney, dispute hold, opt-out) or none within 31 days.
    next_allowed_at: datetime | None


@dataclass(frozen=True)
class _Contact:
    """The contact being judged, with what the rules need to judge it."""

    facts: DebtorFacts
    past: tuple[PastContact, ...]  # strictly before `at`, oldest first
    channel: str
    at: datetime
    outcome: str | None
    purpose: str
    zones: tuple[ZoneInfo, ...]
    target: str | None = None  # the number dialled or texted, when known

    @property
    def is_call_attempt(self) -> bool:
        # When the outcome is not known yet (asking before dialling) the call is an attempt.
        return self.channel == "call" and self.outcome != "busy"

    @property
    def state(self) -> str:
        return (self.facts.state or "").strip().upper()

    def local(self, zone: ZoneInfo) -> datetime:
        return self.at.astimezone(zone)

    def shown(self, instant: datetime) -> str:
        """An instant in the debtor's (first candidate) zone, for a message."""
        zone = self.zones[0]
        return f"{instant.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"


def _local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # fold=0: in a DST gap this is the moment the clocks jump, in an overlap the first pass,
    # i.e. the earliest instant at which the local clock reads `clock` or later on `day`.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _rolling_limit(
    c: _Contact,
    counts: Callable[[PastContact], bool],
    limit: int,
    period: timedelta = ROLLING,
) -> tuple[int, datetime] | None:
    """(how many counted contacts are in the `period` before `at`, when enough of them will
    have aged out for one more) if `limit` are already there, else None."""
    recent = sorted(p.occurred_at for p in c.past if counts(p) and p.occurred_at > c.at - period)
    if len(recent) < limit:
        return None
    return len(recent), recent[len(recent) - limit] + period


# The rules, one function each: the contact in, a Violation or None out.

# Official interpretation of 1006.6(b)(1)(i): a debtor who communicates at a time may be
# answered once at that time, through the same medium. A receipt answers the debtor's payment.
_ANSWERS = ("receipt",)


def _time_window(c: _Contact) -> Violation | None:
    # 12 CFR 1006.6(b)(1)(i); an email or text is judged by when it is sent (SPEC §6.1).
    # Washington allows calls from 07:30 (RCW 19.16.250), but the federal 08:00 still binds,
    # so this one window serves every state.
    if c.channel not in TIMED_CHANNELS or c.purpose in _ANSWERS:
        return None
    outside = [
        (zone, local)
        for zone in c.zones
        if not WINDOW_START <= (local := c.local(zone)).time() < WINDOW_END
    ]
    if not outside:
        return None
    now = ", ".join(f"{local:%H:%M} in {zone.key}" for zone, local in outside)
    every = " in every time zone the debtor may be in" if len(c.zones) > 1 else ""
    return Violation(
        "time_window",
        f"It is {now}; {_PLURAL[c.channel]} are allowed "
        f"{WINDOW_START:%H:%M}–{WINDOW_END:%H:%M} the debtor's time{every}.",
    )


def _inconvenient_time(c: _Contact) -> Violation | None:
    # 12 CFR 1006.6(b)(1)(i): a time the debtor said is inconvenient is off limits, whatever
    # the clock says.
    if c.channel not in TIMED_CHANNELS or c.purpose in _ANSWERS:
        return None
    for zone in c.zones:
        local = c.local(zone)
        for wish in c.facts.inconvenient:
            if wish.covers(local):
                return Violation(
                    "inconvenient_time",
                    f"It is {local:%a %H:%M} in {zone.key}, a time the debtor said is "
                    f"inconvenient ({wish.describe()}).",
                )
    return None


def _call_frequency(c: _Contact) -> Violation | None:
    # 12 CFR 1006.14(b)(2)(i)(A): placing a call after 7 attempts in 7 consecutive days is
    # presumed harassment. Counted per case (per debt) over a rolling 7 × 24 hours.
    if not c.is_call_attempt:
        return None
    over = _rolling_limit(c, lambda p: p.is_call_attempt, FEDERAL_CALL_LIMIT)
    if over is None:
        return None
    count, free_at = over
    return Violation(
        "call_frequency",
        f"{count} call attempts were made in the 7 days before this one; Reg F allows "
        f"{FEDERAL_CALL_LIMIT} in 7 days; the count allows another call from {c.shown(free_at)}.",
    )


def _conversation_quiet_period(c: _Contact) -> Violation | None:
    # 12 CFR 1006.14(b)(2)(i)(B): no call within 7 days after a telephone conversation about
    # the debt, inbound or outbound; the conversation's date is day one, in local dates.
    if not c.is_call_attempt:
        return None
    latest: tuple[datetime, date, ZoneInfo] | None = None
    for talk in c.past:
        if not talk.is_conversation:
            continue
        for zone in c.zones:
            talked_on = talk.occurred_at.astimezone(zone).date()
            first_free = talked_on + timedelta(days=QUIET_DAYS)
            if c.local(zone).date() < first_free:
                ends = _local_instant(first_free, time(0), zone)
                if latest is None or ends > latest[0]:
                    latest = (ends, talked_on, zone)
    if latest is None:
        return None
    ends, talked_on, zone = latest
    return Violation(
        "conversation_quiet_period",
        f"A telephone conversation with the debtor took place on {talked_on:%a %Y-%m-%d} "
        f"({zone.key}); no call for 7 days counting that day, so not before "
        f"{ends.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}.",
    )


def _massachusetts_limit(c: _Contact) -> Violation | None:
    # 940 CMR 7.04(1)(f): no more than two calls (texts counted with them) in a 7-day period.
    if c.state != "MA" or not (c.channel == "text" or c.is_call_attempt):
        return None

    def counts(p: PastContact) -> bool:
        return p.is_call_attempt or (p.channel == "text" and p.direction == "outbound")

    over = _rolling_limit(c, counts, MASSACHUSETTS_LIMIT)
    if over is None:
        return None
    count, free_at = over
    return Violation(
        "massachusetts_limit",
        f"{count} calls or texts were made in the 7 days before this one; Massachusetts allows "
        f"{MASSACHUSETTS_LIMIT} in 7 days; the count allows another from {c.shown(free_at)}.",
    )


def _massachusetts_other_numbers(c: _Contact) -> Violation | None:
    # 209 CMR 18.14(1)(d): besides two in 7 days to the debtor's own numbers, no more than two
    # calls or texts in each 30-day period to a number that is not the debtor's own (work,
    # other). Counted per case over a rolling 30 × 24 hours, on the calls and texts to such
    # numbers.
    if c.state != "MA" or not (c.channel == "text" or c.is_call_attempt):
        return None
    others = c.facts.other_numbers
    if c.target not in others:
        return None

    def counts(p: PastContact) -> bool:
        if p.target not in others:
            return False
        return p.is_call_attempt or (p.channel == "text" and p.direction == "outbound")

    over = _rolling_limit(c, counts, MASSACHUSETTS_OTHER_LIMIT, MASSACHUSETTS_OTHER_PERIOD)
    if over is None:
        return None
    count, free_at = over
    return Violation(
        "massachusetts_other_numbers",
        f"{count} calls or texts were made in the 30 days before this one to numbers that are "
        f"not the debtor's own; Massachusetts allows {MASSACHUSETTS_OTHER_LIMIT} in 30 days "
        f"(209 CMR 18.14(1)(d)); the count allows another from {c.shown(free_at)}.",
    )


def _wrong_number(c: _Contact) -> Violation | None:
    # SPEC §6.13: a call that reached someone else marks the number as not the debtor's.
    # Calling or texting it again would be a communication with a third party (1006.6(d)).
    if c.channel not in ("call", "text") or c.target not in c.facts.wrong_numbers:
        return None
    return Violation(
        "wrong_number",
        f"{c.target} is not the debtor's number (a call reached someone else); it is never "
        f"called or texted again.",
    )


_WASHINGTON_CHANNELS = ("call", "text", "email", "letter")


def _washington_limit(c: _Contact) -> Violation | None:
    # RCW 19.16.250: no more than three communications with the debtor in a single week, read
    # as any 7 days in a row. Portal messages are read by the debtor when they choose to visit.
    if c.state != "WA" or c.channel not in _WASHINGTON_CHANNELS:
        return None
    if c.channel == "call" and not c.is_call_attempt:
        return None

    def counts(p: PastContact) -> bool:
        if p.channel == "call":
            return p.is_call_attempt
        return p.channel in _WASHINGTON_CHANNELS and p.direction == "outbound"

    over = _rolling_limit(c, counts, WASHINGTON_LIMIT)
    if over is None:
        return None
    count, free_at = over
    return Violation(
        "washington_limit",
        f"{count} communications (calls, texts, emails, letters) were sent in the 7 days before "
        f"this one; Washington allows {WASHINGTON_LIMIT} a week; the count allows another from "
        f"{c.shown(free_at)}.",
    )


def _cease(c: _Contact) -> Violation | None:
    # 15 U.S.C. 1692c(c), 12 CFR 1006.6(c): after a written request to stop, only a notice that
    # collection stops or of a specific remedy, and only in writing.
    asked = c.facts.cease_requested_at
    if asked is None or c.at < asked:
        return None
    if c.channel == "letter" and c.purpose in ("cease_confirmation", "remedy_notice"):
        return None
    return Violation(
        "cease",
        f"The debtor asked in writing on {asked.astimezone(c.zones[0]):%Y-%m-%d} that contact "
        f"stop; only a letter saying collection stops, or notifying of a specific remedy, may "
        f"be sent.",
    )


def _attorney(c: _Contact) -> Violation | None:
    # 15 U.S.C. 1692c(a)(2), 12 CFR 1006.6(b)(2): once the agency knows an attorney represents
    # the debtor, it talks to the attorney.
    since = c.facts.attorney_since
    if since is None or c.at < since or c.purpose == "attorney":
        return None
    return Violation(
        "attorney",
        f"An attorney represents the debtor (known since "
        f"{since.astimezone(c.zones[0]):%Y-%m-%d}); contact the attorney instead.",
    )


# The verification (or the original creditor's name) ends the hold and the validation notice
# starts the period; a notice that collection stops is not collection activity either.
_DURING_HOLD = (
    "verification",
    "original_creditor",
    "validation_notice",
    "cease_confirmation",
    "receipt",
)


def _dispute_hold(c: _Contact) -> Violation | None:
    # 15 U.S.C. 1692g(b), 12 CFR 1006.38(c) and (d)(2): a dispute, or a request for the
    # original creditor, inside the validation period stops collection until it is answered.
    if not c.facts.dispute_hold or c.purpose in _DURING_HOLD:
        return None
    return Violation(
        "dispute_hold",
        "The debtor disputed the debt inside the validation period (or asked for the original "
        "creditor): no collection activity until the answer has been sent.",
    )


def _validation_notice_overdue(c: _Contact) -> Violation | None:
    # 12 CFR 1006.34(a)(1): the notice was due within 5 days of the first communication and
    # has not gone out; until it does, it is the only thing that may.
    due = c.facts.notice_due_by
    if due is None or c.at <= due or c.purpose == "validation_notice":
        return None
    return Violation(
        "validation_notice_overdue",
        f"The validation notice was due by {c.shown(due)} (5 days after the first "
        f"communication) and has not been sent: send it before anything else.",
    )


def _opt_out(c: _Contact) -> Violation | None:
    # 12 CFR 1006.14(h) and 1006.6(e): a medium the debtor asked not to be used is closed.
    if c.channel not in OPT_OUT_CHANNELS or c.channel not in c.facts.opted_out:
        return None
    return Violation(
        "opt_out",
        f"The debtor opted out of {_PLURAL[c.channel]}; use another channel.",
    )


def _commercial_daily_call(c: _Contact) -> Violation | None:
    # Agency policy for business debts (SPEC §6.8): one call attempt per calendar day, in the
    # debtor's local dates; with several zones a shared date in any of them counts.
    if not c.is_call_attempt:
        return None
    for past in c.past:
        if not past.is_call_attempt:
            continue
        for zone in c.zones:
            day = past.occurred_at.astimezone(zone).date()
            if day == c.local(zone).date():
                return Violation(
                    "commercial_daily_call",
                    f"A call attempt was already made on {day:%a %Y-%m-%d} ({zone.key}); "
                    f"agency policy allows {COMMERCIAL_DAILY_CALLS} per day on a business "
                    f"account.",
                )
    return None


Rule = Callable[[_Contact], Violation | None]

CONSUMER_RULES: tuple[Rule, ...] = (
    _time_window,
    _inconvenient_time,
    _call_frequency,
    _conversation_quiet_period,
    _massachusetts_limit,
    _massachusetts_other_numbers,
    _washington_limit,
    _cease,
    _attorney,
    _dispute_hold,
    _opt_out,
    _wrong_number,
    _validation_notice_overdue,
)
# Business debts are outside the FDCPA; the agency keeps the time window, honours opt-outs and
# dispute holds, and limits calls to one a day.
COMMERCIAL_RULES: tuple[Rule, ...] = (
    _time_window,
    _dispute_hold,
    _opt_out,
    _commercial_daily_call,
    _wrong_number,
)


def _contact(
    facts: DebtorFacts,
    history: Sequence[PastContact],
    channel: str,
    at: datetime,
    outcome: str | None,
    purpose: str,
    target: str | None = None,
) -> _Contact:
    _require_aware(at, "at")
    _require(channel, CHANNELS, "channel")
    _require(purpose, PURPOSES, "purpose")
    if channel == "call" and outcome is not None:
        _require(outcome, CALL_OUTCOMES, "call outcome")
    for past in history:
        _require_aware(past.occurred_at, "a past contact's occurred_at")
    # Only the past counts: a contact at the same instant or later is not history yet.
    past = tuple(sorted((p for p in history if p.occurred_at < at), key=lambda p: p.occurred_at))
    names = facts.zones or US_ZONES  # nothing known: every US zone (SPEC §6.1)
    zones = tuple(map(ZoneInfo, names))
    return _Contact(facts, past, channel, at, outcome, purpose, zones, target)


def _violations(c: _Contact) -> list[Violation]:
    rules = COMMERCIAL_RULES if c.facts.kind == "commercial" else CONSUMER_RULES
    return [v for rule in rules if (v := rule(c)) is not None]


def check(
    facts: DebtorFacts,
    history: Sequence[PastContact],
    channel: str,
    at: datetime,
    *,
    direction: str = "outbound",
    outcome: str | None = None,
    purpose: str = "collection",
    target: str | None = None,
) -> list[Violation]:
    """Every rule the contact (channel, at) breaks, given the case's earlier contacts; [] when
    it is allowed. Inbound contacts break no rule. A `busy` call is not an attempt. `target`
    is the number called or texted, when known (wrong numbers, Massachusetts' other numbers)."""
    _require(direction, DIRECTIONS, "direction")
    contact = _contact(facts, history, channel, at, outcome, purpose, target)
    if direction == "inbound":
        return []
    return _violations(contact)


def _candidates(c: _Contact) -> Iterator[datetime]:
    """Every instant in (at, at + 31 days], in order, at which a rule that blocks now can stop
    blocking: the earliest allowed instant is one of them, since every block ends at one.

    Generated a day at a time (most answers come within a day or two): an instant is yielded
    once no later day, in any zone, can still produce an earlier one."""
    until = c.at + HORIZON
    # A contact leaves the rolling 7 days (federal, MA, WA counts) exactly 7 days after it,
    # and Massachusetts' 30 days for other numbers 30 days after it.
    pending = [(p.occurred_at + ROLLING).astimezone(UTC) for p in c.past]
    pending += [(p.occurred_at + MASSACHUSETTS_OTHER_PERIOD).astimezone(UTC) for p in c.past]
    heapq.heapify(pending)
    todays = [(zone, c.local(zone).date()) for zone in c.zones]
    last: datetime | None = None
    for offset in range(HORIZON.days + 2):
        for zone, today in todays:
            day = today + timedelta(days=offset)
            # Midnight ends a quiet period and a commercial day; 08:00 opens the time window.
            heapq.heappush(pending, _local_instant(day, time(0), zone))
            heapq.heappush(pending, _local_instant(day, WINDOW_START, zone))
            for wish in c.facts.inconvenient:
                if day.weekday() in wish.days:
                    heapq.heappush(pending, _local_instant(day, wish.end, zone))
        next_day = min(
            _local_instant(today + timedelta(days=offset + 1), time(0), zone)
            for zone, today in todays
        )
        while pending and pending[0] < next_day:
            instant = heapq.heappop(pending)
            if instant > until:
                return
            if instant > c.at and instant != last:
                last = instant
                yield instant


def window(
    facts: DebtorFacts,
    history: Sequence[PastContact],
    channel: str,
    at: datetime,
    *,
    purpose: str = "collection",
    target: str | None = None,
) -> Window:
    """Whether an outbound contact on `channel` (to the number `target`, when given) is allowed
    at `at`, why not, and the earliest instant it will be (exact to the second, in UTC), judged
    on the contacts made before `at`."""
    contact = _contact(facts, history, channel, at, None, purpose, target)
    now = _violations(contact)
    if not now:
        return Window(True, (), at.astimezone(UTC))
    reasons = tuple(v.message for v in now)
    if any(v.rule in NEVER_BY_WAITING for v in now):
        return Window(False, reasons, None)
    for instant in _candidates(contact):
        then = _violations(replace(contact, at=instant))
        if not then:
            return Window(False, reasons, instant)
        if any(v.rule in NEVER_BY_WAITING for v in then):
            return Window(False, reasons, None)  # it starts later and will not end
    return Window(False, reasons, None)
