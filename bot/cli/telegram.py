"""`boomerang telegram ...`: deep links that link customers to the bot. See docs/telegram.md."""

from __future__ import annotations

import csv
import re
import secrets
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy import select

from bot.app import App, open_app
from bot.channel.telegram.links import (
    NONCE_BYTES,
    expiry_after,
    make_token,
    secret_from_settings,
    token_maker,
)
from bot.db.models import Customer
from bot.db.raw import fetch_tuples
from bot.errors import ConfigError, InputError
from bot.gcpause import paused_gc
from bot.settings import Settings

app = typer.Typer(help="Telegram: deep links that link customers to the bot.", no_args_is_help=True)

CHUNK = 20_000
"""Customers read per query by `links`: keyset pages by id, raw driver tuples."""
_USERNAME = re.compile(r"[A-Za-z0-9_]{3,32}")


def bot_link_base(settings: Settings) -> str:
    """`https://t.me/<username>?start=`, from BOOMERANG_TELEGRAM_BOT_USERNAME."""
    username = (settings.telegram_bot_username or "").strip().removeprefix("@")
    if not username:
        raise ConfigError(
            "set BOOMERANG_TELEGRAM_BOT_USERNAME to the bot's @username (without '@') "
            "to build t.me deep links"
        )
    if not _USERNAME.fullmatch(username):
        raise ConfigError(
            f"BOOMERANG_TELEGRAM_BOT_USERNAME={username!r} is not a Telegram username "
            "(letters, digits and _)"
        )
    return f"https://t.me/{username}?start="


def _days(settings: Settings, days: int | None) -> int:
    if days is None:
        return settings.telegram_link_days
    if days < 1:
        raise InputError("--days", f"must be at least 1, not {days}")
    return days


def find_customer(opened: App, customer: str | None, customer_id: int | None) -> tuple[int, str]:
    """(id, external id) from an external id, `#<id>` or `--id`."""
    if customer_id is None and customer is not None and customer.startswith("#"):
        digits = customer[1:]
        if not digits.isdigit():
            raise InputError("CUSTOMER", f"{customer!r}: after '#' comes the customer's id")
        customer_id, customer = int(digits), None
    if (customer_id is None) == (customer is None):
        raise InputError("CUSTOMER", "give a customer's external id, #<id> or --id, one of them")
    query = select(Customer.id, Customer.external_id)
    if customer_id is not None:
        query = query.where(Customer.id == customer_id)
        what = f"id {customer_id}"
    else:
        query = query.where(Customer.external_id == customer)
        what = f"external id {customer!r}"
    with opened.sessions() as session:
        row = session.execute(query).first()
    if row is None:
        raise InputError("CUSTOMER", f"no customer with {what}")
    return int(row[0]), str(row[1])


@app.command("link")
def link(
    customer: str | None = typer.Argument(
        None, help="The customer's external id (as imported), or #<id>."
    ),
    customer_id: int | None = typer.Option(None, "--id", help="The customer's internal id."),
    days: int | None = typer.Option(
        None, "--days", help="Days the link stays valid (default BOOMERANG_TELEGRAM_LINK_DAYS)."
    ),
) -> None:
    """Print one customer's deep link https://t.me/<bot>?start=<token> and when it expires."""
    opened = open_app()
    try:
        settings = opened.settings
        base = bot_link_base(settings)
        secret = secret_from_settings(settings)
        lifetime = _days(settings, days)
        found_id, external_id = find_customer(opened, customer, customer_id)
        expires_at = expiry_after(opened.clock.now(), lifetime)
    finally:
        opened.engine.dispose()
    token = make_token(found_id, secret, expires_at, secrets.token_bytes(NONCE_BYTES))
    typer.echo(base + token)
    typer.echo(
        f"customer #{found_id} ({external_id}); single use; expires {expires_at.isoformat()}",
        err=True,
    )


@app.command("links")
def links(
    out: Path = typer.Option(..., "--out", help="CSV file to write, one row per customer."),
    days: int | None = typer.Option(
        None, "--days", help="Days the links stay valid (default BOOMERANG_TELEGRAM_LINK_DAYS)."
    ),
) -> None:
    """Export every customer's deep link: external_id, name, phone, link, expires_at (by id)."""
    opened = open_app()
    try:
        settings = opened.settings
        base = bot_link_base(settings)
        secret = secret_from_settings(settings)
        expires_at = expiry_after(opened.clock.now(), _days(settings, days))
        with paused_gc():
            count = write_links(opened, out, base, secret, expires_at)
    finally:
        opened.engine.dispose()
    typer.echo(f"wrote {count} links, expiring {expires_at.isoformat()}, to {out}")


def write_links(opened: App, out: Path, base: str, secret: bytes, expires_at: datetime) -> int:
    """Stream all customers in id order into `out`; the number of rows written."""
    c = Customer.__table__.c
    expiry = expires_at.isoformat()
    make = token_maker(secret, expires_at)
    count = 0
    last = 0
    try:
        handle = out.open("w", newline="", encoding="utf-8")
    except OSError as error:
        raise InputError(str(out), f"cannot write: {error.strerror or error}") from error
    with handle, opened.engine.connect() as connection:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "name", "phone", "link", "expires_at"])
        while True:
            page = fetch_tuples(
                connection,
                select(c.id, c.external_id, c.name, c.phone)
                .where(c.id > last)
                .order_by(c.id)
                .limit(CHUNK),
            )
            if not page:
                return count
            nonces = secrets.token_bytes(NONCE_BYTES * len(page))
            step = NONCE_BYTES
            writer.writerows(
                (
                    external_id,
                    name or "",
                    phone or "",
                    base + make(customer_id, nonces[index * step : index * step + step]),
                    expiry,
                )
                for index, (customer_id, external_id, name, phone) in enumerate(page)
            )
            count += len(page)
            last = page[-1][0]
