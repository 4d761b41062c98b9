"""Tests for cases/compliance.py: each contact rule of SPEC §6 at its edges, and the next
allowed time. Every time is fixed and aware; nothing reads the clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cases.compliance import (
    CHANNELS,
    PURPOSES,
    RULES,
    DebtorFacts,
    PastContact,
    TimeRange,
    Violation,
    Window,
    check,
    window,
)
from cases.timezones import US_ZONES, candidate_zones

CHICAGO = ZoneInfo("America/Chicago")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
HONOLULU = ZoneInfo("Pacific/Honolulu")
EVERY_DAY = tuple(range(7))


def chicago(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in 2026, Chicago time (Jan 5 2026 is a Monday)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=CHICAGO)


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def facts(**changes) -> DebtorFacts:
    values = {"kind": "consumer", "state": "IL", "zones": ("America/Chicago",)} | changes
    return DebtorFacts(**values)


def call(at: datetime, outcome: str = "no_answer", direction: str = "outbound") -> PastContact:
    return PastContact("call", direction, outcome, at)


def sent(channel: str, at: datetime) -> PastContact:
    return PastContact(channel, "outbound", None, at)


def rules(violations: list[Violation]) -> list[str]:
    return [v.rule for v in violations]


def daily_calls(first: datetime, count: int, outcome: str = "no_answer") -> list[PastContact]:
    return [call(first + timedelta(days=n), outcome) for n in range(count)]


def test_the_published_names():
    assert CHANNELS == ("call", "email", "letter", "text", "portal")
    assert RULES == (
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
    assert PURPOSES == (
        "collection",
        "validation_notice",
        "cease_confirmation",
        "remedy_notice",
        "verification",
        "original_creditor",
        "attorney",
        "receipt",
        "early_out",
    )


# --- time_window: 08:00–21:00 in every candidate zone (12 CFR 1006.6(b)(1)(i)) ---


@pytest.mark.parametrize("channel", ["call", "text", "email"])
@pytest.mark.parametrize(
    ("hour", "minute", "second", "allowed"),
    [
        (8, 0, 0, True),
        (7, 59, 0, False),
        (7, 59, 59, False),
        (20, 59, 0, True),
        (20, 59, 59, True),
        (21, 0, 0, False),
        (0, 0, 0, False),
    ],
)
def test_time_window_edges(channel, hour, minute, second, allowed):
    found = check(facts(), [], channel, chicago(1, 14, hour, minute, second))
    assert rules(found) == ([] if allowed else ["time_window"])


@pytest.mark.parametrize("channel", ["letter", "portal"])
def test_letters_and_portal_messages_have_no_time_window(channel):
    assert check(facts(), [], channel, chicago(1, 14, 3, 0)) == []


def test_a_late_call_names_the_local_time_and_zone_and_opens_at_eight_next_morning():
    at = chicago(1, 14, 21, 30)
    [violation] = check(facts(), [], "call", at)
    assert violation.rule == "time_window"
    assert violation.message == (
        "It is 21:30 in America/Chicago; calls are allowed 08:00–21:00 the debtor's time."
    )
    result = window(facts(), [], "call", at)
    assert result == Window(False, (violation.message,), utc(1, 15, 14, 0))
    assert result.next_allowed_at.tzinfo is UTC


def test_allowed_now_means_next_allowed_is_now_in_utc():
    at = chicago(1, 14, 10, 15, 30)
    assert window(facts(), [], "call", at) == Window(True, (), at.astimezone(UTC))
    assert window(facts(), [], "call", at).next_allowed_at.tzinfo is UTC


def test_a_new_york_zip_and_a_los_angeles_phone_need_both_to_be_in_the_window():
    zones = candidate_zones(["10001"], ["+13105551234"])
    debtor = facts(state="NY", zones=zones)
    at = datetime(2026, 1, 14, 8, 30, tzinfo=NEW_YORK)  # 05:30 in Los Angeles
    [violation] = check(debtor, [], "call", at)
    assert violation.rule == "time_window"
    assert "05:30 in America/Los_Angeles" in violation.message
    assert "America/New_York" not in violation.message.split(";")[0]  # New York is fine
    # 08:00 in Los Angeles = 11:00 in New York = 16:00 UTC.
    assert window(debtor, [], "call", at).next_allowed_at == utc(1, 14, 16, 0)
    # ... and the evening closes with New York.
    assert rules(check(debtor, [], "call", datetime(2026, 1, 14, 20, 59, tzinfo=NEW_YORK))) == []
    assert rules(check(debtor, [], "call", datetime(2026, 1, 14, 21, 0, tzinfo=NEW_YORK))) == [
        "time_window"
    ]


def test_unknown_zones_mean_every_us_zone_and_territory_so_guam_opens_last_and_puerto_rico_closes_first():
    debtor = facts(state=None, zones=candidate_zones([], []))
    assert debtor.zones == tuple(sorted(US_ZONES))
    at = datetime(2026, 1, 14, 9, 0, tzinfo=NEW_YORK)
    result = window(debtor, [], "call", at)
    assert not result.allowed
    # 08:00 in Guam (UTC+10) = 22:00 UTC the day before = 17:00 in New York.
    assert result.next_allowed_at == datetime(2026, 1, 15, 8, 0, tzinfo=ZoneInfo("Pacific/Guam"))
    assert result.next_allowed_at == utc(1, 14, 22, 0)
    # 21:00 in Puerto Rico and the Virgin Islands (UTC−4) = 20:00 in New York in winter.
    assert check(debtor, [], "call", datetime(2026, 1, 14, 19, 59, tzinfo=NEW_YORK)) == []
    assert rules(check(debtor, [], "call", datetime(2026, 1, 14, 20, 0, tzinfo=NEW_YORK))) == [
        "time_window"
    ]
    # American Samoa (UTC−11): 07:59 there is 18:59 UTC, outside even when Honolulu is open.
    samoa = datetime(2026, 1, 14, 7, 59, tzinfo=ZoneInfo("Pacific/Pago_Pago"))
    assert "Pacific/Pago_Pago" in check(debtor, [], "call", samoa)[0].message


def test_no_zones_at_all_is_treated_as_every_us_zone():
    debtor = facts(zones=())
    at = datetime(2026, 1, 14, 9, 0, tzinfo=NEW_YORK)
    assert window(debtor, [], "call", at).next_allowed_at == utc(1, 14, 22, 0)


def test_the_day_clocks_spring_forward():
    # 2026-03-08: 02:00 CST becomes 03:00 CDT; 08:00 CDT is 13:00 UTC, not 14:00.
    assert rules(check(facts(), [], "call", chicago(3, 8, 7, 59))) == ["time_window"]
    assert check(facts(), [], "call", chicago(3, 8, 8, 0)) == []
    assert chicago(3, 8, 8, 0) == utc(3, 8, 13, 0)
    # The day before, 13:00 UTC was only 07:00 CST.
    assert rules(check(facts(), [], "call", utc(3, 7, 13, 0))) == ["time_window"]
    assert window(facts(), [], "call", chicago(3, 7, 21, 30)).next_allowed_at == utc(3, 8, 13, 0)


def test_the_day_clocks_fall_back():
    # 2026-11-01: 02:00 CDT becomes 01:00 CST; 08:00 CST is 14:00 UTC.
    assert rules(check(facts(), [], "call", utc(11, 1, 13, 30))) == ["time_window"]  # 07:30 CST
    assert check(facts(), [], "call", utc(11, 1, 14, 0)) == []
    assert window(facts(), [], "call", chicago(10, 31, 21, 30)).next_allowed_at == utc(11, 1, 14)
    # Evening: 21:00 CST is 03:00 UTC the next day.
    assert check(facts(), [], "text", utc(11, 2, 2, 59)) == []
    assert rules(check(facts(), [], "text", utc(11, 2, 3, 0))) == ["time_window"]


# --- inconvenient_time: the debtor's own ranges, in every candidate zone ---

WORKING_HOURS = TimeRange((0, 1, 2, 3, 4), time(9, 0), time(17, 0))


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        (chicago(1, 14, 8, 59), True),  # Wednesday, before the range
        (chicago(1, 14, 9, 0), False),
        (chicago(1, 14, 16, 59, 59), False),
        (chicago(1, 14, 17, 0), True),  # the end is exclusive
        (chicago(1, 17, 12, 0), True),  # Saturday is not in the range
    ],
)
def test_inconvenient_time_edges(at, allowed):
    debtor = facts(inconvenient=(WORKING_HOURS,))
    assert rules(check(debtor, [], "call", at)) == ([] if allowed else ["inconvenient_time"])


def test_inconvenient_time_names_the_range_and_ends_at_its_end():
    debtor = facts(inconvenient=(WORKING_HOURS,))
    at = chicago(1, 14, 12, 0)
    [violation] = check(debtor, [], "email", at)
    assert violation.message == (
        "It is Wed 12:00 in America/Chicago, a time the debtor said is inconvenient "
        "(Mon, Tue, Wed, Thu, Fri 09:00–17:00)."
    )
    assert window(debtor, [], "call", at).next_allowed_at == chicago(1, 14, 17, 0)
    assert check(debtor, [], "letter", at) == []


def test_inconvenient_time_is_checked_in_every_candidate_zone():
    mornings = TimeRange(EVERY_DAY, time(9, 0), time(10, 0))
    debtor = facts(zones=("America/Los_Angeles", "America/New_York"), inconvenient=(mornings,))
    at = datetime(2026, 1, 14, 12, 30, tzinfo=NEW_YORK)  # 09:30 in Los Angeles
    [violation] = check(debtor, [], "text", at)
    assert violation.rule == "inconvenient_time"
    assert "America/Los_Angeles" in violation.message
    # 10:00 in Los Angeles.
    assert window(debtor, [], "text", at).next_allowed_at == utc(1, 14, 18, 0)


def test_an_overnight_wish_is_two_ranges_and_a_backwards_range_is_refused():
    with pytest.raises(ValueError):
        TimeRange(EVERY_DAY, time(22, 0), time(7, 0))
    with pytest.raises(ValueError):
        TimeRange((7,), time(9, 0), time(10, 0))
    with pytest.raises(ValueError):
        TimeRange((), time(9, 0), time(10, 0))


def test_when_every_allowed_hour_is_inconvenient_no_time_will_do():
    always = TimeRange(EVERY_DAY, time(8, 0), time(21, 0))
    result = window(facts(inconvenient=(always,)), [], "call", chicago(1, 14, 12, 0))
    assert result.allowed is False and result.next_allowed_at is None


# --- call_frequency: 7 attempts in 7 days (12 CFR 1006.14(b)(2)(i)(A)) ---


def test_the_seventh_attempt_is_allowed_and_the_eighth_refused():
    history = daily_calls(chicago(1, 8, 10, 0), 6)  # Jan 8..13
    at = chicago(1, 14, 10, 0)
    assert check(facts(), history, "call", at) == []
    history.append(call(chicago(1, 14, 9, 0)))
    [violation] = check(facts(), history, "call", at)
    assert violation.rule == "call_frequency"
    assert violation.message.startswith("7 call attempts were made in the 7 days")
    assert "Thu 2026-01-15 10:00 America/Chicago" in violation.message


def test_busy_calls_are_not_attempts():
    history = daily_calls(chicago(1, 8, 10, 0), 6) + [call(chicago(1, 14, 9, 0), "busy")]
    assert check(facts(), history, "call", chicago(1, 14, 10, 0)) == []
    # A busy call is not an attempt either when it is the one being recorded.
    history[-1] = call(chicago(1, 14, 9, 0))
    assert check(facts(), history, "call", chicago(1, 14, 10, 0), outcome="busy") == []
    assert rules(check(facts(), history, "call", chicago(1, 14, 10, 0), outcome="voicemail")) == [
        "call_frequency"
    ]


def test_every_outcome_but_busy_counts_and_inbound_calls_do_not():
    outcomes = ["no_answer", "voicemail", "wrong_number", "no_answer", "voicemail", None, None]
    history = [call(chicago(1, 8 + n, 10, 0), outcome) for n, outcome in enumerate(outcomes)]
    assert rules(check(facts(), history, "call", chicago(1, 14, 12, 0))) == ["call_frequency"]
    history[-1] = call(chicago(1, 14, 9, 0), "no_answer", direction="inbound")
    assert check(facts(), history, "call", chicago(1, 14, 12, 0)) == []


def test_the_window_slides_and_the_next_call_is_exactly_when_the_oldest_ages_out():
    history = daily_calls(chicago(1, 7, 10, 0), 7)  # Jan 7..13 at 10:00
    at = chicago(1, 14, 9, 0)
    assert rules(check(facts(), history, "call", at)) == ["call_frequency"]
    result = window(facts(), history, "call", at)
    assert result.next_allowed_at == chicago(1, 14, 10, 0)  # Jan 7 10:00 + 7 days
    assert rules(check(facts(), history, "call", chicago(1, 14, 9, 59, 59))) == ["call_frequency"]
    assert check(facts(), history, "call", chicago(1, 14, 10, 0)) == []


def test_when_the_oldest_ages_out_after_hours_the_next_call_waits_for_morning():
    history = [call(chicago(1, 7, 22, 0))] + daily_calls(chicago(1, 8, 10, 0), 6)
    result = window(facts(), history, "call", chicago(1, 14, 12, 0))
    assert result.next_allowed_at == chicago(1, 15, 8, 0)


def test_emails_and_letters_are_not_calls():
    history = daily_calls(chicago(1, 7, 10, 0), 7)
    assert check(facts(), history, "email", chicago(1, 14, 9, 0)) == []
    assert check(facts(), history, "letter", chicago(1, 14, 9, 0)) == []


def test_contacts_at_or_after_the_moment_asked_about_are_ignored():
    at = chicago(1, 14, 10, 0)
    later = [call(at), call(at + timedelta(minutes=1), "conversation")] + daily_calls(at, 7)
    assert check(facts(), later, "call", at) == []
    assert window(facts(), later, "call", at).allowed


# --- conversation_quiet_period: 7 days counting the day of the conversation ---


def test_after_a_conversation_no_call_until_the_eighth_local_day():
    history = [call(chicago(1, 5, 15, 0), "conversation")]  # Monday: day one
    assert rules(check(facts(), history, "call", chicago(1, 11, 20, 0))) == [
        "conversation_quiet_period"
    ]
    assert check(facts(), history, "call", chicago(1, 12, 8, 0)) == []
    [violation] = check(facts(), history, "call", chicago(1, 6, 10, 0))
    assert "Mon 2026-01-05" in violation.message
    assert "Mon 2026-01-12 00:00 America/Chicago" in violation.message
    # From the evening of day seven, the window opens the next morning.
    assert window(facts(), history, "call", chicago(1, 11, 20, 0)).next_allowed_at == chicago(
        1, 12, 8, 0
    )


def test_an_inbound_conversation_starts_the_quiet_period_too():
    history = [call(chicago(1, 5, 15, 0), "conversation", direction="inbound")]
    assert rules(check(facts(), history, "call", chicago(1, 11, 20, 0))) == [
        "conversation_quiet_period"
    ]


def test_only_a_conversation_starts_the_quiet_period_and_only_calls_are_held():
    assert (
        check(facts(), [call(chicago(1, 5, 15, 0), "voicemail")], "call", chicago(1, 6, 10)) == []
    )
    history = [call(chicago(1, 5, 15, 0), "conversation")]
    assert check(facts(), history, "email", chicago(1, 6, 10, 0)) == []
    assert check(facts(), history, "text", chicago(1, 6, 10, 0)) == []


def test_with_several_zones_the_latest_end_of_the_quiet_period_wins():
    # An inbound conversation at 23:30 on Jan 5 in Los Angeles is 02:30 on Jan 6 in New York:
    # the quiet period runs through Jan 11 in Los Angeles but through Jan 12 in New York.
    debtor = facts(state="NY", zones=("America/Los_Angeles", "America/New_York"))
    talk = call(datetime(2026, 1, 5, 23, 30, tzinfo=LOS_ANGELES), "conversation", "inbound")
    at = datetime(2026, 1, 12, 12, 0, tzinfo=NEW_YORK)
    [violation] = check(debtor, [talk], "call", at)
    assert violation.rule == "conversation_quiet_period"
    assert "America/New_York" in violation.message
    # Jan 13 00:00 in New York, then 08:00 in Los Angeles.
    expected = datetime(2026, 1, 13, 8, 0, tzinfo=LOS_ANGELES)
    assert window(debtor, [talk], "call", at).next_allowed_at == expected
    assert check(debtor, [talk], "call", expected) == []


# --- Massachusetts: 2 calls or texts per 7 days; Washington: 3 communications a week ---


def test_massachusetts_refuses_the_third_call_or_text():
    debtor = facts(state="MA", zones=("America/New_York",))
    at = datetime(2026, 1, 14, 12, 0, tzinfo=NEW_YORK)
    one = [call(datetime(2026, 1, 9, 12, 0, tzinfo=NEW_YORK))]
    assert check(debtor, one, "call", at) == []
    two = one + [sent("text", datetime(2026, 1, 12, 12, 0, tzinfo=NEW_YORK))]
    assert rules(check(debtor, two, "call", at)) == ["massachusetts_limit"]
    assert rules(check(debtor, two, "text", at)) == ["massachusetts_limit"]
    assert check(debtor, two, "email", at) == []
    # Jan 9 12:00 + 7 days.
    result = window(debtor, two, "text", at)
    assert result.next_allowed_at == datetime(2026, 1, 16, 12, 0, tzinfo=NEW_YORK)


WORK = "+16175550199"
HOME = "+16175550100"


def test_massachusetts_allows_two_calls_or_texts_in_30_days_to_a_number_not_the_debtors_own():
    # 209 CMR 18.14(1)(d): two in each 30-day period other than to the debtor's own numbers.
    debtor = facts(state="MA", zones=("America/New_York",), other_numbers={WORK})
    first = datetime(2026, 1, 2, 12, 0, tzinfo=NEW_YORK)
    past = [
        PastContact("call", "outbound", "no_answer", first, WORK),
        PastContact("text", "outbound", None, first + timedelta(days=10), WORK),
    ]
    at = datetime(2026, 1, 20, 12, 0, tzinfo=NEW_YORK)  # 18 days on: the 7-day limit is clear
    assert rules(check(debtor, past, "call", at, target=WORK)) == ["massachusetts_other_numbers"]
    assert rules(check(debtor, past, "text", at, target=WORK)) == ["massachusetts_other_numbers"]
    (violation,) = check(debtor, past, "call", at, target=WORK)
    assert "not the debtor's own" in violation.message and "30 days" in violation.message
    # The debtor's own number is under the 7-day rule only.
    assert check(debtor, past, "call", at, target=HOME) == []
    # The first of the two leaves the 30 days on Feb 1 at 12:00.
    result = window(debtor, past, "call", at, target=WORK)
    assert result.next_allowed_at == first + timedelta(days=30)
    assert check(debtor, past, "call", first + timedelta(days=30), target=WORK) == []
    # Another state has no such limit.
    elsewhere = facts(state="NY", zones=("America/New_York",), other_numbers={WORK})
    assert check(elsewhere, past, "call", at, target=WORK) == []


def test_calls_to_the_debtors_own_numbers_do_not_count_toward_the_other_numbers_limit():
    debtor = facts(state="MA", zones=("America/New_York",), other_numbers={WORK})
    first = datetime(2026, 1, 2, 12, 0, tzinfo=NEW_YORK)
    past = [
        PastContact("call", "outbound", "no_answer", first, HOME),
        PastContact("call", "outbound", "no_answer", first + timedelta(days=10), HOME),
        PastContact("call", "outbound", "busy", first + timedelta(days=11), WORK),
    ]
    at = datetime(2026, 1, 20, 12, 0, tzinfo=NEW_YORK)
    assert check(debtor, past, "call", at, target=WORK) == []


def test_a_wrong_number_is_never_called_or_texted_again():
    debtor = facts(wrong_numbers={WORK})
    at = chicago(1, 14, 12)
    assert rules(check(debtor, [], "call", at, target=WORK)) == ["wrong_number"]
    assert rules(check(debtor, [], "text", at, target=WORK)) == ["wrong_number"]
    assert check(debtor, [], "call", at, target=HOME) == []
    result = window(debtor, [], "call", at, target=WORK)
    assert not result.allowed and result.next_allowed_at is None  # not by waiting
    assert "not the debtor's number" in result.reasons[0]
    # Business debts too.
    assert rules(
        check(facts(kind="commercial", wrong_numbers={WORK}), [], "call", at, target=WORK)
    ) == ["wrong_number"]


def test_massachusetts_does_not_count_busy_calls_and_other_states_are_not_limited():
    busy = [call(datetime(2026, 1, 13, 12, 0, tzinfo=NEW_YORK), "busy")] * 2
    debtor = facts(state="MA", zones=("America/New_York",))
    assert check(debtor, busy, "call", datetime(2026, 1, 14, 12, 0, tzinfo=NEW_YORK)) == []
    two = [call(datetime(2026, 1, 13, 12, 0, tzinfo=NEW_YORK))] * 2
    assert (
        check(
            facts(state="NY", zones=("America/New_York",)),
            two,
            "call",
            datetime(2026, 1, 14, 12, 0, tzinfo=NEW_YORK),
        )
        == []
    )


def test_washington_refuses_the_fourth_communication():
    debtor = facts(state="WA", zones=("America/Los_Angeles",))
    at = datetime(2026, 1, 14, 12, 0, tzinfo=LOS_ANGELES)
    three = [
        call(datetime(2026, 1, 8, 13, 0, tzinfo=LOS_ANGELES)),
        sent("email", datetime(2026, 1, 10, 12, 0, tzinfo=LOS_ANGELES)),
        sent("letter", datetime(2026, 1, 12, 12, 0, tzinfo=LOS_ANGELES)),
    ]
    assert check(debtor, three[:2], "text", at) == []
    for channel in ("call", "text", "email", "letter"):
        assert rules(check(debtor, three, channel, at)) == ["washington_limit"], channel
    assert check(debtor, three, "portal", at) == []
    assert check(debtor, three, "call", at, outcome="busy") == []
    result = window(debtor, three, "letter", at)
    assert result.next_allowed_at == datetime(2026, 1, 15, 13, 0, tzinfo=LOS_ANGELES)
    # Washington's 07:30 start does not beat the federal 08:00.
    assert rules(check(debtor, [], "call", datetime(2026, 1, 14, 7, 45, tzinfo=LOS_ANGELES))) == [
        "time_window"
    ]


# --- cease, attorney, dispute hold, opt-out: no wait will cure them ---


def test_after_a_cease_request_only_the_notices_the_law_allows():
    asked = chicago(1, 10, 9, 0)
    debtor = facts(cease_requested_at=asked)
    at = chicago(1, 14, 12, 0)
    assert rules(check(debtor, [], "letter", at)) == ["cease"]
    assert rules(check(debtor, [], "call", at)) == ["cease"]
    assert check(debtor, [], "letter", at, purpose="cease_confirmation") == []
    assert check(debtor, [], "letter", at, purpose="remedy_notice") == []
    assert rules(check(debtor, [], "email", at, purpose="cease_confirmation")) == ["cease"]
    assert check(debtor, [], "call", chicago(1, 9, 12, 0)) == []  # before the request
    result = window(debtor, [], "call", at)
    assert result.allowed is False and result.next_allowed_at is None
    assert "2026-01-10" in result.reasons[0]


def test_once_an_attorney_represents_the_debtor_contact_goes_to_the_attorney():
    debtor = facts(attorney_since=chicago(1, 10, 9, 0))
    at = chicago(1, 14, 12, 0)
    assert rules(check(debtor, [], "call", at)) == ["attorney"]
    assert rules(check(debtor, [], "letter", at)) == ["attorney"]
    assert check(debtor, [], "call", at, purpose="attorney") == []
    assert check(debtor, [], "call", chicago(1, 9, 12, 0)) == []
    assert window(debtor, [], "email", at).next_allowed_at is None


def test_a_dispute_hold_stops_collection_but_not_the_verification():
    debtor = facts(dispute_hold=True)
    at = chicago(1, 14, 12, 0)
    assert rules(check(debtor, [], "email", at)) == ["dispute_hold"]
    assert rules(check(debtor, [], "call", at)) == ["dispute_hold"]
    assert check(debtor, [], "letter", at, purpose="verification") == []
    assert check(debtor, [], "email", at, purpose="verification") == []
    assert check(debtor, [], "letter", at, purpose="validation_notice") == []
    assert rules(check(debtor, [], "letter", at, purpose="remedy_notice")) == ["dispute_hold"]
    assert window(debtor, [], "call", at).next_allowed_at is None
    # The verification still keeps to the hours.
    assert rules(check(debtor, [], "email", chicago(1, 14, 22, 0), purpose="verification")) == [
        "time_window"
    ]


def test_an_opt_out_closes_its_channel_only():
    debtor = facts(opted_out=frozenset({"email"}))
    at = chicago(1, 14, 12, 0)
    [violation] = check(debtor, [], "email", at)
    assert violation.rule == "opt_out" and "emails" in violation.message
    assert check(debtor, [], "call", at) == []
    assert check(debtor, [], "text", at) == []
    assert window(debtor, [], "email", at).next_allowed_at is None
    assert rules(check(facts(opted_out=frozenset({"text"})), [], "text", at)) == ["opt_out"]
    assert rules(check(facts(opted_out=frozenset({"call"})), [], "call", at)) == ["opt_out"]
    # Letters have no opt-out.
    everything = facts(opted_out=frozenset({"call", "text", "email", "letter"}))
    assert check(everything, [], "letter", at) == []


def test_a_lasting_rule_with_a_passing_one_still_gives_no_next_time():
    debtor = facts(opted_out=frozenset({"call"}))
    result = window(debtor, [], "call", chicago(1, 14, 22, 0))
    assert [r.split(";")[0] for r in result.reasons] == [
        "It is 22:00 in America/Chicago",
        "The debtor opted out of calls",
    ]
    assert result.next_allowed_at is None


def test_a_cease_that_starts_later_means_no_next_time():
    debtor = facts(cease_requested_at=chicago(1, 15, 7, 0))
    result = window(debtor, [], "call", chicago(1, 14, 22, 0))
    assert result.allowed is False and result.next_allowed_at is None


# --- commercial debts: agency policy ---


def commercial(**changes) -> DebtorFacts:
    return facts(kind="commercial", **changes)


def test_commercial_one_call_attempt_per_local_day():
    history = [call(chicago(1, 14, 9, 0))]
    [violation] = check(commercial(), history, "call", chicago(1, 14, 15, 0))
    assert violation.rule == "commercial_daily_call"
    assert "Wed 2026-01-14 (America/Chicago)" in violation.message
    assert check(commercial(), history, "call", chicago(1, 15, 8, 0)) == []
    result = window(commercial(), history, "call", chicago(1, 14, 15, 0))
    assert result.next_allowed_at == chicago(1, 15, 8, 0)
    # A busy line is not an attempt; emails are not calls.
    assert (
        check(commercial(), [call(chicago(1, 14, 9, 0), "busy")], "call", chicago(1, 14, 15, 0))
        == []
    )
    assert check(commercial(), history, "email", chicago(1, 14, 15, 0)) == []


def test_commercial_local_date_in_any_candidate_zone():
    debtor = commercial(zones=("America/Los_Angeles", "America/New_York"))
    # 22:30 Jan 5 in Los Angeles is 01:30 Jan 6 in New York (recorded after the fact).
    history = [call(datetime(2026, 1, 5, 22, 30, tzinfo=LOS_ANGELES))]
    at = datetime(2026, 1, 6, 12, 0, tzinfo=NEW_YORK)
    assert rules(check(debtor, history, "call", at)) == ["commercial_daily_call"]
    assert window(debtor, history, "call", at).next_allowed_at == datetime(
        2026, 1, 7, 8, 0, tzinfo=LOS_ANGELES
    )


def test_commercial_debts_skip_the_consumer_only_rules():
    # Jan 7..13, one a day: today's call would be the eighth in 7 days.
    seven_days = daily_calls(chicago(1, 7, 11, 0), 7)
    conversation = [call(chicago(1, 13, 16, 0), "conversation")]
    at = chicago(1, 14, 10, 0)
    assert rules(check(facts(), seven_days, "call", at)) == ["call_frequency"]
    assert check(commercial(), seven_days, "call", at) == []
    assert check(commercial(), conversation, "call", at) == []
    assert check(commercial(state="MA"), seven_days, "call", at) == []
    assert check(commercial(state="WA"), seven_days, "letter", at) == []
    always = TimeRange(EVERY_DAY, time(0, 0), time(23, 59))
    assert check(commercial(inconvenient=(always,)), [], "call", at) == []
    assert check(commercial(cease_requested_at=chicago(1, 1, 0)), [], "call", at) == []
    assert check(commercial(attorney_since=chicago(1, 1, 0)), [], "call", at) == []


def test_commercial_debts_keep_the_window_the_opt_out_and_the_dispute_hold():
    at = chicago(1, 14, 10, 0)
    assert rules(check(commercial(), [], "call", chicago(1, 14, 21, 0))) == ["time_window"]
    assert rules(check(commercial(opted_out=frozenset({"call"})), [], "call", at)) == ["opt_out"]
    assert rules(check(commercial(dispute_hold=True), [], "letter", at)) == ["dispute_hold"]


# --- every rule at once, inbound contacts, bad input ---


def test_several_broken_rules_are_all_reported_in_rule_order():
    debtor = facts(
        state="MA",
        inconvenient=(TimeRange(EVERY_DAY, time(21, 0), time(23, 0)),),
        cease_requested_at=chicago(1, 1, 0),
        attorney_since=chicago(1, 1, 0),
        dispute_hold=True,
        opted_out=frozenset({"call"}),
    )
    history = daily_calls(chicago(1, 7, 10, 0), 7) + [call(chicago(1, 13, 11), "conversation")]
    found = rules(check(debtor, history, "call", chicago(1, 14, 22, 0)))
    assert found == [
        "time_window",
        "inconvenient_time",
        "call_frequency",
        "conversation_quiet_period",
        "massachusetts_limit",
        "cease",
        "attorney",
        "dispute_hold",
        "opt_out",
    ]
    assert all(rule in RULES for rule in found)


@pytest.mark.parametrize("channel", CHANNELS)
def test_inbound_contacts_never_break_a_rule(channel):
    debtor = facts(
        cease_requested_at=chicago(1, 1, 0),
        attorney_since=chicago(1, 1, 0),
        dispute_hold=True,
        opted_out=frozenset({"call", "text", "email"}),
    )
    history = daily_calls(chicago(1, 7, 10, 0), 7)
    assert check(debtor, history, channel, chicago(1, 14, 23, 30), direction="inbound") == []


def test_naive_datetimes_are_refused():
    naive = datetime(2026, 1, 14, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        check(facts(), [], "call", naive)
    with pytest.raises(ValueError, match="naive"):
        window(facts(), [], "call", naive)
    with pytest.raises(ValueError, match="naive"):
        PastContact("call", "outbound", "no_answer", naive)
    with pytest.raises(ValueError, match="naive"):
        facts(cease_requested_at=naive)
    with pytest.raises(ValueError, match="naive"):
        facts(attorney_since=naive)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channel": "fax"},
        {"direction": "sideways"},
        {"purpose": "threat"},
        {"outcome": "hung_up"},
    ],
)
def test_unknown_values_are_refused(kwargs):
    values = {"channel": "call"} | kwargs
    channel = values.pop("channel")
    with pytest.raises(ValueError):
        check(facts(), [], channel, chicago(1, 14, 12, 0), **values)


def test_unknown_facts_are_refused():
    with pytest.raises(ValueError):
        facts(kind="government")
    with pytest.raises(ValueError):
        facts(zones=("Mars/Olympus_Mons",))
    with pytest.raises(ValueError):
        PastContact("pigeon", "outbound", None, chicago(1, 14, 12, 0))


def test_any_aware_time_zone_may_be_passed_in_and_means_the_same_instant():
    at_utc = utc(1, 15, 3, 30)  # 21:30 in Chicago on Jan 14
    at_tokyo = at_utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert check(facts(), [], "call", at_utc) == check(facts(), [], "call", at_tokyo)
    assert window(facts(), [], "call", at_tokyo).next_allowed_at == utc(1, 15, 14, 0)


# --- a receipt answers the debtor's own payment ---


def test_a_receipt_answers_at_once_but_keeps_to_cease_attorney_and_opt_out():
    late = chicago(1, 14, 23, 30)
    busy = facts(inconvenient=(TimeRange(EVERY_DAY, time(22, 0), time(23, 59)),))
    assert check(facts(), [], "email", late, purpose="receipt") == []
    assert check(busy, [], "email", late, purpose="receipt") == []
    assert check(facts(dispute_hold=True), [], "email", late, purpose="receipt") == []
    # The same hour is closed to anything else.
    assert rules(check(facts(), [], "email", late)) == ["time_window"]
    assert rules(
        check(facts(cease_requested_at=chicago(1, 10, 9)), [], "email", late, purpose="receipt")
    ) == ["cease"]
    assert rules(
        check(facts(attorney_since=chicago(1, 10, 9)), [], "email", late, purpose="receipt")
    ) == ["attorney"]
    assert rules(
        check(facts(opted_out=frozenset({"email"})), [], "email", late, purpose="receipt")
    ) == ["opt_out"]


def test_after_five_days_without_a_notice_only_the_notice_may_go_out():
    # 12 CFR 1006.34(a)(1): first communication Tue 12-01 10:00 Chicago; due 12-06 10:00.
    due = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    f = facts(notice_due_by=due)
    before = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    after = datetime(2026, 12, 9, 16, 0, tzinfo=UTC)
    assert check(f, [], "email", before) == []
    found = check(f, [], "email", after)
    assert rules(found) == ["validation_notice_overdue"]
    assert "2026-12-06 10:00" in found[0].message
    assert check(f, [], "letter", after, purpose="validation_notice") == []
    assert rules(check(f, [], "call", after)) == ["validation_notice_overdue"]
    # Waiting does not cure it: only sending the notice does.
    assert window(f, [], "call", after).next_allowed_at is None
    # Business debts are outside Reg F.
    assert check(facts(kind="commercial", notice_due_by=due), [], "email", after) == []
