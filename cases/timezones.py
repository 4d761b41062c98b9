"""Where a debtor may be, in time: candidate time zones from ZIP codes and phone numbers.

SPEC §6.1: the contact window is judged in the debtor's local time. An address and a phone
may point to different zones (a move, a mobile number kept from elsewhere); then every zone
is a candidate and a contact must suit all of them. Knowing nothing means every US zone, the
territories' included (Puerto Rico, the Virgin Islands, Guam, the Northern Mariana Islands and
American Samoa).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone

US_ZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    # The territories: a debtor of unknown whereabouts may be in any of them too.
    "America/Puerto_Rico",
    "America/St_Thomas",  # the US Virgin Islands
    "Pacific/Guam",
    "Pacific/Saipan",  # the Northern Mariana Islands
    "Pacific/Pago_Pago",  # American Samoa
)

_ZIP = re.compile(r"(\d{5})(?:-?\d{4})?")
_UNKNOWN_ZONE = "Etc/Unknown"


def _is_zone(name: str) -> bool:
    # The ZIP data carries a few blanks and misspellings (e.g. a town name); only a zone the
    # tz database knows can be used to compute a local time.
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=4096)
def _zone_for_zip5(zip5: str) -> str | None:
    matches = zipcodes.matching(zip5)
    if not matches:
        return None
    zone = matches[0].get("timezone") or ""
    return zone if _is_zone(zone) else None


def zone_for_zip(postal_code: str) -> str | None:
    """The time zone of a US ZIP or ZIP+4, or None when it is not a known ZIP."""
    found = _ZIP.fullmatch((postal_code or "").strip())
    if not found:
        return None
    return _zone_for_zip5(found.group(1))


@lru_cache(maxsize=4096)
def zones_for_phone(e164: str) -> tuple[str, ...]:
    """The time zones a phone number's area code covers; () when unknown or invalid."""
    try:
        # E.164 carries its country; the US default only helps a number typed without "+1".
        number = phonenumbers.parse((e164 or "").strip(), "US")
    except phonenumbers.NumberParseException:
        return ()
    # A toll-free or other non-geographic number says nothing about where its owner is
    # (phonenumbers answers with every zone of the +1 plan, Guam to Newfoundland).
    if not phonenumbers.is_valid_number(number) or not phonenumbers.is_number_geographical(number):
        return ()
    zones = phone_timezone.time_zones_for_number(number)
    return tuple(sorted({z for z in zones if z != _UNKNOWN_ZONE and _is_zone(z)}))


def candidate_zones(postal_codes: Iterable[str], phones: Iterable[str]) -> tuple[str, ...]:
    """Every zone any ZIP or phone points to, sorted; all US zones when none is known."""
    zones: set[str] = set()
    for postal_code in postal_codes:
        zone = zone_for_zip(postal_code) if postal_code else None
        if zone:
            zones.add(zone)
    for phone in phones:
        if phone:
            zones.update(zones_for_phone(phone))
    return tuple(sorted(zones or US_ZONES))
