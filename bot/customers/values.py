"""Cell values of shop exports: instants, dates, money, statuses, items, tags, yes/no.

Every parser takes the raw cell text and returns the stored form or raises ValueError with a reason
a shop owner can act on. Instants are returned as integer UTC epoch seconds because that is how
they are stored (bot.db.types) and because comparing integers is what the importer does a million
times; `parse_datetime` wraps that for callers that want a datetime.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# One regex per accepted shape: matching is much cheaper than strptime and tells formats apart.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_RU = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")


class InstantParser:
    """Reads instants written in ISO or DD.MM.YYYY form; zone-less ones are in `zone`.

    Caches the UTC offset per local (date, hour) so a file of a million orders costs a million
    regex matches and dictionary lookups, not a million zoneinfo computations.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._local_hour: dict[tuple[int, int, int, int], int] = {}
        self._day: dict[tuple[int, int, int], int] = {}
        self.hour_prefix: dict[str, int] = {}
        """'YYYY-MM-DD HH' / 'DD.MM.YYYY HH' prefixes already validated -> epoch of that hour."""

    def __call__(self, text: str) -> int:
        """Epoch seconds (UTC) of `text`; ValueError when it is not a date."""
        # Fast path: exports write zone-less "YYYY-MM-DD HH:MM" or "DD.MM.YYYY HH:MM", and a shop's
        # orders share few distinct hours, so the 13-character hour prefix (validated once when it
        # was first seen) is a dictionary key and only the minutes are converted per value.
        if len(text) == 16 and text[13] == ":":
            base = self.hour_prefix.get(text[:13])
            if base is not None:
                minutes = text[14:16]
                if minutes.isdecimal() and minutes < "60":
                    return base + int(minutes) * 60
        return self._parse(text.strip())

    def _parse(self, text: str) -> int:
        match = _ISO.fullmatch(text)
        if match is not None:
            year, month, day, hour, minute, second, offset = match.groups()
        else:
            match = _RU.fullmatch(text)
            if match is None:
                raise ValueError(
                    f"not a date: {text!r} (use YYYY-MM-DD, YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)"
                )
            day, month, year, hour, minute, second = match.groups()
            offset = None
        y, m, d = int(year), int(month), int(day)
        h = int(hour) if hour else 0
        mi = int(minute) if minute else 0
        s = int(second) if second else 0
        if mi > 59 or s > 59:
            raise ValueError(f"not a time of day: {text!r}")
        if offset is None:
            key = (y, m, d, h)
            base = self._local_hour.get(key)
            if base is None:
                base = self._local_hour[key] = self._local_hour_epoch(text, y, m, d, h)
            if len(text) == 16 and text[13] == ":" and not second:
                self.hour_prefix[text[:13]] = base
            return base + mi * 60 + s
        day_start = self._day_epoch(text, y, m, d)
        if h > 23:
            raise ValueError(f"not a time of day: {text!r}")
        return day_start + h * 3600 + mi * 60 + s - _offset_seconds(offset)

    def _day_epoch(self, text: str, y: int, m: int, d: int) -> int:
        key = (y, m, d)
        epoch = self._day.get(key)
        if epoch is None:
            try:
                ordinal = date(y, m, d).toordinal()
            except ValueError:
                raise ValueError(f"no such date: {text!r}") from None
            epoch = self._day[key] = (ordinal - _UNIX_EPOCH_ORDINAL) * 86_400
        return epoch

    def _local_hour_epoch(self, text: str, y: int, m: int, d: int, h: int) -> int:
        try:
            local = datetime(y, m, d, h, tzinfo=self.zone)
        except ValueError:
            raise ValueError(f"no such date or time: {text!r}") from None
        return int(local.timestamp())


def _offset_seconds(offset: str) -> int:
    if offset in ("Z", "z"):
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return sign * minutes * 60


def parse_datetime(text: str, zone: ZoneInfo) -> datetime:
    """An aware UTC datetime; convenience wrapper over InstantParser for one-off values."""
    return datetime.fromtimestamp(InstantParser(zone)(text), UTC)


def parse_date(text: str) -> date:
    """A calendar date (birthdays): YYYY-MM-DD or DD.MM.YYYY; a time part is ignored."""
    text = text.strip()
    match = _ISO.fullmatch(text)
    if match is not None:
        y, m, d = int(match[1]), int(match[2]), int(match[3])
    else:
        match = _RU.fullmatch(text)
        if match is None:
            raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD or DD.MM.YYYY)")
        d, m, y = int(match[1]), int(match[2]), int(match[3])
    try:
        return date(y, m, d)
    except ValueError:
        raise ValueError(f"no such date: {text!r}") from None


# Thousand separators in exports: spaces, no-break spaces (Excel, 1C), thin spaces, apostrophes.
_THOUSANDS = str.maketrans("", "", " \u00a0\u202f\u2009'")
_PLAIN_AMOUNT = re.compile(r"\d+(?:\.\d{1,2})?")


