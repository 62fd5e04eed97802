"""Phone numbers as shops type them, turned into E.164 (+79123456789)."""

from __future__ import annotations

import phonenumbers


def normalise_phone(text: str, region: str) -> str:
    """E.164 form of `text`; numbers without a country code are read in `region` (e.g. "RU").

    ValueError when the text is not a valid phone number, so the row can be reported.
    """
    raw = text.strip()
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"not a phone number: {raw!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number: {raw!r}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
