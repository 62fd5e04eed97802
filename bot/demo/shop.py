"""The demo shop: realistic customers and a buy-till-you-die order history, seeded into a database.

Everything is drawn column-wise with numpy from one seeded generator, so a seed and a clock give
the same shop on every machine, and the same code feeds `boomerang demo seed` (thousands of
customers) and the benchmark generator in scripts/bench (a million).

Demo phone numbers are random but valid mobile numbers, i.e. they may belong to real people: every
demo customer carries the tag "demo" and an example.* e-mail address so that nothing is ever sent
to them by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize
from sqlalchemy import Connection, func, insert, select, text

from bot.app import App
from bot.audience.bgnbd import (
    BgNbdParams,
    draw_customers,
    expected_purchases_unconditional,
    simulate_purchase_times,
)
from bot.audience.rhythm import refresh_rhythm
from bot.db.models import Consent, Customer, Manager, Order
from bot.db.types import SECONDS_PER_DAY, from_epoch
from bot.demo import names
from bot.errors import BoomerangError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Row = dict[str, Any]

HISTORY_DAYS = 913
"""Two and a half years of orders, ending at the clock's now."""

DEMO_PROCESS = BgNbdParams(r=0.75, alpha=75.0, a=1.3, b=5.0)
"""Purchase rate λ ~ Gamma(0.75, 75 days), dropout p ~ Beta(1.3, 5): about 3 orders per customer,
a third never return, a few loyal customers order dozens of times."""

DEMO_SOURCE = "demo"
BATCH_ROWS = 5_000

# (IANA zone, weight ≈ millions of people living in it): where Russian-number customers live.
RUSSIAN_TIME_ZONES = (
    ("Europe/Kaliningrad", 1.0),
    ("Europe/Moscow", 75.0),
    ("Europe/Samara", 6.5),
    ("Asia/Yekaterinburg", 12.0),
    ("Asia/Omsk", 2.0),
    ("Asia/Novosibirsk", 5.5),
    ("Asia/Krasnoyarsk", 6.0),
    ("Asia/Irkutsk", 2.4),
    ("Asia/Yakutsk", 1.0),
    ("Asia/Vladivostok", 1.9),
    ("Asia/Magadan", 0.14),
    ("Asia/Kamchatka", 0.3),
)
# North American area codes with the zone they lie in, for +1 numbers.
US_AREA_CODES = (
    (212, "America/New_York"),
    (646, "America/New_York"),
    (617, "America/New_York"),
    (312, "America/Chicago"),
    (512, "America/Chicago"),
    (415, "America/Los_Angeles"),
    (206, "America/Los_Angeles"),
)

# (sku, Russian name, English name, typical price in roubles)
CATALOGUE = (
    ("TEA-01", "Чай улун, 100 г", "Oolong tea, 100 g", 690),
    ("TEA-02", "Чай пуэр, 200 г", "Pu-erh tea, 200 g", 1290),
    ("TEA-03", "Чай зелёный сенча, 100 г", "Sencha green tea, 100 g", 540),
    ("COF-01", "Кофе в зёрнах Эфиопия, 250 г", "Ethiopia coffee beans, 250 g", 890),
    ("COF-02", "Кофе молотый Бразилия, 250 г", "Brazil ground coffee, 250 g", 760),
    ("COF-03", "Капсулы эспрессо, 30 шт.", "Espresso capsules, 30 pcs", 1150),
    ("CUP-01", "Кружка керамическая", "Ceramic mug", 650),
    ("CUP-02", "Термокружка 350 мл", "Travel mug 350 ml", 1490),
    ("POT-01", "Чайник заварочный стеклянный", "Glass teapot", 1890),
    ("POT-02", "Френч-пресс 600 мл", "French press 600 ml", 2190),
    ("GRN-01", "Кофемолка ручная", "Hand coffee grinder", 3490),
    ("GRN-02", "Кофемолка электрическая", "Electric coffee grinder", 5990),
    ("SWT-01", "Шоколад горький 85%", "Dark chocolate 85%", 320),
    ("SWT-02", "Мёд липовый, 500 г", "Linden honey, 500 g", 790),
    ("SWT-03", "Печенье овсяное", "Oat cookies", 260),
    ("SET-01", "Подарочный набор чаёв", "Tea gift set", 2990),
    ("SET-02", "Набор для пуровера", "Pour-over kit", 4590),
    ("ACC-01", "Фильтры бумажные, 100 шт.", "Paper filters, 100 pcs", 390),
    ("ACC-02", "Весы кухонные с таймером", "Scale with timer", 2790),
    ("ACC-03", "Чайное сито", "Tea strainer", 290),
)

