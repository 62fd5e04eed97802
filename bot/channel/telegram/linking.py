"""Linking Telegram chats to customers, in the caller's transaction (nothing here commits).

One chat belongs to at most one customer and one customer to at most one chat:
`customers.telegram_chat_id` (what the dispatcher reads) and `telegram_chats.customer_id` are
kept in step. A chat is linked by a deep-link token (`/start <token>`) or by the phone number the
user shared with the contact button; every chat that ever wrote to the bot is kept in
`telegram_chats`, linked or not. See docs/telegram.md, "Linking customers".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.channel.telegram.links import LinkError, LinkErrorKind, read_token
from bot.customers.phones import normalise_phone
from bot.db.models import PURPOSES, Consent, Customer
from bot.db.telegram import TelegramChat, TelegramLinkUse
from bot.db.upsert import dialect_insert

BLOCKED_SOURCE = "blocked the Telegram bot"
"""The consent ledger's source for the withdrawals written when a user blocks the bot."""
UNBLOCKED_SOURCE = "wrote to the Telegram bot again after blocking it"
"""The source for the grants written when a user who had blocked the bot writes to it again."""
RESTORED_ON_RETURN = ("survey", "service")
"""What writing again restores: marketing needs its own consent, so its withdrawal stays."""


class LinkStatus(StrEnum):
    linked = "linked"
    """The chat is now the customer's (it may have been another customer's or chat before)."""
    already_linked_same_chat = "already_linked_same_chat"
    """The customer was already linked to this very chat; nothing changed but the token's use."""
    used = "used"
    """The token was used before, by another chat."""
    expired = "expired"
    """The token's signature is valid but its time is over; `customer_id` says whose it was."""
    invalid = "invalid"
    """Not a token of ours: malformed or a bad signature."""
    unknown_customer = "unknown_customer"
    """A valid token for a customer who no longer exists."""
    unknown_phone = "unknown_phone"
    """The shared phone is not a valid number, or no customer has it."""
    ambiguous = "ambiguous"
    """Several customers have the shared phone: not linked, a manager has to decide."""


@dataclass(frozen=True, slots=True)
class LinkResult:
    status: LinkStatus
    customer_id: int | None = None
    """The customer linked (or already linked, or the expired token's); None otherwise."""
    locale: str | None = None
    """The customer's locale when known, so the bot can answer in it."""
    phone: str | None = None
    """link_by_phone: the shared number in E.164, when it was valid."""

    @property
    def linked(self) -> bool:
        return self.status in (LinkStatus.linked, LinkStatus.already_linked_same_chat)


def remember_chat(
    session: Session,
    chat_id: int,
    user_id: int | None,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
    language_code: str | None,
    now: datetime,
) -> TelegramChat:
    """Insert or update the chat's row with the user's current profile; last_seen_at = now.

    A chat that writes to the bot has not blocked it, so `blocked_at` is cleared (the consents
    are the caller's: `restore_consent_on_return`). Race-free upsert
    (INSERT ... ON CONFLICT DO UPDATE) on SQLite and PostgreSQL.
    """
    values: dict[str, Any] = {
        "chat_id": chat_id,
        "user_id": user_id,
        "username": _cut(username, 64),
        "first_name": _cut(first_name, 100),
        "last_name": _cut(last_name, 100),
        "language_code": _cut(language_code, 16),
        "first_seen_at": now,
        "last_seen_at": now,
        "blocked_at": None,
    }
    insert = dialect_insert(session)
    changed = {key: value for key, value in values.items() if key != "first_seen_at"}
    statement = (
        insert(TelegramChat)
        .values(values)
        .on_conflict_do_update(index_elements=["chat_id"], set_=changed)
    )
    session.execute(statement)
    chat = session.get(TelegramChat, chat_id, populate_existing=True)
    assert chat is not None  # just written
    return chat


def link_by_token(
    session: Session, token: str, chat_id: int, secret: bytes, now: datetime
) -> LinkResult:
    """`/start <token>`: link the chat to the token's customer, once per token.

    The token's nonce is recorded in telegram_link_uses; a second use from another chat is refused
    (`used`); the same chat repeating it (a double tap, a redelivered update) is answered
    `already_linked_same_chat` while the link stands. Two concurrent first uses of one token make
    the second transaction fail on the nonce's primary key; retried, it reads `used`.
    """
    try:
        parsed = read_token(token, secret, now)
    except LinkError as error:
        if error.kind is LinkErrorKind.expired and error.token is not None:
            customer = session.get(Customer, error.token.customer_id)
            if customer is None:
                return LinkResult(LinkStatus.unknown_customer)
            return LinkResult(LinkStatus.expired, customer.id, customer.locale)
        return LinkResult(LinkStatus.invalid)
    customer = session.get(Customer, parsed.customer_id)
    if customer is None:
        return LinkResult(LinkStatus.unknown_customer)
    use = session.get(TelegramLinkUse, parsed.nonce)
    if use is not None:
        if use.chat_id == chat_id and customer.telegram_chat_id == chat_id:
            return LinkResult(LinkStatus.already_linked_same_chat, customer.id, customer.locale)
        return LinkResult(LinkStatus.used, customer.id, customer.locale)
    session.add(
        TelegramLinkUse(nonce=parsed.nonce, customer_id=customer.id, chat_id=chat_id, used_at=now)
    )
    status = _link(session, customer, chat_id, now)
    return LinkResult(status, customer.id, customer.locale)