def parse_amount_minor(text: str) -> int:
    """Money in minor units (two decimals): "1 990,50" -> 199050, "1990.5" -> 199050."""
    # Fast path for plain digits with spaces as thousand separators and one decimal mark: string
    # methods only, no regex or Decimal (this runs once per order).
    cleaned = text.replace("\u00a0", "").replace(" ", "").replace(",", ".", 1)
    whole, mark, fraction = cleaned.partition(".")
    if whole.isdecimal() and len(fraction) <= 2 and (not mark or fraction.isdecimal()):
        return int(whole) * 100 + (int(fraction) * (10 if len(fraction) == 1 else 1) if mark else 0)
    cleaned = text.translate(_THOUSANDS)
    if "," in cleaned and "." not in cleaned and cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    if _PLAIN_AMOUNT.fullmatch(cleaned):
        whole, _, fraction = cleaned.partition(".")
        return int(whole) * 100 + int((fraction + "00")[:2])
    cleaned = cleaned.strip()
    for symbol in ("₽", "руб.", "руб", "р.", "$", "€", "RUB", "USD", "EUR"):
        cleaned = cleaned.removesuffix(symbol).removeprefix(symbol)
    if not cleaned:
        raise ValueError("empty amount")
    comma, dot = cleaned.rfind(","), cleaned.rfind(".")
    if comma >= 0 and dot >= 0:
        # Both present: whichever comes last is the decimal mark, the other groups thousands.
        decimal_mark, grouping = (",", ".") if comma > dot else (".", ",")
        cleaned = cleaned.replace(grouping, "").replace(decimal_mark, ".")
    elif comma >= 0:
        cleaned = cleaned.replace(",", "") if cleaned.count(",") > 1 else cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    if value < 0:
        raise ValueError(f"negative amount: {text!r}")
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_STATUS_WORDS = {
    "placed": "placed",
    "new": "placed",
    "новый": "placed",
    "создан": "placed",
    "оформлен": "placed",
    "paid": "paid",
    "оплачен": "paid",
    "shipped": "shipped",
    "sent": "shipped",
    "отправлен": "shipped",
    "delivered": "delivered",
    "completed": "delivered",
    "complete": "delivered",
    "доставлен": "delivered",
    "выполнен": "delivered",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "отменён": "cancelled",
    "отменен": "cancelled",
    "returned": "returned",
    "return": "returned",
    "возврат": "returned",
    "возвращён": "returned",
    "возвращен": "returned",
}


def parse_status(text: str, delivered: bool) -> str:
    """An order status; an empty cell means delivered when a delivery date is known, else placed."""
    word = text.strip().casefold()
    if not word:
        return "delivered" if delivered else "placed"
    status = _STATUS_WORDS.get(word)
    if status is None:
        # "Доставлен курьером", "Completed (manual)": the first word carries the meaning.
        status = _STATUS_WORDS.get(re.split(r"[\s(,.]+", word, maxsplit=1)[0])
    if status is None:
        raise ValueError(f"unknown status {text!r}")
    return status


_ITEM_QTY = re.compile(r"(.*?)\s*[xх×*]\s*(\d+)\s*(?:шт\.?|pcs)?", re.IGNORECASE)


def parse_items(text: str) -> list[dict[str, Any]]:
    """Order lines: a JSON list, or text "Name x2; Other" -> [{"name", "qty"}, ...]."""
    return json.loads(items_json(text))  # type: ignore[no-any-return]


_ITEMS_CACHE: dict[str, str] = {}
_ITEMS_CACHE_SIZE = 50_000


def items_json(text: str) -> str:
    """parse_items as stored JSON text; cached, as shops sell the same baskets again and again."""
    cached = _ITEMS_CACHE.get(text)
    if cached is None:
        cached = json.dumps(_parse_items(text), ensure_ascii=False)
        if len(_ITEMS_CACHE) >= _ITEMS_CACHE_SIZE:
            _ITEMS_CACHE.clear()
        _ITEMS_CACHE[text] = cached
    return cached


def _parse_items(text: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"items are not valid JSON: {error.msg}") from None
        if not isinstance(loaded, list):
            raise ValueError("items JSON must be a list")
        return [_item(entry) for entry in loaded]
    items = []
    for part in re.split(r"[;\n]", text):
        part = part.strip()
        if not part:
            continue
        match = _ITEM_QTY.fullmatch(part)
        if match is not None and match[1]:
            items.append({"name": match[1], "qty": int(match[2])})
        else:
            items.append({"name": part, "qty": 1})
    return items


def _item(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        return entry
    if isinstance(entry, str):
        return {"name": entry, "qty": 1}
    raise ValueError(f"an item must be an object or a name, not {entry!r}")


def parse_tags(text: str) -> list[str]:
    """Tags split on `,` `;` `|` (or a JSON list), trimmed, duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    parts: list[str] = re.split(r"[,;|]", text)
    if text.lstrip().startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, list):
            parts = [str(tag) for tag in loaded]
    for tag in parts:
        tag = tag.strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


_YES = frozenset(("yes", "y", "true", "1", "да", "д", "+", "on", "x"))
_NO = frozenset(("no", "n", "false", "0", "нет", "н", "-", "off", ""))


def parse_yes_no(text: str) -> bool:
    word = text.strip().casefold()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(f"expected yes/no (да/нет, 1/0), got {text!r}")


def parse_flag(text: str) -> str | None:
    """`flagged`: a reason text; "да"/"yes" means flagged without a reason, "нет"/empty not."""
    word = text.strip()
    if word.casefold() in _NO:
        return None
    if word.casefold() in _YES:
        return "flagged"
    if len(word) > 100:
        raise ValueError("flag reason is longer than 100 characters")
    return word
