"""What the dispatcher needs to know about the customers of a batch, read in a few bulk queries.

For a set of customer ids, one query each: the customers, their consent ledger, their contacts by
any campaign (for the frequency cap) and their orders (for the script's context). The result per
customer is a `Person`: the guard's `Recipient`, the locale, and the render context. Used by the
dispatcher for every tick and by the dry run; nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from bot.campaign.guard import ConsentEntry, ContactRecord, Recipient, consents_in_force
from bot.campaign.loader import LoadedCampaign
from bot.campaign.states import DONE, IN_CONVERSATION
from bot.db.models import VOID_ORDER_STATUSES, Consent, Customer, Manager, Order
from bot.db.outreach import Outreach
from bot.dialog.context import Plain

CONTACTED = (DONE, IN_CONVERSATION)
"""States of rows that count as a contact for the frequency cap."""
CHUNK = 500
"""Ids per `IN (...)`: well under SQLite's and PostgreSQL's parameter limits."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Person:
    recipient: Recipient
    locale: str | None
    external_id: str
    name: str | None
    context: Mapping[str, Plain]
    """The script's render context: customer_id, first_name, company_name, the last order."""


def _item_names(items: object) -> tuple[str, ...]:
    """The names of an order's items (`items` JSON: a list of objects with a name, or strings)."""
    if not isinstance(items, list):
        return ()
    names: list[str] = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            name = item.get("name") or item.get("title") or item.get("sku")
            if name is not None:
                names.append(str(name))
    return tuple(names)


def _chunks(ids: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def load_people(
    session: Session,
    customer_ids: Collection[int],
    campaigns: Mapping[str, LoadedCampaign],
    company_name: str,
    now: datetime,
) -> dict[int, Person]:
    """A `Person` per existing customer in `customer_ids` (a deleted customer is simply absent).

    Contacts by a campaign not in `campaigns` count as marketing, against the cap.
    """
    ids = sorted(set(customer_ids))
    consents: dict[int, list[tuple[str, str, ConsentEntry]]] = defaultdict(list)
    contacts: dict[int, list[ContactRecord]] = defaultdict(list)
    last_order: dict[int, tuple[str, datetime, int, tuple[str, ...]]] = {}
    customers: list[Row[Any]] = []
    for chunk in _chunks(ids):
        customers.extend(
            session.execute(
                select(
                    Customer.id,
                    Customer.external_id,
                    Customer.name,
                    Customer.first_name,
                    Customer.phone,
                    Customer.time_zone,
                    Customer.locale,
                    Customer.opted_out_at,
                    Customer.flagged,
                    Customer.telegram_chat_id,
                    Manager.name.label("manager_name"),
                )
                .outerjoin(Manager, Manager.id == Customer.manager_id)
                .where(Customer.id.in_(chunk))
            )
        )
        ledger = session.execute(
            select(
                Consent.customer_id,
                Consent.channel,
                Consent.purpose,
                Consent.granted,
                Consent.at,
                Consent.source,
            )
            .where(Consent.customer_id.in_(chunk))
            .order_by(Consent.customer_id, Consent.at, Consent.id)
        )
        for customer_id, channel, purpose, granted, at, source in ledger:
            consents[customer_id].append((channel, purpose, ConsentEntry(granted, at, source)))
        contacted = session.execute(
            select(Outreach.customer_id, Outreach.campaign_id, Outreach.contacted_at).where(
                Outreach.customer_id.in_(chunk),
                Outreach.state.in_(CONTACTED),
                Outreach.contacted_at.is_not(None),
            )
        )
        for customer_id, campaign_id, contacted_at in contacted:
            assert contacted_at is not None  # selected so
            other = campaigns.get(campaign_id)
            if other is None:
                contacts[customer_id].append(ContactRecord(contacted_at, campaign_id, "marketing"))
            else:
                cap = other.campaign.frequency_cap
                contacts[customer_id].append(
                    ContactRecord(contacted_at, campaign_id, other.campaign.purpose, cap.exempt)
                )
        latest = (
            select(Order.customer_id, func.max(Order.placed_at).label("placed_at"))
            .where(Order.customer_id.in_(chunk), Order.status.not_in(VOID_ORDER_STATUSES))
            .group_by(Order.customer_id)
            .subquery()
        )
        orders = session.execute(
            select(
                Order.customer_id,
                Order.external_id,
                Order.placed_at,
                Order.amount_minor,
                Order.items,
            )
            .join(
                latest,
                (Order.customer_id == latest.c.customer_id)
                & (Order.placed_at == latest.c.placed_at),
            )
            .where(Order.status.not_in(VOID_ORDER_STATUSES))
            .order_by(Order.customer_id, Order.id)
        )
        for customer_id, external_id, placed_at, amount_minor, items in orders:
            last_order[customer_id] = (external_id, placed_at, amount_minor, _item_names(items))
    people: dict[int, Person] = {}
    for row in customers:
        first_name = row.first_name or (row.name or "").split(" ")[0] or None
        context: dict[str, Plain] = {
            "customer_id": row.id,
            "first_name": first_name,
            "company_name": company_name,
            "manager_name": row.manager_name,
        }
        if row.id in last_order:
            external_id, placed_at, amount_minor, items = last_order[row.id]
            context["last_order_items"] = items
            context["order_number"] = external_id
            context["last_order_date"] = placed_at.date()
            context["last_order_amount"] = Decimal(amount_minor) / 100
            context["days_since_last_order"] = (now - placed_at).days
        recipient = Recipient(
            customer_id=row.id,
            phone=row.phone,
            time_zone=row.time_zone,
            opted_out_at=row.opted_out_at,
            flagged=row.flagged,
            telegram_chat_id=row.telegram_chat_id,
            consents=consents_in_force(consents.get(row.id, ())),
            last_contacts=tuple(contacts.get(row.id, ())),
        )
        people[row.id] = Person(recipient, row.locale, row.external_id, row.name, context)
    return people