def link_by_phone(
    session: Session, chat_id: int, phone: str, default_region: str, now: datetime
) -> LinkResult:
    """The user shared a phone number (contact button): link the one customer who has it.

    The caller must pass only the user's OWN number (`contact.user_id == from_user.id`): the
    contact button can also share someone else's card. The number, in E.164, is stored on the chat
    even when it matches nobody (an unlinked contact a manager can look at later).
    """
    try:
        e164 = normalise_phone(phone, default_region)
    except ValueError:
        return LinkResult(LinkStatus.unknown_phone)
    chat = _chat(session, chat_id, now)
    chat.phone = e164
    found = session.scalars(select(Customer).where(Customer.phone == e164).limit(2)).all()
    if not found:
        session.flush()
        return LinkResult(LinkStatus.unknown_phone, phone=e164)
    if len(found) > 1:
        session.flush()
        return LinkResult(LinkStatus.ambiguous, phone=e164)
    customer = found[0]
    status = _link(session, customer, chat_id, now)
    return LinkResult(status, customer.id, customer.locale, e164)


def customer_for_chat(session: Session, chat_id: int) -> int | None:
    """The id of the customer linked to the chat, or None for an unlinked contact."""
    return session.scalars(
        select(Customer.id).where(Customer.telegram_chat_id == chat_id).order_by(Customer.id)
    ).first()


def forget_chat_on_block(session: Session, chat_id: int, now: datetime) -> int | None:
    """The user blocked the bot (a 403, or my_chat_member "kicked"): mark the chat blocked and
    withdraw the linked customer's Telegram consent for every purpose, so the guard skips Telegram
    and campaigns fall back to their next channel. Returns the customer id, or None.

    The link itself stays (the history, and a later /start, find the customer). Blocking again
    while already blocked writes nothing new.
    """
    chat = _chat(session, chat_id, now)
    customer_id = customer_for_chat(session, chat_id)
    if chat.blocked_at is not None:
        return customer_id
    chat.blocked_at = now
    if customer_id is not None:
        _telegram_consent(session, customer_id, PURPOSES, False, now, BLOCKED_SOURCE)
    session.flush()
    return customer_id


def restore_consent_on_return(session: Session, customer_id: int, now: datetime) -> None:
    """The customer wrote to the bot after blocking it: surveys and service messages may come
    to Telegram again (`RESTORED_ON_RETURN`); the marketing withdrawal stays."""
    _telegram_consent(session, customer_id, RESTORED_ON_RETURN, True, now, UNBLOCKED_SOURCE)


def _telegram_consent(
    session: Session,
    customer_id: int,
    purposes: Iterable[str],
    granted: bool,
    now: datetime,
    source: str,
) -> None:
    session.add_all(
        Consent(
            customer_id=customer_id,
            channel="telegram",
            purpose=purpose,
            granted=granted,
            at=now,
            source=source,
        )
        for purpose in purposes
    )


def _link(session: Session, customer: Customer, chat_id: int, now: datetime) -> LinkStatus:
    """Make `chat_id` the customer's one chat and the chat's one customer."""
    chat = _chat(session, chat_id, now)
    if customer.telegram_chat_id == chat_id and chat.customer_id == customer.id:
        session.flush()
        return LinkStatus.already_linked_same_chat
    # Another customer holding this chat loses it; this customer's previous chat is unlinked.
    session.execute(
        update(Customer)
        .where(Customer.telegram_chat_id == chat_id, Customer.id != customer.id)
        .values(telegram_chat_id=None)
        .execution_options(synchronize_session="fetch")
    )
    session.execute(
        update(TelegramChat)
        .where(TelegramChat.customer_id == customer.id, TelegramChat.chat_id != chat_id)
        .values(customer_id=None)
        .execution_options(synchronize_session="fetch")
    )
    customer.telegram_chat_id = chat_id
    chat.customer_id = customer.id
    session.flush()
    return LinkStatus.linked


def _chat(session: Session, chat_id: int, now: datetime) -> TelegramChat:
    """The chat's row; a minimal one when the bot did not call remember_chat first."""
    chat = session.get(TelegramChat, chat_id)
    if chat is None:
        chat = TelegramChat(chat_id=chat_id, first_seen_at=now, last_seen_at=now)
        session.add(chat)
        session.flush()
    return chat


def _cut(text: str | None, length: int) -> str | None:
    return None if text is None else text[:length]
