"""Telegram deep-link tokens, linking chats to customers, blocks, `boomerang telegram link(s)`."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.app import App, open_app
from bot.channel.telegram.linking import (
    BLOCKED_SOURCE,
    LinkStatus,
    customer_for_chat,
    forget_chat_on_block,
    link_by_phone,
    link_by_token,
    remember_chat,
)
from bot.channel.telegram.links import (
    MAX_TOKEN_CHARS,
    NONCE_BYTES,
    LinkError,
    LinkErrorKind,
    expiry_after,
    make_token,
    read_token,
    secret_from_settings,
)
from bot.cli.app import app as cli
from bot.clock import FixedClock
from bot.db.models import Consent, Customer
from bot.db.telegram import TelegramChat, TelegramLinkUse
from bot.errors import ConfigError, InputError
from bot.settings import Settings, get_settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SECRET = b"a test secret of some length"
NONCE = bytes(range(1, NONCE_BYTES + 1))
LATER = NOW + timedelta(days=30)
START_PARAMETER = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- tokens (pure) -------------------------------------------------------------------------------


def test_a_token_round_trips() -> None:
    token = make_token(42, SECRET, LATER, NONCE)

    parsed = read_token(token, SECRET, NOW)

    assert parsed.customer_id == 42
    assert parsed.nonce == NONCE.hex()
    assert parsed.expires_at == LATER
    assert START_PARAMETER.fullmatch(token)


def test_expiry_is_kept_to_the_minute() -> None:
    token = make_token(7, SECRET, LATER + timedelta(seconds=59), NONCE)

    assert read_token(token, SECRET, NOW).expires_at == LATER
    assert expiry_after(NOW + timedelta(seconds=30), 30) == LATER


@pytest.mark.parametrize("customer_id", [1, 127, 128, 2**40, 2**63 - 1])
def test_length_and_charset_fit_telegram_start_parameters(customer_id: int) -> None:
    far = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    token = make_token(customer_id, SECRET, far, b"\xff" * NONCE_BYTES)

    assert len(token) <= MAX_TOKEN_CHARS
    assert START_PARAMETER.fullmatch(token)
    assert read_token(token, SECRET, NOW).customer_id == customer_id


def test_the_token_of_customer_2_to_the_40() -> None:
    token = make_token(2**40, SECRET, LATER, NONCE)

    assert len(token) == 47
    assert read_token(token, SECRET, NOW).customer_id == 2**40


def test_every_tampered_character_breaks_the_signature() -> None:
    token = make_token(2**40, SECRET, LATER, NONCE)
    kinds = set()
    for index, char in enumerate(token):
        for other in ("A", "z", "-"):
            if other == char:
                continue
            with pytest.raises(LinkError) as caught:
                read_token(token[:index] + other + token[index + 1 :], SECRET, NOW)
            kinds.add(caught.value.kind)
            assert caught.value.token is None

    assert LinkErrorKind.bad_signature in kinds
    assert kinds <= {LinkErrorKind.bad_signature, LinkErrorKind.malformed}


def test_another_secret_is_a_bad_signature() -> None:
    token = make_token(5, SECRET, LATER, NONCE)

    with pytest.raises(LinkError) as caught:
        read_token(token, b"another secret", NOW)

    assert caught.value.kind is LinkErrorKind.bad_signature
    assert isinstance(caught.value, InputError)
    assert "signature" in str(caught.value)


def test_an_expired_token_says_whose_it_was() -> None:
    token = make_token(5, SECRET, NOW, NONCE)

    with pytest.raises(LinkError) as caught:
        read_token(token, SECRET, NOW)

    assert caught.value.kind is LinkErrorKind.expired
    assert caught.value.token is not None and caught.value.token.customer_id == 5
    assert "expired at 2026-11-22T12:00:00+00:00" in str(caught.value)
    assert read_token(token, SECRET, NOW - timedelta(seconds=1)).customer_id == 5


@pytest.mark.parametrize(
    "token",
    ["", "abc", "x" * 65, "has space", "plus+slash/", "ünïcode", "A", "AAAA" * 10, "AAAAA"],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(LinkError) as caught:
        read_token(token, SECRET, NOW)

    assert caught.value.kind in (LinkErrorKind.malformed, LinkErrorKind.bad_signature)


def test_short_or_odd_tokens_are_malformed() -> None:
    for token in ("abc", "x" * 65, "a b", "A"):
        with pytest.raises(LinkError) as caught:
            read_token(token, SECRET, NOW)
        assert caught.value.kind is LinkErrorKind.malformed


def test_making_a_token_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="outside"):
        make_token(0, SECRET, LATER, NONCE)
    with pytest.raises(ValueError, match="outside"):
        make_token(2**63, SECRET, LATER, NONCE)
    with pytest.raises(ValueError, match="nonce"):
        make_token(1, SECRET, LATER, b"short")
    with pytest.raises(ValueError, match="empty"):
        make_token(1, b"", LATER, NONCE)
    with pytest.raises(ValueError, match="naive"):
        make_token(1, SECRET, LATER.replace(tzinfo=None), NONCE)
    with pytest.raises(ValueError, match="naive"):
        read_token(make_token(1, SECRET, LATER, NONCE), SECRET, NOW.replace(tzinfo=None))


def test_the_secret_comes_from_the_settings() -> None:
    explicit = Settings(telegram_link_secret="s3cret", telegram_token="123:abc")
    derived = Settings(telegram_token="123:abc")
    other_bot = Settings(telegram_token="123:abd")

    assert secret_from_settings(explicit) == b"s3cret"
    assert secret_from_settings(derived) == secret_from_settings(Settings(telegram_token="123:abc"))
    assert len(secret_from_settings(derived)) == 32
    assert secret_from_settings(derived) != b"123:abc"
    assert secret_from_settings(derived) != secret_from_settings(other_bot)
    with pytest.raises(
        ConfigError, match="BOOMERANG_TELEGRAM_LINK_SECRET.*BOOMERANG_TELEGRAM_TOKEN"
    ):
        secret_from_settings(Settings(telegram_token=None, telegram_link_secret=None))


# --- linking (database) --------------------------------------------------------------------------


def _customers(app: App, *specs: tuple[str, str | None]) -> list[int]:
    with app.sessions.begin() as session:
        rows = [
            Customer(
                external_id=external_id,
                name=f"Customer {external_id}",
                phone=phone,
                locale="ru",
                created_at=NOW,
                updated_at=NOW,
            )
            for external_id, phone in specs
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _token(customer_id: int, nonce: bytes = NONCE, expires_at: datetime = LATER) -> str:
    return make_token(customer_id, SECRET, expires_at, nonce)


def _chat_state(app: App) -> tuple[dict[int, int | None], dict[int, int | None]]:
    """({customer id: telegram_chat_id}, {chat id: customer id})."""
    with app.sessions() as session:
        customers = dict(session.execute(select(Customer.id, Customer.telegram_chat_id)).all())
        chats = dict(session.execute(select(TelegramChat.chat_id, TelegramChat.customer_id)).all())
    return customers, chats


def test_remember_chat_inserts_then_updates(app: App) -> None:
    with app.sessions.begin() as session:
        chat = remember_chat(session, 100, 100, "ivan", "Ivan", None, "ru", NOW)
        assert (chat.first_seen_at, chat.last_seen_at, chat.customer_id) == (NOW, NOW, None)
    later = NOW + timedelta(hours=1)
    with app.sessions.begin() as session:
        session.get_one(TelegramChat, 100).blocked_at = NOW
    with app.sessions.begin() as session:
        chat = remember_chat(session, 100, 100, None, "Ivan", "Petrov", "en", later)
        assert chat.username is None and chat.last_name == "Petrov"
        assert (chat.first_seen_at, chat.last_seen_at, chat.blocked_at) == (NOW, later, None)
    with app.sessions() as session:
        rows = session.scalars(select(TelegramChat)).all()
        assert [(r.chat_id, r.language_code, r.first_seen_at) for r in rows] == [(100, "en", NOW)]


def test_link_by_token_links_once(app: App) -> None:
    (ivan,) = _customers(app, ("c1", "+79161234567"))
    with app.sessions.begin() as session:
        remember_chat(session, 100, 100, "ivan", "Ivan", None, "ru", NOW)
        result = link_by_token(session, _token(ivan), 100, SECRET, NOW)
    assert (result.status, result.customer_id, result.locale) == (LinkStatus.linked, ivan, "ru")
    assert result.linked

    with app.sessions.begin() as session:
        again = link_by_token(session, _token(ivan), 100, SECRET, NOW)
        stolen = link_by_token(session, _token(ivan), 200, SECRET, NOW)
        assert customer_for_chat(session, 100) == ivan
        assert customer_for_chat(session, 200) is None
        uses = session.scalars(select(TelegramLinkUse)).all()

    assert again.status is LinkStatus.already_linked_same_chat and again.linked
    assert stolen.status is LinkStatus.used and not stolen.linked
    assert [(u.nonce, u.customer_id, u.chat_id, u.used_at) for u in uses] == [
        (NONCE.hex(), ivan, 100, NOW)
    ]
    assert _chat_state(app) == ({ivan: 100}, {100: ivan})


def test_a_fresh_token_for_the_same_chat_is_already_linked(app: App) -> None:
    (ivan,) = _customers(app, ("c1", None))
    with app.sessions.begin() as session:
        link_by_token(session, _token(ivan), 100, SECRET, NOW)
        second = link_by_token(session, _token(ivan, b"\x09" * NONCE_BYTES), 100, SECRET, NOW)

    assert second.status is LinkStatus.already_linked_same_chat


def test_one_chat_one_customer(app: App) -> None:
    ivan, anna = _customers(app, ("c1", None), ("c2", None))
    with app.sessions.begin() as session:
        assert link_by_token(session, _token(ivan), 100, SECRET, NOW).status is LinkStatus.linked
    # The same Telegram account opens Anna's link: the chat becomes hers, Ivan loses it.
    with app.sessions.begin() as session:
        anna_link = _token(anna, b"\x02" * NONCE_BYTES)
        assert link_by_token(session, anna_link, 100, SECRET, NOW).status is LinkStatus.linked
    assert _chat_state(app) == ({ivan: None, anna: 100}, {100: anna})
    # Anna moves to a new Telegram account: the old chat becomes an unlinked contact.
    with app.sessions.begin() as session:
        new_chat = _token(anna, b"\x03" * NONCE_BYTES)
        assert link_by_token(session, new_chat, 300, SECRET, NOW).status is LinkStatus.linked
        assert customer_for_chat(session, 100) is None
        assert customer_for_chat(session, 300) == anna
    assert _chat_state(app) == ({ivan: None, anna: 300}, {100: None, 300: anna})


def test_bad_tokens_link_nothing(app: App) -> None:
    (ivan,) = _customers(app, ("c1", None))
    with app.sessions.begin() as session:
        forged = link_by_token(session, make_token(ivan, b"other", LATER, NONCE), 100, SECRET, NOW)
        garbage = link_by_token(session, "hello", 100, SECRET, NOW)
        expired = link_by_token(session, _token(ivan, expires_at=NOW), 100, SECRET, NOW)
        nobody = link_by_token(session, _token(999, b"\x04" * NONCE_BYTES), 100, SECRET, NOW)
        nobody_expired = link_by_token(session, _token(999, expires_at=NOW), 100, SECRET, NOW)
        uses = session.scalars(select(TelegramLinkUse)).all()

    assert (forged.status, forged.customer_id) == (LinkStatus.invalid, None)
    assert garbage.status is LinkStatus.invalid
    assert (expired.status, expired.customer_id, expired.locale) == (
        LinkStatus.expired,
        ivan,
        "ru",
    )
    assert (nobody.status, nobody.customer_id) == (LinkStatus.unknown_customer, None)
    assert nobody_expired.status is LinkStatus.unknown_customer
    assert uses == []
    assert _chat_state(app) == ({ivan: None}, {})


def test_link_by_phone(app: App) -> None:
    ivan, _, _ = _customers(
        app, ("c1", "+79161234567"), ("c2", "+79031112233"), ("c3", "+79031112233")
    )
    with app.sessions.begin() as session:
        for chat_id in (100, 200, 300, 400):
            remember_chat(session, chat_id, chat_id, None, "Someone", None, "ru", NOW)
        exact = link_by_phone(session, 100, "8 (916) 123-45-67", "RU", NOW)
        twice = link_by_phone(session, 100, "+7 916 123 45 67", "RU", NOW)
        shared = link_by_phone(session, 200, "+79031112233", "RU", NOW)
        unknown = link_by_phone(session, 300, "+79990000000", "RU", NOW)
        invalid = link_by_phone(session, 400, "12", "RU", NOW)

    assert (exact.status, exact.customer_id, exact.phone) == (
        LinkStatus.linked,
        ivan,
        "+79161234567",
    )
    assert twice.status is LinkStatus.already_linked_same_chat
    assert (shared.status, shared.customer_id, shared.phone) == (
        LinkStatus.ambiguous,
        None,
        "+79031112233",
    )
    assert (unknown.status, unknown.customer_id) == (LinkStatus.unknown_phone, None)
    assert (invalid.status, invalid.phone) == (LinkStatus.unknown_phone, None)
    with app.sessions() as session:
        chats = {
            chat.chat_id: (chat.phone, chat.customer_id)
            for chat in session.scalars(select(TelegramChat))
        }
    assert chats == {
        100: ("+79161234567", ivan),
        200: ("+79031112233", None),
        300: ("+79990000000", None),
        400: (None, None),
    }


def test_blocking_the_bot_withdraws_telegram_consent(app: App) -> None:
    ivan, _ = _customers(app, ("c1", None), ("c2", None))
    with app.sessions.begin() as session:
        remember_chat(session, 100, 100, None, "Ivan", None, "ru", NOW)
        remember_chat(session, 200, 200, None, "Stranger", None, "ru", NOW)
        link_by_token(session, _token(ivan), 100, SECRET, NOW)
    blocked_at = NOW + timedelta(days=1)
    with app.sessions.begin() as session:
        assert forget_chat_on_block(session, 100, blocked_at) == ivan
        assert forget_chat_on_block(session, 100, blocked_at + timedelta(hours=1)) == ivan
        assert forget_chat_on_block(session, 200, blocked_at) is None
        assert forget_chat_on_block(session, 999, blocked_at) is None
    with app.sessions() as session:
        ledger = session.execute(
            select(
                Consent.customer_id,
                Consent.channel,
                Consent.purpose,
                Consent.granted,
                Consent.at,
                Consent.source,
            ).order_by(Consent.purpose)
        ).all()
        blocked = dict(session.execute(select(TelegramChat.chat_id, TelegramChat.blocked_at)).all())
        still_linked = customer_for_chat(session, 100)

    assert [tuple(row) for row in ledger] == [
        (ivan, "telegram", purpose, False, blocked_at, BLOCKED_SOURCE)
        for purpose in ("marketing", "service", "survey")
    ]
    assert BLOCKED_SOURCE == "blocked the Telegram bot"
    assert blocked == {100: blocked_at, 200: blocked_at, 999: blocked_at}
    assert still_linked == ivan


def test_nothing_is_committed_by_the_linking_functions(app: App) -> None:
    (ivan,) = _customers(app, ("c1", "+79161234567"))
    with app.sessions() as session:
        remember_chat(session, 100, 100, None, "Ivan", None, "ru", NOW)
        link_by_token(session, _token(ivan), 100, SECRET, NOW)
        forget_chat_on_block(session, 100, NOW)
        session.rollback()
    assert _chat_state(app) == ({ivan: None}, {})


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_app(
    app: App, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[App]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("BOOMERANG_TELEGRAM_BOT_USERNAME", "@boomerang_shop_bot")
    monkeypatch.setenv("BOOMERANG_TELEGRAM_LINK_SECRET", SECRET.decode())
    monkeypatch.delenv("BOOMERANG_TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("BOOMERANG_TELEGRAM_LINK_DAYS", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    monkeypatch.setattr(
        "bot.cli.telegram.open_app", lambda: open_app(clock=FixedClock(NOW))
    )  # the commands' clock stands still at NOW
    get_settings.cache_clear()
    yield app
    get_settings.cache_clear()


LINK = re.compile(r"https://t\.me/boomerang_shop_bot\?start=([A-Za-z0-9_-]{1,64})")


def test_the_link_command(cli_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    ivan, anna = _customers(cli_app, ("c1", "+79161234567"), ("c-2", None))
    runner = CliRunner()

    by_external = runner.invoke(cli, ["telegram", "link", "c1"])
    by_hash = runner.invoke(cli, ["telegram", "link", f"#{anna}", "--days", "2"])
    by_id = runner.invoke(cli, ["telegram", "link", "--id", str(ivan)])
    unknown = runner.invoke(cli, ["telegram", "link", "nobody"])
    neither = runner.invoke(cli, ["telegram", "link"])
    bad_days = runner.invoke(cli, ["telegram", "link", "c1", "--days", "0"])

    assert by_external.exit_code == 0, by_external.output
    found = LINK.fullmatch(by_external.stdout.strip())
    assert found, by_external.stdout
    now = NOW
    parsed = read_token(found.group(1), SECRET, now)
    assert (parsed.customer_id, parsed.expires_at) == (ivan, LATER)
    assert "expires 2026-12-22T12:00:00+00:00" in by_external.output
    hashed = LINK.fullmatch(by_hash.stdout.strip())
    assert hashed and read_token(hashed.group(1), SECRET, now).customer_id == anna
    assert read_token(hashed.group(1), SECRET, NOW).expires_at == NOW + timedelta(days=2)
    assert by_id.exit_code == 0 and LINK.fullmatch(by_id.stdout.strip())
    assert by_id.stdout != by_external.stdout  # a fresh nonce each time
    assert unknown.exit_code != 0
    assert "no customer with external id 'nobody'" in str(unknown.exception)
    assert neither.exit_code != 0 and "one of them" in str(neither.exception)
    assert bad_days.exit_code != 0 and "at least 1" in str(bad_days.exception)

    monkeypatch.delenv("BOOMERANG_TELEGRAM_BOT_USERNAME")
    get_settings.cache_clear()
    no_username = runner.invoke(cli, ["telegram", "link", "c1"])
    assert no_username.exit_code != 0
    assert isinstance(no_username.exception, ConfigError)
    assert "BOOMERANG_TELEGRAM_BOT_USERNAME" in str(no_username.exception)

    monkeypatch.setenv("BOOMERANG_TELEGRAM_BOT_USERNAME", "boomerang_shop_bot")
    monkeypatch.delenv("BOOMERANG_TELEGRAM_LINK_SECRET")
    get_settings.cache_clear()
    no_secret = runner.invoke(cli, ["telegram", "link", "c1"])
    assert isinstance(no_secret.exception, ConfigError)
    assert "BOOMERANG_TELEGRAM_LINK_SECRET" in str(no_secret.exception)


def test_the_links_export(cli_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.cli.telegram.CHUNK", 2)  # several pages
    ids = _customers(
        cli_app, ("c1", "+79161234567"), ("c2", None), ("c3", "+79031112233"), ("c4", None)
    )
    out = tmp_path / "links.csv"

    result = CliRunner().invoke(cli, ["telegram", "links", "--out", str(out), "--days", "7"])

    assert result.exit_code == 0, result.output
    assert "wrote 4 links, expiring 2026-11-29T12:00:00+00:00" in result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["external_id"] for r in rows] == ["c1", "c2", "c3", "c4"]
    assert rows[0]["name"] == "Customer c1" and rows[0]["phone"] == "+79161234567"
    assert rows[1]["phone"] == ""
    now = NOW
    tokens = []
    for row, customer_id in zip(rows, ids, strict=True):
        found = LINK.fullmatch(row["link"])
        assert found, row
        parsed = read_token(found.group(1), SECRET, now)
        assert parsed.customer_id == customer_id
        assert parsed.expires_at.isoformat() == row["expires_at"]
        tokens.append(parsed)
    assert len({t.nonce for t in tokens}) == 4
    assert tokens[0].expires_at == NOW + timedelta(days=7)
    # An exported link links exactly like a printed one.
    with cli_app.sessions.begin() as session:
        token = LINK.fullmatch(rows[2]["link"])
        assert token
        linked = link_by_token(session, token.group(1), 555, SECRET, now)
    assert (linked.status, linked.customer_id) == (LinkStatus.linked, ids[2])


def test_the_links_export_of_no_customers(cli_app: App, tmp_path: Path) -> None:
    out = tmp_path / "none.csv"

    result = CliRunner().invoke(cli, ["telegram", "links", "--out", str(out)])
    unwritable = CliRunner().invoke(cli, ["telegram", "links", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines() == [
        "external_id,name,phone,link,expires_at"
    ]
    assert unwritable.exit_code != 0 and "cannot write" in str(unwritable.exception)