STATUS_PLACED, STATUS_PAID, STATUS_SHIPPED, STATUS_DELIVERED = 0, 1, 2, 3
STATUS_CANCELLED, STATUS_RETURNED = 4, 5
STATUS_NAMES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
NO_DELIVERY = -1

FLAG_REASONS = ("complaint", "asked not to call", "abusive")
MANAGER_NAMES = (
    ("Ольга Смирнова", "+79161234501"),
    ("Дмитрий Орлов", "+79161234502"),
    ("Анна Белова", "+79161234503"),
    ("Сергей Ковалевский", "+79161234504"),
    ("Мария Тихонова", "+79161234505"),
)


class DatabaseNotEmptyError(BoomerangError):
    """Seeding would mix demo data into a shop that already has customers."""


@dataclass(frozen=True)
class SeedSummary:
    customers: int
    orders: int
    consents: int
    managers: int
    seed: int
    first_order_at: datetime | None
    last_order_at: datetime | None


@dataclass(frozen=True)
class CustomerColumns:
    """Attributes of a batch of generated customers, one list entry per customer."""

    first_name: list[str]
    name: list[str]
    phone: list[str]
    email: list[str | None]
    locale: list[str]
    time_zone: list[str]
    birthday: list[date | None]
    telegram_chat_id: list[int | None]
    first_order_at: IntArray
    """Epoch seconds of each customer's first order (their "birth" in BG/NBD terms)."""

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class OrderColumns:
    """A batch of generated orders, grouped by customer and in time order within one."""

    customer_index: IntArray
    """Index of the customer within the batch the orders were drawn for."""
    placed_at: IntArray
    delivered_at: IntArray
    """Epoch seconds, NO_DELIVERY (-1) while not delivered."""
    amount_minor: IntArray
    status: IntArray
    """Index into STATUS_NAMES."""
    first_item: IntArray
    item_count: IntArray
    quantity: IntArray
    """Quantity of the first item; the others are single pieces."""

    def __len__(self) -> int:
        return int(self.placed_at.size)


