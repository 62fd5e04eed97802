"""A customer's time zone: their own, else their phone's region, else the shop's default."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone


def customer_zone(time_zone: str | None, phone: str | None, default: str) -> ZoneInfo:
    """The zone to count a customer's local days in.

    1. `time_zone` when it names a known IANA zone;
    2. the zone of the phone number's region (phonenumbers). A number that maps to several zones
       (a Russian +7 mobile maps to all eleven Russian zones) gives `default` when `default` is
       one of them, else the first zone listed;
    3. `default`.
    """
    return _resolve(time_zone or None, phone or None, default)


@lru_cache(maxsize=4096)
def _resolve(time_zone: str | None, phone: str | None, default: str) -> ZoneInfo:
    if time_zone:
        zone = _zone(time_zone)
        if zone is not None:
            return zone
    if phone:
        name = _phone_zone_name(phone, default)
        zone = _zone(name) if name else None
        if zone is not None:
            return zone
    return ZoneInfo(default)


def _phone_zone_name(phone: str, default: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if not zones:
        return None
    if len(zones) > 1 and default in zones:
        return default
    return str(zones[0])


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
