"""Deep-link tokens for `https://t.me/<bot>?start=<token>`: signed, single-use, expiring. Pure.

Telegram passes the start parameter to the bot only if it is at most 64 characters of
`A-Za-z0-9_-`, so a token is the unpadded base64url of a compact binary record:

    version   1 byte   (1)
    customer  varint   (unsigned LEB128, 1-9 bytes for ids below 2**63)
    expires   4 bytes  big-endian minutes since 1970-01-01 UTC (good until the year 10136)
    nonce     8 bytes  random; makes the token single-use (telegram_link_uses)
    mac      16 bytes  HMAC-SHA256(secret, label + everything above), truncated to 128 bits

That is at most 38 bytes, 51 characters (customer id 2**40: 35 bytes, 47 characters). The
signature is checked in constant time before anything in the token is trusted; expiry is checked
after it, so a forged token can never learn whether a customer id exists or when it expires.
Single use is not decided here but by the database (`bot.channel.telegram.linking`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.errors import ConfigError, InputError

if TYPE_CHECKING:
    from bot.settings import Settings

VERSION = 1
NONCE_BYTES = 8
MAC_BYTES = 16
MAX_TOKEN_CHARS = 64
"""Telegram's limit for a start parameter."""
MAX_CUSTOMER_ID = 2**63 - 1
"""customers.id fits a signed 64-bit integer on every backend."""
_MAC_LABEL = b"boomerang/telegram-link/v1\x00"
_SECRET_LABEL = b"boomerang/telegram-link-secret/v1"
_EXPIRY_BYTES = 4
_MAX_MINUTES = 2 ** (8 * _EXPIRY_BYTES) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_MIN_BYTES = 1 + 1 + _EXPIRY_BYTES + NONCE_BYTES + MAC_BYTES


class LinkErrorKind(StrEnum):
    malformed = "malformed"
    bad_signature = "bad_signature"
    expired = "expired"


class LinkError(InputError):
    """A deep-link token that cannot be used; `kind` says why.

    For `expired` the signature was valid, so `token` holds what it said (the bot may then answer
    in the customer's locale); otherwise `token` is None.
    """

    def __init__(self, kind: LinkErrorKind, reason: str, token: LinkToken | None = None) -> None:
        super().__init__("telegram link token", reason)
        self.kind = kind
        self.token = token


@dataclass(frozen=True, slots=True)
class LinkToken:
    customer_id: int
    nonce: str
    """The nonce as 16 lower-case hex digits: the key in telegram_link_uses."""
    expires_at: datetime
    """Aware UTC, whole minutes."""


def make_token(customer_id: int, secret: bytes, expires_at: datetime, nonce: bytes) -> str:
    """The start parameter for `customer_id`, valid until `expires_at` (rounded down to the minute).

    `nonce` must be NONCE_BYTES random bytes (`secrets.token_bytes(NONCE_BYTES)`); it is a
    parameter so that this function stays pure.
    """
    return token_maker(secret, expires_at)(customer_id, nonce)


def token_maker(secret: bytes, expires_at: datetime) -> Callable[[int, bytes], str]:
    """make_token with the secret and the expiry fixed: (customer_id, nonce) -> token.

    For exports of many links: the key schedule and the expiry bytes are computed once.
    """
    if not secret:
        raise ValueError("the link secret is empty")
    minutes = _minutes(expires_at)
    if not 0 <= minutes <= _MAX_MINUTES:
        raise ValueError(f"expiry {expires_at.isoformat()} is out of range")
    expiry = minutes.to_bytes(_EXPIRY_BYTES, "big")
    keyed = hmac.new(secret, _MAC_LABEL, hashlib.sha256)
    version = bytes([VERSION])
    encode = base64.urlsafe_b64encode

    def make(customer_id: int, nonce: bytes) -> str:
        if not 1 <= customer_id <= MAX_CUSTOMER_ID:
            raise ValueError(f"customer id {customer_id} is outside 1..2**63-1")
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"the nonce must be {NONCE_BYTES} bytes, not {len(nonce)}")
        body = version + _varint(customer_id) + expiry + nonce
        mac = keyed.copy()
        mac.update(body)
        return encode(body + mac.digest()[:MAC_BYTES]).rstrip(b"=").decode("ascii")

    return make


def read_token(token: str, secret: bytes, now: datetime) -> LinkToken:
    """What a token says, once its signature is verified; LinkError when it cannot be used."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}")
    raw = _decode(token)
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise LinkError(LinkErrorKind.bad_signature, "the link's signature does not match")
    if body[0] != VERSION:  # signed, so only a future format could get here
        raise LinkError(LinkErrorKind.malformed, f"unknown link format {body[0]}")
    fixed = _EXPIRY_BYTES + NONCE_BYTES
    customer_id = _read_varint(body[1:-fixed])
    minutes = int.from_bytes(body[-fixed:-NONCE_BYTES], "big")
    parsed = LinkToken(
        customer_id=customer_id,
        nonce=body[-NONCE_BYTES:].hex(),
        expires_at=_EPOCH + timedelta(minutes=minutes),
    )
    if now >= parsed.expires_at:
        raise LinkError(
            LinkErrorKind.expired, f"the link expired at {parsed.expires_at.isoformat()}", parsed
        )
    return parsed


def secret_from_settings(settings: Settings) -> bytes:
    """BOOMERANG_TELEGRAM_LINK_SECRET, else a key derived from BOOMERANG_TELEGRAM_TOKEN.

    The derived key is HMAC-SHA256(bot token, fixed label): links stay valid as long as the bot
    token does, and the bot token itself never signs anything.
    """
    if settings.telegram_link_secret:
        return settings.telegram_link_secret.encode("utf-8")
    if settings.telegram_token:
        key = settings.telegram_token.encode("utf-8")
        return hmac.new(key, _SECRET_LABEL, hashlib.sha256).digest()
    raise ConfigError(
        "Telegram deep links need a signing key: set BOOMERANG_TELEGRAM_LINK_SECRET "
        "(or BOOMERANG_TELEGRAM_TOKEN, from which one is derived)"
    )


def expiry_after(now: datetime, days: int) -> datetime:
    """`now` + `days`, rounded down to the minute: the expiry a token will carry exactly."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}")
    return _EPOCH + timedelta(minutes=_minutes(now + timedelta(days=days)))


def _minutes(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}")
    return (at - _EPOCH) // timedelta(minutes=1)


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _MAC_LABEL + body, hashlib.sha256).digest()[:MAC_BYTES]


def _decode(token: str) -> bytes:
    def malformed(why: str) -> LinkError:
        return LinkError(LinkErrorKind.malformed, f"not a Boomerang link token ({why})")

    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise malformed("too long")
    if not _ALPHABET.fullmatch(token):
        raise malformed("characters outside A-Z a-z 0-9 _ -")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise malformed("not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise malformed("not canonical base64url")
    if len(raw) < _MIN_BYTES:
        raise malformed("too short")
    return raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes) -> int:
    value = 0
    for index, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index != len(data) - 1 or (byte == 0 and index > 0):
                break  # trailing bytes, or a non-minimal encoding
            if not 1 <= value <= MAX_CUSTOMER_ID:
                break
            return value
    raise LinkError(LinkErrorKind.malformed, "the link's customer id is not readable")
