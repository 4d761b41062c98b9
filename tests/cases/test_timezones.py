"""Tests for cases/timezones.py: candidate time zones from ZIP codes and phone numbers."""

from __future__ import annotations

import pytest

from cases import timezones
from cases.timezones import US_ZONES, candidate_zones, zone_for_zip, zones_for_phone

NEW_YORK_PHONE = "+12125551234"
LOS_ANGELES_PHONE = "+13105551234"
ALASKA_PHONE = "+19072345678"  # area code 907 spans two zones (Anchorage and the Aleutians)


@pytest.mark.parametrize(
    ("postal_code", "zone"),
    [
        ("10001", "America/New_York"),
        ("60601", "America/Chicago"),
        ("60601-1234", "America/Chicago"),
        ("606011234", "America/Chicago"),
        (" 85001 ", "America/Phoenix"),
        ("99501", "America/Anchorage"),
        ("96813", "Pacific/Honolulu"),
    ],
)
def test_a_zip_gives_its_zone(postal_code, zone):
    assert zone_for_zip(postal_code) == zone


@pytest.mark.parametrize("postal_code", ["00000", "1234", "ABCDE", "", "SW1A 1AA", "10001-12"])
def test_an_unknown_or_malformed_zip_gives_none(postal_code):
    assert zone_for_zip(postal_code) is None


def test_zip_lookups_are_cached():
    timezones._zone_for_zip5.cache_clear()
    zone_for_zip("10001")
    zone_for_zip("10001-0001")
    info = timezones._zone_for_zip5.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_a_phone_gives_the_zones_of_its_area_code():
    assert zones_for_phone(NEW_YORK_PHONE) == ("America/New_York",)
    assert zones_for_phone(LOS_ANGELES_PHONE) == ("America/Los_Angeles",)


def test_an_area_code_spanning_two_zones_gives_both():
    assert zones_for_phone(ALASKA_PHONE) == ("America/Adak", "America/Anchorage")


@pytest.mark.parametrize(
    "phone",
    [
        "+15555555555",  # not a valid number: phonenumbers says Etc/Unknown
        "not a phone",
        "",
        "+18005551234",  # toll-free: says nothing about where the debtor is
    ],
)
def test_an_unknown_invalid_or_non_geographic_phone_gives_no_zone(phone):
    assert zones_for_phone(phone) == ()


def test_zip_and_phone_that_disagree_are_both_candidates():
    assert candidate_zones(["10001"], [LOS_ANGELES_PHONE]) == (
        "America/Los_Angeles",
        "America/New_York",
    )


def test_candidates_are_the_sorted_union_without_repeats():
    zones = candidate_zones(["10001", "60601", "10002"], [NEW_YORK_PHONE, ALASKA_PHONE])
    assert zones == ("America/Adak", "America/Anchorage", "America/Chicago", "America/New_York")


def test_nothing_known_means_every_us_zone():
    assert candidate_zones([], []) == tuple(sorted(US_ZONES))
    assert candidate_zones(["00000", "", None], ["garbage", None]) == tuple(sorted(US_ZONES))
    assert set(US_ZONES) == {
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
        # The territories: Puerto Rico, the US Virgin Islands, Guam, the Northern Mariana
        # Islands and American Samoa.
        "America/Puerto_Rico",
        "America/St_Thomas",
        "Pacific/Guam",
        "Pacific/Saipan",
        "Pacific/Pago_Pago",
    }


def test_an_unknown_phone_does_not_widen_a_known_zip():
    assert candidate_zones(["60601"], ["+15555555555"]) == ("America/Chicago",)


def test_generators_are_accepted():
    zones = candidate_zones((z for z in ["10001"]), (p for p in [NEW_YORK_PHONE]))
    assert zones == ("America/New_York",)