def draw_customer_columns(
    count: int, rng: np.random.Generator, now_epoch: int, history_days: float = HISTORY_DAYS
) -> CustomerColumns:
    """Names, phones, zones and first-order moments for `count` customers."""
    english = rng.random(count) < 0.2
    female = rng.random(count) < 0.55
    male_ru = rng.integers(len(names.RUSSIAN_MALE), size=count)
    female_ru = rng.integers(len(names.RUSSIAN_FEMALE), size=count)
    surname_ru = rng.integers(len(names.RUSSIAN_SURNAMES), size=count)
    male_en = rng.integers(len(names.ENGLISH_MALE), size=count)
    female_en = rng.integers(len(names.ENGLISH_FEMALE), size=count)
    surname_en = rng.integers(len(names.ENGLISH_SURNAMES), size=count)
    feminine = {s: names.russian_feminine_surname(s) for s in names.RUSSIAN_SURNAMES}

    first_names: list[str] = []
    surnames: list[str] = []
    for i in range(count):
        if english[i]:
            first = (names.ENGLISH_FEMALE[female_en[i]] if female[i] else
                     names.ENGLISH_MALE[male_en[i]])  # fmt: skip
            surname = names.ENGLISH_SURNAMES[surname_en[i]]
        else:
            first = (names.RUSSIAN_FEMALE[female_ru[i]] if female[i] else
                     names.RUSSIAN_MALE[male_ru[i]])  # fmt: skip
            masculine = names.RUSSIAN_SURNAMES[surname_ru[i]]
            surname = feminine[masculine] if female[i] else masculine
        first_names.append(first)
        surnames.append(surname)

    # Phones: Russian mobiles (+7 9xx) for everyone except half of the English speakers, who
    # bought from abroad with a British (+44 74xx/75xx) or North American number.
    country = np.where(english & (rng.random(count) < 0.5), 1, 0)  # 0 = RU, 1 = abroad
    abroad_us = rng.random(count) < 0.4
    ru_digits = rng.integers(9_000_000_000, 10_000_000_000, size=count)
    uk_digits = rng.integers(7_400_000_000, 7_600_000_000, size=count)
    us_area = rng.integers(len(US_AREA_CODES), size=count)
    us_local = rng.integers(2_000_000, 10_000_000, size=count)
    zone_names = [zone for zone, _ in RUSSIAN_TIME_ZONES]
    weights = np.array([weight for _, weight in RUSSIAN_TIME_ZONES])
    ru_zone = rng.choice(len(zone_names), size=count, p=weights / weights.sum())
    phones: list[str] = []
    zones: list[str] = []
    for i in range(count):
        if country[i] == 0:
            phones.append(f"+7{ru_digits[i]}")
            zones.append(zone_names[ru_zone[i]])
        elif abroad_us[i]:
            area, zone = US_AREA_CODES[us_area[i]]
            phones.append(f"+1{area}{us_local[i]}")
            zones.append(zone)
        else:
            phones.append(f"+44{uk_digits[i]}")
            zones.append("Europe/London")

    has_email = rng.random(count) < 0.55
    email_number = rng.integers(1, 100, size=count)
    email_domain = rng.integers(3, size=count)
    emails: list[str | None] = [
        f"{names.transliterate(first_names[i])}.{names.transliterate(surnames[i])}"
        f"{email_number[i]}@example.{('com', 'org', 'net')[email_domain[i]]}".replace("'", "")
        if has_email[i]
        else None
        for i in range(count)
    ]

    has_birthday = rng.random(count) < 0.75
    # Ages 18..75 at the end of the history, as days since 1970 for a cheap vectorised draw.
    today = int(now_epoch // SECONDS_PER_DAY)
    birth_day = today - rng.integers(18 * 365, 75 * 365, size=count)
    epoch_date = date(1970, 1, 1)
    birthdays: list[date | None] = [
        epoch_date + timedelta(days=int(birth_day[i])) if has_birthday[i] else None
        for i in range(count)
    ]

    has_telegram = rng.random(count) < 0.4
    chat_ids = rng.integers(100_000_000, 7_000_000_000, size=count)
    telegram: list[int | None] = [
        int(chat_ids[i]) if has_telegram[i] else None for i in range(count)
    ]

    # First orders: the shop grew, so recent months brought more new customers than early ones
    # (Beta(1, 1.3) puts more mass on short ages).
    age_days = history_days * rng.beta(1.0, 1.3, size=count)
    first_order_at = (now_epoch - age_days * SECONDS_PER_DAY).astype(np.int64)

    return CustomerColumns(
        first_name=first_names,
        name=[f"{first} {surname}" for first, surname in zip(first_names, surnames, strict=True)],
        phone=phones,
        email=emails,
        locale=["en" if flag else "ru" for flag in english],
        time_zone=zones,
        birthday=birthdays,
        telegram_chat_id=telegram,
        first_order_at=first_order_at,
    )


def draw_order_columns(
    first_order_at: IntArray,
    now_epoch: int,
    rng: np.random.Generator,
    process: BgNbdParams = DEMO_PROCESS,
) -> OrderColumns:
    """Orders of customers whose first order was at `first_order_at`: the trial plus BG/NBD repeats.

    Each customer gets their own rate and dropout probability, so the history is what BG/NBD
    assumes; statuses, amounts and items are drawn around it.
    """
    count = first_order_at.size
    age_days = (now_epoch - first_order_at) / SECONDS_PER_DAY
    rates, dropout = draw_customers(process, count, rng)
    repeats, repeat_days = simulate_purchase_times(rates, dropout, age_days, rng)

    per_customer = repeats + 1  # the first order is not a repeat
    total = int(per_customer.sum())
    customer_index = np.repeat(np.arange(count, dtype=np.int64), per_customer)
    # Position of each order within its customer: 0 is the first order.
    starts = np.cumsum(per_customer) - per_customer
    position = np.arange(total, dtype=np.int64) - np.repeat(starts, per_customer)
    offset_days = np.zeros(total)
    offset_days[position > 0] = repeat_days
    placed_at = first_order_at[customer_index] + (offset_days * SECONDS_PER_DAY).astype(np.int64)
    placed_at = np.minimum(placed_at, now_epoch)

    # Spend: each customer has a level (some buy big); each order varies around it. Rounded to
    # ten roubles, as shop prices are, then to kopecks.
    level = rng.normal(np.log(1800.0), 0.45, size=count)
    roubles = np.exp(level[customer_index] + rng.normal(0.0, 0.55, size=total))
    amount_minor = (np.maximum(np.round(roubles / 10.0), 15) * 10 * 100).astype(np.int64)

    delivery_days = rng.uniform(1.0, 6.0, size=total)
    arrives = placed_at + (delivery_days * SECONDS_PER_DAY).astype(np.int64)
    outcome = rng.random(total)
    in_flight = arrives > now_epoch
    since_placed_days = (now_epoch - placed_at) / SECONDS_PER_DAY
    status = np.full(total, STATUS_DELIVERED, dtype=np.int64)
    status[outcome < 0.04] = STATUS_CANCELLED
    status[(outcome >= 0.04) & (outcome < 0.065)] = STATUS_RETURNED
    # Orders still on their way: a cancellation can already have happened, a return not yet.
    flight_status = np.where(
        since_placed_days < 0.3,
        STATUS_PLACED,
        np.where(since_placed_days < 1.0, STATUS_PAID, STATUS_SHIPPED),
    )
    status = np.where(in_flight & (status != STATUS_CANCELLED), flight_status, status)
    delivered = (status == STATUS_DELIVERED) | (status == STATUS_RETURNED)
    delivered_at = np.where(delivered, arrives, NO_DELIVERY).astype(np.int64)

    return OrderColumns(
        customer_index=customer_index,
        placed_at=placed_at.astype(np.int64),
        delivered_at=delivered_at,
        amount_minor=amount_minor,
        status=status,
        first_item=rng.integers(len(CATALOGUE), size=total),
        item_count=1 + rng.binomial(3, 0.3, size=total),
        quantity=rng.choice(np.array([1, 1, 1, 1, 2, 2, 3]), size=total),
    )


class ItemsJson:
    """Order items as JSON text, memoised: there are only a few hundred distinct item lists."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, int, str], list[dict[str, Any]]] = {}
        self._text: dict[tuple[int, int, int, str], str] = {}

    def items(self, first: int, count: int, quantity: int, locale: str) -> list[dict[str, Any]]:
        key = (first, count, quantity, locale)
        cached = self._cache.get(key)
        if cached is None:
            cached = []
            for j in range(count):
                # Consecutive catalogue positions seven apart: distinct products, mixed kinds.
                sku, name_ru, name_en, _ = CATALOGUE[(first + 7 * j) % len(CATALOGUE)]
                cached.append(
                    {
                        "sku": sku,
                        "name": name_en if locale == "en" else name_ru,
                        "quantity": quantity if j == 0 else 1,
                    }
                )
            self._cache[key] = cached
        return cached

    def text(self, first: int, count: int, quantity: int, locale: str) -> str:
        key = (first, count, quantity, locale)
        cached = self._text.get(key)
        if cached is None:
            cached = json.dumps(self.items(*key), ensure_ascii=False, separators=(",", ":"))
            self._text[key] = cached
        return cached


def calibrated_process(
    orders_per_customer: float,
    age_days: FloatArray,
    shape: BgNbdParams = DEMO_PROCESS,
) -> BgNbdParams:
    """`shape` with α rescaled so that customers of these ages place this many orders on average.

    The mean counts the first order too. The dropout part (a, b) caps how many repeat purchases a
    customer can make before leaving, b/(a−1) on average, so not every target can be reached.
    """
    target = orders_per_customer - 1.0
    if target <= 0:
        raise ValueError("orders per customer must be more than 1 (the first order counts)")

    def excess(log_alpha: float) -> float:
        params = BgNbdParams(r=shape.r, alpha=float(np.exp(log_alpha)), a=shape.a, b=shape.b)
        return float(np.mean(expected_purchases_unconditional(params, age_days))) - target

    low, high = np.log(1e-4), np.log(1e7)
    if excess(low) <= 0:
        raise ValueError(
            f"{orders_per_customer} orders per customer is out of reach of dropout "
            f"Beta({shape.a}, {shape.b}) over these ages"
        )
    log_alpha = optimize.brentq(excess, low, high, xtol=1e-6)
    return BgNbdParams(r=shape.r, alpha=float(np.exp(log_alpha)), a=shape.a, b=shape.b)


def _batches(
    rows: Iterable[dict[str, Any]], size: int = BATCH_ROWS
) -> Iterator[list[dict[str, Any]]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(connection: Connection, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Core executemany in batches: one round trip per few thousand rows, not per row."""
    inserted = 0
    for batch in _batches(rows):
        connection.execute(insert(table), batch)
        inserted += len(batch)
    return inserted


def is_empty(connection: Connection) -> bool:
    """True when the shop has neither customers nor orders (managers alone do not count)."""
    customers = connection.execute(select(func.count()).select_from(Customer)).scalar_one()
    orders = connection.execute(select(func.count()).select_from(Order)).scalar_one()
    return customers == 0 and orders == 0


def seed_demo(
    app: App, customers: int = 3_000, seed: int = 1, *, force: bool = False
) -> SeedSummary:
    """Fill the database with a demo shop: managers, customers, consents and 2.5 years of orders.

    Refuses a database that already has customers or orders unless `force`, in which case the demo
    shop is added next to what is there (ids and external ids continue after the existing ones).
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    now = app.clock.now()
    now_epoch = int(now.timestamp())
    rng = np.random.default_rng(seed)
    columns = draw_customer_columns(customers, rng, now_epoch)
    orders = draw_order_columns(columns.first_order_at, now_epoch, rng)

    with app.engine.begin() as connection:
        if not force and not is_empty(connection):
            raise DatabaseNotEmptyError(
                "the database already has customers or orders; the demo shop is only seeded into "
                "an empty one (use --force to add it anyway)"
            )
        customer_base = connection.execute(select(func.coalesce(func.max(Customer.id), 0)))
        first_customer_id = int(customer_base.scalar_one()) + 1
        manager_base = connection.execute(select(func.coalesce(func.max(Manager.id), 0)))
        first_manager_id = int(manager_base.scalar_one()) + 1
        order_base = connection.execute(select(func.coalesce(func.max(Order.id), 0)))
        first_order_number = int(order_base.scalar_one()) + 1

        manager_ids = _insert_managers(connection, rng, first_manager_id)
        _insert_customers(connection, columns, rng, now, first_customer_id, manager_ids)
        consents = _insert_consents(connection, columns, rng, now, first_customer_id)
        _insert_orders(connection, columns, orders, first_customer_id, first_order_number)
        if connection.dialect.name == "postgresql":
            # Ids were given explicitly; move the sequences past them for later inserts.
            for table in ("customers", "managers"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    )
                )

    refresh_rhythm(app.engine)
    return SeedSummary(
        customers=customers,
        orders=len(orders),
        consents=consents,
        managers=len(manager_ids),
        seed=seed,
        first_order_at=from_epoch(int(orders.placed_at.min())) if len(orders) else None,
        last_order_at=from_epoch(int(orders.placed_at.max())) if len(orders) else None,
    )


def _insert_managers(connection: Connection, rng: np.random.Generator, first_id: int) -> list[int]:
    count = int(rng.integers(3, 6))
    existing = set(connection.execute(select(Manager.name)).scalars())
    rows: list[Row] = []
    for offset, (name, phone) in enumerate(MANAGER_NAMES[:count]):
        if name in existing:  # a forced second seed keeps the managers of the first
            continue
        rows.append(
            {
                "id": first_id + len(rows),
                "name": name,
                "phone": phone,
                "telegram_chat_id": 500_000_000 + offset if offset % 2 == 0 else None,
            }
        )
    _insert(connection, Manager.__table__, rows)
    names_wanted = [name for name, _ in MANAGER_NAMES[:count]]
    found = connection.execute(
        select(Manager.id, Manager.name).where(Manager.name.in_(names_wanted))
    )
    by_name = {name: manager_id for manager_id, name in found}
    return [by_name[name] for name in names_wanted]


def _insert_customers(
    connection: Connection,
    columns: CustomerColumns,
    rng: np.random.Generator,
    now: datetime,
    first_id: int,
    manager_ids: Sequence[int],
) -> None:
    count = len(columns)
    has_manager = rng.random(count) < 0.35
    manager = rng.integers(len(manager_ids), size=count)
    flag_draw = rng.random(count)
    flag_reason = rng.integers(len(FLAG_REASONS), size=count)
    opt_out_draw = rng.random(count)
    opt_out_days = rng.uniform(1, 120, size=count)

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            created = from_epoch(int(columns.first_order_at[i]))
            opted_out = (
                max(created, now - timedelta(days=float(opt_out_days[i])))
                if opt_out_draw[i] < 0.02
                else None
            )
            yield {
                "id": first_id + i,
                "external_id": f"DEMO-{first_id + i:07d}",
                "name": columns.name[i],
                "first_name": columns.first_name[i],
                "phone": columns.phone[i],
                "email": columns.email[i],
                "telegram_chat_id": columns.telegram_chat_id[i],
                "locale": columns.locale[i],
                "time_zone": columns.time_zone[i],
                "birthday": columns.birthday[i],
                "tags": ["demo"],
                "manager_id": manager_ids[manager[i]] if has_manager[i] else None,
                "flagged": FLAG_REASONS[flag_reason[i]] if flag_draw[i] < 0.01 else None,
                "opted_out_at": opted_out,
                "last_contacted_at": None,
                "won_back_at": None,
                "created_at": created,
                "updated_at": now,
            }

    _insert(connection, Customer.__table__, rows())


def _insert_consents(
    connection: Connection,
    columns: CustomerColumns,
    rng: np.random.Generator,
    now: datetime,
    first_id: int,
) -> int:
    """Most customers agreed to service messages and surveys by Telegram and voice at checkout;
    about half also to marketing in Telegram. A few later withdrew everything."""
    count = len(columns)
    service = rng.random(count) < 0.85
    marketing = rng.random(count) < 0.5
    withdrew = rng.random(count) < 0.03
    withdraw_days = rng.uniform(1, 200, size=count)

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            at = from_epoch(int(columns.first_order_at[i]))
            granted: list[tuple[str, str]] = []
            if service[i]:
                granted += [(c, p) for c in ("telegram", "voice") for p in ("survey", "service")]
            if marketing[i]:
                granted.append(("telegram", "marketing"))
            for channel, purpose in granted:
                yield _consent(first_id + i, channel, purpose, True, at)
            if withdrew[i] and granted:
                later = max(at + timedelta(hours=1), now - timedelta(days=float(withdraw_days[i])))
                for channel, purpose in granted:
                    yield _consent(first_id + i, channel, purpose, False, min(later, now))

    return _insert(connection, Consent.__table__, rows())


def _consent(
    customer_id: int, channel: str, purpose: str, granted: bool, at: datetime
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": channel,
        "purpose": purpose,
        "granted": granted,
        "at": at,
        "source": DEMO_SOURCE,
    }


def _insert_orders(
    connection: Connection,
    columns: CustomerColumns,
    orders: OrderColumns,
    first_customer_id: int,
    first_number: int,
) -> None:
    items = ItemsJson()
    currency = "RUB"

    def rows() -> Iterator[dict[str, Any]]:
        for k in range(len(orders)):
            i = int(orders.customer_index[k])
            delivered = int(orders.delivered_at[k])
            yield {
                "external_id": f"DEMO-O{first_number + k:08d}",
                "customer_id": first_customer_id + i,
                "placed_at": from_epoch(int(orders.placed_at[k])),
                "delivered_at": from_epoch(delivered) if delivered != NO_DELIVERY else None,
                "amount_minor": int(orders.amount_minor[k]),
                "currency": currency,
                "status": STATUS_NAMES[int(orders.status[k])],
                "items": items.items(
                    int(orders.first_item[k]),
                    int(orders.item_count[k]),
                    int(orders.quantity[k]),
                    columns.locale[i],
                ),
            }

    _insert(connection, Order.__table__, rows())
