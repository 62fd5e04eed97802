"""A Telegram Bot API emulator: the real Bot API JSON over HTTP, the limits, simulated users.

No machine here reaches Telegram, so every Telegram test (and the benchmark) talks to this server
with real aiogram through ``TelegramAPIServer.from_base(api.base_url)``. It ships in the package so
users can test their own scripts the same way (see docs/testing-telegram.md).

In process::

    async with BotApiEmulator(token="123:ABC", username="boomerang_test_bot") as api:
        anna = api.user(1001, first_name="Анна")
        await api.start(anna, payload="link-token")
        ...  # point aiogram at api.base_url
        api.sent(1001)  # what the bot sent to Анна

As a separate process: ``python -m bot.testing.telegram --port 8081 --rate 30 --chat-interval 1``
(prints the base URL; simulated users are driven through the control API under ``/_emulator/``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.clock import Clock, SystemClock
from bot.testing.server import LocalServer

JSON = dict[str, Any]

# Methods that put a message into a chat; the limits apply to them.
SENDING_METHODS = frozenset({"sendmessage", "editmessagetext", "editmessagereplymarkup"})
# The update types delivered when allowed_updates is empty (Telegram's default set).
DEFAULT_UPDATE_TYPES = frozenset({"message", "edited_message", "callback_query", "my_chat_member"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
MAX_TEXT = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BAD_MARKUP = "Bad Request: can't parse reply keyboard markup JSON object"
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ApiError(Exception):
    """A Bot API error answer: HTTP status == error_code, the description, optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        answer: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            answer["parameters"] = self.parameters
        return answer


@dataclass
class SimUser:
    """A simulated Telegram user; their private chat with the bot has ``chat_id == id``."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    phone: str | None = None
    started: bool = False
    blocked: bool = False

    def as_user(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def as_chat(self) -> JSON:
        chat: JSON = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass
class SentMessage:
    """A message the bot sent, as it stands now (edits applied); ``edits`` keeps the history."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: JSON | None
    date: int
    parse_mode: str | None = None
    raw_text: str = ""
    entities: list[JSON] = field(default_factory=list)
    edit_date: int | None = None
    edits: list[JSON] = field(default_factory=list)
    deleted: bool = False

    def buttons(self) -> list[JSON]:
        """The inline buttons of the current keyboard, row by row, flattened."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [button for row in self.reply_markup["inline_keyboard"] for button in row]


@dataclass(frozen=True)
class Call:
    """One request the emulator answered."""

    method: str
    params: JSON
    status: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the webhook; ``status`` is None on a connection error."""

    update_id: int
    status: int | None
    error: str | None = None


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    user_id: int
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None


class Limiter:
    """Telegram's sending limits: ``rate`` messages per second for the bot (a sliding window)
    and ``chat_interval`` seconds between two messages to one chat. None disables a limit."""

    def __init__(self, rate: float | None, chat_interval: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        if chat_interval is not None and chat_interval < 0:
            raise ValueError("chat_interval must not be negative (or None for no limit)")
        self.rate = rate
        self.chat_interval = chat_interval
        # `count` messages in any `window` seconds: 30/s -> 30 in 1 s; 0.5/s -> 1 in 2 s.
        self._count = max(1, math.floor(rate)) if rate else 0
        self._window = self._count / rate if rate else 0.0
        self._recent: deque[float] = deque()
        self._last: dict[int, float] = {}

    def wait(self, chat_id: int, now: float) -> float:
        """Seconds until a message to ``chat_id`` would be allowed (0.0: allowed now)."""
        wait = 0.0
        if self.rate is not None:
            while self._recent and self._recent[0] <= now - self._window:
                self._recent.popleft()
            if len(self._recent) >= self._count:
                wait = self._recent[0] + self._window - now
        if self.chat_interval is not None and chat_id in self._last:
            wait = max(wait, self._last[chat_id] + self.chat_interval - now)
        return max(wait, 0.0)

    def record(self, chat_id: int, now: float) -> None:
        if self.rate is not None:
            self._recent.append(now)
        self._last[chat_id] = now


class _HtmlEntities(HTMLParser):
    """Telegram's HTML parse mode: the plain text and its entities (offsets in UTF-16 units)."""

    SIMPLE = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "code": "code",
        "pre": "pre",
        "tg-spoiler": "spoiler",
        "blockquote": "blockquote",
    }

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.text = ""
        self.entities: list[JSON] = []
        self._open: list[tuple[str, JSON]] = []

    def _units(self) -> int:
        return len(self.text.encode("utf-16-le")) // 2

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        lines = self.source.split("\n")
        index = sum(len(part) + 1 for part in lines[: line - 1]) + column
        return len(self.source[:index].encode())

    def _fail(self, what: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {what}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        entity: JSON
        if tag in self.SIMPLE:
            entity = {"type": self.SIMPLE[tag]}
            if tag == "blockquote" and "expandable" in values:
                entity = {"type": "expandable_blockquote"}
        elif tag == "span" and values.get("class") == "tg-spoiler":
            entity = {"type": "spoiler"}
        elif tag == "a" and values.get("href"):
            entity = {"type": "text_link", "url": values["href"]}
        elif tag == "tg-emoji" and values.get("emoji-id"):
            entity = {"type": "custom_emoji", "custom_emoji_id": values["emoji-id"]}
        else:
            raise self._fail(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        if tag == "code" and self._open and self._open[-1][0] == "pre":
            language = (values.get("class") or "").removeprefix("language-")
            if language:
                self._open[-1][1]["language"] = language
            entity = {"type": "_code_in_pre"}
        entity["offset"] = self._units()
        self._open.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            raise self._fail(
                f"Unexpected end tag at byte offset {self._byte_offset()}"
                if not self._open
                else f'Can\'t find end tag corresponding to start tag "{self._open[-1][0]}"'
            )
        _, entity = self._open.pop()
        length = self._units() - entity["offset"]
        if entity["type"] != "_code_in_pre" and length > 0:
            entity["length"] = length
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text += data

    def parse(self) -> tuple[str, list[JSON]]:
        self.feed(self.source)
        self.close()
        if self._open:
            raise self._fail(
                f'Can\'t find end tag corresponding to start tag "{self._open[-1][0]}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return self.text, self.entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[JSON]]:
    """The text as Telegram stores it and its entities. HTML is parsed (tags checked like
    Telegram does); Markdown/MarkdownV2 are accepted and kept verbatim (no entities)."""
    if parse_mode is None or parse_mode == "":
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return _HtmlEntities(text).parse()
    if mode in ("markdown", "markdownv2"):
        return text, []
    raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")


def _command_entities(text: str) -> list[JSON]:
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0] if text.strip() else text
    return [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _json_value(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, error) from None
    return value


def _int_param(params: JSON, name: str, *, error: str | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, error or f"Bad Request: invalid {name} specified") from None


def _str_param(params: JSON, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _check_button(button: Any, inline: bool) -> JSON:
    if inline:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text is empty")
        kinds = [
            k
            for k in (
                "callback_data",
                "url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "web_app",
                "login_url",
                "pay",
                "copy_text",
                "callback_game",
                "switch_inline_query_chosen_chat",
            )
            if k in button
        ]
        if len(kinds) != 1:
            raise ApiError(
                400,
                "Bad Request: can't parse inline keyboard button: InlineKeyboardButton must "
                "have exactly one optional field",
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return button
    if isinstance(button, str):
        return {"text": button}
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(400, "Bad Request: can't parse keyboard button: Text is empty")
    return button


def parse_reply_markup(raw: Any, *, inline_only: bool = False) -> JSON | None:
    """Validate a reply_markup (a JSON string from a form, or an object) like Telegram does."""
    if raw is None or raw == "":
        return None
    markup = _json_value(raw, BAD_MARKUP)
    if not isinstance(markup, dict):
        raise ApiError(400, BAD_MARKUP)
    for key, inline in (("inline_keyboard", True), ("keyboard", False)):
        if key in markup:
            rows = markup[key]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(
                    400,
                    f'Bad Request: field "{key}" of the '
                    f"{'InlineKeyboardMarkup' if inline else 'ReplyKeyboardMarkup'} "
                    "should be an Array of Arrays",
                )
            if inline_only and not inline:
                raise ApiError(400, "Bad Request: inline keyboard expected")
            checked = dict(markup)
            checked[key] = [[_check_button(b, inline) for b in row] for row in rows]
            return checked
    if inline_only:
        raise ApiError(400, "Bad Request: inline keyboard expected")
    if _truthy(markup.get("remove_keyboard")) or _truthy(markup.get("force_reply")):
        return markup
    raise ApiError(400, BAD_MARKUP)


def _update_type(update: JSON) -> str:
    return next(k for k in update if k != "update_id")


Handler = Callable[[JSON], Awaitable[Any]]


class BotApiEmulator(LocalServer):
    """An aiohttp server speaking the Bot API for one bot, with simulated users.

    ``rate``: messages per second for the whole bot; ``chat_interval``: seconds between two
    messages to one chat; None disables either. An excess call gets 429 with retry_after and
    has no effect. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        username: str = "boomerang_test_bot",
        *,
        first_name: str = "Boomerang",
        rate: float | None = 30.0,
        chat_interval: float | None = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        webhook_attempts: int = 4,
        webhook_backoff: float = 0.05,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.username = username
        self.host = host
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.limiter = Limiter(rate, chat_interval)
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff = webhook_backoff
        self.webhook_timeout = webhook_timeout
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 123456
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
        }
        # Inspection.
        self.users: dict[int, SimUser] = {}
        self.calls: list[Call] = []
        self.too_many_requests = 0
        self.callback_answers: list[CallbackAnswer] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.updates: dict[int, JSON] = {}  # every update ever created, by id
        self.commands: dict[str, list[JSON]] = {}  # setMyCommands by "<scope>|<language>"
        self.chat_actions: list[tuple[int, str]] = []
        # Webhook state (getWebhookInfo).
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.allowed_updates: list[str] | None = None
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None

        self._sent: dict[int, list[SentMessage]] = {}
        self._by_id: dict[tuple[int, int], SentMessage] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: dict[str, JSON] = {}
        self._queue: list[JSON] = []  # getUpdates: kept until an offset confirms them
        self._again: list[JSON] = []  # deliver_again() in polling mode: returned once
        self._arrived = asyncio.Event()
        self._poll_generation = 0
        self._faults: dict[int, deque[_Fault]] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._webhook_slots: asyncio.Semaphore | None = None
        self._closing = False
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getchat": self._get_chat,
            "close": self._close_method,
            "logout": self._close_method,
        }
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._add_control_routes()
        self.app.router.add_route("*", "/{tail:.*}", self._not_found)

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What to give ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    async def start(self, user: SimUser | None = None, payload: str | None = None) -> Any:
        """Without arguments: start the server. With a user: the user presses Start."""
        if user is not None:
            return await self.user_start(user, payload)
        if self.serving:
            return None
        self._closing = False
        await self.start_serving(ClientSession(timeout=ClientTimeout(total=self.webhook_timeout)))
        return None

    async def close(self) -> None:
        self._closing = True
        self._arrived.set()  # long polls return at once
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self.stop_serving()

    # ------------------------------------------------------------------ simulated users

    def user(
        self,
        user_id: int,
        first_name: str = "Анна",
        language_code: str | None = "ru",
        username: str | None = None,
        phone: str | None = None,
        last_name: str | None = None,
    ) -> SimUser:
        """A simulated user (created once; later calls return the same one). They have not
        started the bot yet: sending to them gets 403 until they do."""
        if user_id not in self.users:
            self.users[user_id] = SimUser(
                id=user_id,
                first_name=first_name,
                last_name=last_name,
                username=username,
                language_code=language_code,
                phone=phone,
            )
        return self.users[user_id]

    async def user_start(self, user: SimUser, payload: str | None = None) -> JSON:
        """The user presses Start (``/start`` or ``/start <payload>`` from a deep link).
        A user who blocked the bot unblocks it this way (a my_chat_member update first)."""
        if user.blocked:
            self.unblock(user)
        user.started = True
        text = "/start" if payload is None else f"/start {payload}"
        return self._user_message(user, {"text": text, "entities": _command_entities(text)})

    async def say(self, user: SimUser, text: str) -> JSON:
        """The user sends a text message; returns the message."""
        if not text:
            raise ValueError("a Telegram message cannot be empty")
        self._check_can_write(user)
        user.started = True
        message: JSON = {"text": text}
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        return self._user_message(user, message)

    async def share_contact(self, user: SimUser, phone: str | None = None) -> JSON:
        """The user shares their own contact (the request_contact button). Telegram clients
        often send the number without "+": pass it exactly as you want the bot to get it."""
        number = phone or user.phone
        if not number:
            raise ValueError("no phone number to share")
        self._check_can_write(user)
        user.started = True
        contact: JSON = {"phone_number": number, "first_name": user.first_name}
        if user.last_name:
            contact["last_name"] = user.last_name
        contact["user_id"] = user.id
        return self._user_message(user, {"contact": contact})

    async def press(self, user: SimUser, message_id: int, data: str) -> JSON:
        """The user presses the inline button with ``callback_data == data`` on a message the
        bot sent them; raises if that message or button does not exist (now). Returns the
        callback_query; its id is what answerCallbackQuery expects."""
        self._check_can_write(user)
        sent = self._by_id.get((user.id, message_id))
        if sent is None or sent.deleted:
            raise LookupError(f"the bot sent no message {message_id} to chat {user.id}")
        if not any(b.get("callback_data") == data for b in sent.buttons()):
            raise LookupError(
                f"message {message_id} has no inline button with callback_data {data!r}; "
                f"it has {[b.get('callback_data') for b in sent.buttons()]}"
            )
        query: JSON = {
            "id": str(self.bot_id * 1000 + next(self._query_ids)),
            "from": user.as_user(),
            "message": self._message_json(sent),
            "chat_instance": str(-(user.id * 7919 + self.bot_id)),
            "data": data,
        }
        self._open_queries[query["id"]] = query
        self._emit({"callback_query": query})
        return query

    async def block(self, user: SimUser) -> JSON:
        """The user blocks the bot: sends get 403 and a my_chat_member update says ``kicked``."""
        user.blocked = True
        return self._member_update(user, "member", "kicked")

    def unblock(self, user: SimUser) -> JSON:
        """The user unblocks the bot (a my_chat_member update says ``member`` again)."""
        user.blocked = False
        user.started = True
        return self._member_update(user, "kicked", "member")

    def fail_next(
        self, chat_id: int, status: int, description: str, *, retry_after: int | None = None
    ) -> None:
        """The next call for ``chat_id`` (any method with that chat_id) fails with this error
        and has no effect. Queue several to fail several calls."""
        self._faults.setdefault(chat_id, deque()).append(_Fault(status, description, retry_after))

    def _check_can_write(self, user: SimUser) -> None:
        if user.blocked:
            raise RuntimeError(f"user {user.id} blocked the bot; unblock() or start() first")

    def _user_message(self, user: SimUser, content: JSON) -> JSON:
        message: JSON = {
            "message_id": self._next_message_id(user.id),
            "from": user.as_user(),
            "chat": user.as_chat(),
            "date": self._now(),
            **content,
        }
        self._emit({"message": message})
        return message

    def _member_update(self, user: SimUser, old: str, new: str) -> JSON:
        def member(status: str) -> JSON:
            value: JSON = {"status": status, "user": dict(self.bot_user)}
            if status == "kicked":
                value["until_date"] = 0
            return value

        change: JSON = {
            "chat": user.as_chat(),
            "from": user.as_user(),
            "date": self._now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        self._emit({"my_chat_member": change})
        return change

    # ------------------------------------------------------------------ inspection

    def sent(self, chat_id: int) -> list[SentMessage]:
        """Every message the bot sent to the chat, oldest first (deleted ones flagged)."""
        return list(self._sent.get(chat_id, []))

    def last_sent(self, chat_id: int) -> SentMessage:
        messages = [m for m in self._sent.get(chat_id, []) if not m.deleted]
        if not messages:
            raise LookupError(f"the bot sent nothing to chat {chat_id}")
        return messages[-1]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def pending_update_count(self) -> int:
        if self.webhook_url:
            return len(self._deliveries)
        return len(self._queue)

    async def deliver_again(self, update_id: int) -> None:
        """Send an update once more, as Telegram does when it did not see the answer: to the
        webhook, or (polling) in the next getUpdates answer even if already confirmed."""
        update = self.updates[update_id]
        if self.webhook_url:
            self._spawn_delivery(update)
        else:
            self._again.append(update)
            self._arrived.set()

    async def idle(self) -> None:
        """Wait until every webhook delivery in flight (retries included) is finished."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    # ------------------------------------------------------------------ update delivery

    def _emit(self, update_content: JSON) -> JSON:
        update: JSON = {"update_id": next(self._update_ids), **update_content}
        self.updates[update["update_id"]] = update
        if self.webhook_url:
            if self._wanted(update):
                self._spawn_delivery(update)
        else:
            self._queue.append(update)
            self._arrived.set()
        return update

    def _wanted(self, update: JSON) -> bool:
        kinds = set(self.allowed_updates) if self.allowed_updates else DEFAULT_UPDATE_TYPES
        return _update_type(update) in kinds

    def _spawn_delivery(self, update: JSON) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(update, self.webhook_url))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, update: JSON, url: str) -> None:
        if self._webhook_slots is None:
            self._webhook_slots = asyncio.Semaphore(self.webhook_max_connections)
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        body = json.dumps(update, ensure_ascii=False).encode()
        async with self._webhook_slots:
            for attempt in range(self.webhook_attempts):
                if attempt:
                    await asyncio.sleep(self.webhook_backoff * 2 ** (attempt - 1))
                status: int | None = None
                error: str | None = None
                try:
                    assert self._client is not None, "the emulator is not started"
                    async with self._client.post(url, data=body, headers=headers) as response:
                        status = response.status
                        await response.read()
                except (ClientError, TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                self.webhook_deliveries.append(WebhookDelivery(update["update_id"], status, error))
                if status is not None and 200 <= status < 300:
                    return
                self.last_error_date = self._now()
                self.last_error_message = (
                    f"Wrong response from the webhook: {status}" if status else error
                )

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: JSON = {}
        try:
            params = await self._read_params(request)
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            self._take_fault(params)
            result = await handler(params)
            body: JSON = {"ok": True, "result": result}
            if method.lower() == "setwebhook":
                body["description"] = (
                    "Webhook was set" if self.webhook_url else ("Webhook was deleted")
                )
            elif method.lower() == "deletewebhook":
                body["description"] = "Webhook was deleted"
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
            if status == 429:
                self.too_many_requests += 1
        self.calls.append(Call(method, params, status, time.monotonic()))
        return web.json_response(body, status=status, dumps=_dumps)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _read_params(self, request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else getattr(value, "filename", "")
        return params

    def _take_fault(self, params: JSON) -> None:
        chat_id = params.get("chat_id")
        if chat_id is None:
            return
        try:
            faults = self._faults.get(int(chat_id))
        except (TypeError, ValueError):
            return
        if faults:
            fault = faults.popleft()
            parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
            raise ApiError(fault.status, fault.description, parameters)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _known_chat(self, params: JSON) -> SimUser:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            found = [u for u in self.users.values() if u.username == raw[1:]]
            if not found:
                raise ApiError(400, "Bad Request: chat not found")
            return found[0]
        chat_id = _int_param(params, "chat_id", error="Bad Request: chat not found")
        if chat_id is None or chat_id not in self.users:
            raise ApiError(400, "Bad Request: chat not found")
        return self.users[chat_id]

    def _writable_chat(self, params: JSON) -> SimUser:
        user = self._known_chat(params)
        if user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return user

    def _check_limits(self, chat_id: int) -> float:
        now = time.monotonic()
        wait = self.limiter.wait(chat_id, now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        return now

    def _message_json(self, sent: SentMessage) -> JSON:
        user = self.users[sent.chat_id]
        message: JSON = {
            "message_id": sent.message_id,
            "from": dict(self.bot_user),
            "chat": user.as_chat(),
            "date": sent.date,
        }
        if sent.edit_date is not None:
            message["edit_date"] = sent.edit_date
        message["text"] = sent.text
        if sent.entities:
            message["entities"] = sent.entities
        # Telegram echoes only inline keyboards in the Message.
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message

    def _text(self, params: JSON) -> tuple[str, str, list[JSON], str | None]:
        raw = _str_param(params, "text") or ""
        parse_mode = _str_param(params, "parse_mode") or None
        text, entities = parse_text(raw, parse_mode)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return raw, text, entities, parse_mode

    def _message_to_edit(self, params: JSON, user: SimUser, what: str) -> SentMessage:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not emulated")
        message_id = _int_param(params, "message_id")
        if message_id is None:
            raise ApiError(400, f"Bad Request: message to {what} not found")
        sent = self._by_id.get((user.id, message_id))
        if sent is None or sent.deleted:
            raise ApiError(400, f"Bad Request: message to {what} not found")
        return sent

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _send_message(self, params: JSON) -> JSON:
        user = self._writable_chat(params)
        raw, text, entities, parse_mode = self._text(params)
        markup = parse_reply_markup(params.get("reply_markup"))
        self.limiter.record(user.id, self._check_limits(user.id))
        sent = SentMessage(
            message_id=self._next_message_id(user.id),
            chat_id=user.id,
            text=text,
            reply_markup=markup,
            date=self._now(),
            parse_mode=parse_mode,
            raw_text=raw,
            entities=entities,
        )
        self._sent.setdefault(user.id, []).append(sent)
        self._by_id[(user.id, sent.message_id)] = sent
        return self._message_json(sent)

    async def _edit_message_text(self, params: JSON) -> JSON:
        user = self._writable_chat(params)
        sent = self._message_to_edit(params, user, "edit")
        raw, text, entities, parse_mode = self._text(params)
        markup = parse_reply_markup(params.get("reply_markup"), inline_only=True)
        if text == sent.text and entities == sent.entities and markup == sent.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self.limiter.record(user.id, self._check_limits(user.id))
        sent.text, sent.raw_text, sent.entities, sent.parse_mode = text, raw, entities, parse_mode
        sent.reply_markup = markup
        return self._edited(sent, "editMessageText")

    async def _edit_message_reply_markup(self, params: JSON) -> JSON:
        user = self._writable_chat(params)
        sent = self._message_to_edit(params, user, "edit")
        markup = parse_reply_markup(params.get("reply_markup"), inline_only=True)
        if markup == sent.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self.limiter.record(user.id, self._check_limits(user.id))
        sent.reply_markup = markup
        return self._edited(sent, "editMessageReplyMarkup")

    def _edited(self, sent: SentMessage, method: str) -> JSON:
        sent.edit_date = self._now()
        sent.edits.append(
            {
                "method": method,
                "text": sent.text,
                "reply_markup": sent.reply_markup,
                "edit_date": sent.edit_date,
            }
        )
        return self._message_json(sent)

    async def _delete_message(self, params: JSON) -> bool:
        user = self._known_chat(params)
        sent = self._message_to_edit(params, user, "delete")
        sent.deleted = True
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = _str_param(params, "callback_query_id") or ""
        query = self._open_queries.pop(query_id, None)
        if query is None:
            raise ApiError(400, QUERY_TOO_OLD)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                user_id=query["from"]["id"],
                data=query.get("data"),
                text=_str_param(params, "text"),
                show_alert=_truthy(params.get("show_alert")),
                url=_str_param(params, "url"),
                cache_time=_int_param(params, "cache_time"),
            )
        )
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        user = self._writable_chat(params)
        action = _str_param(params, "action") or ""
        if action not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((user.id, action))
        return True

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = _int_param(params, "offset") or 0
        limit = min(max(_int_param(params, "limit") or 100, 1), 100)
        timeout = max(_int_param(params, "timeout") or 0, 0)
        allowed = params.get("allowed_updates")
        if allowed is not None and allowed != "":
            kinds = _json_value(allowed, "Bad Request: can't parse allowed_updates")
            if isinstance(kinds, list):
                self.allowed_updates = [str(k) for k in kinds] or None
        self._poll_generation += 1
        generation = self._poll_generation
        self._arrived.set()  # an older long poll ends with 409, as on Telegram
        self._arrived = asyncio.Event()
        self._confirm(offset)
        if not self._ready() and timeout > 0 and not self._closing:
            arrived = self._arrived
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), timeout)
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
        again, self._again = self._again, []
        return (again + self._queue)[:limit]

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._queue = self._queue[offset:]
        elif offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        self._queue = [u for u in self._queue if self._wanted(u)]

    def _ready(self) -> bool:
        return bool(self._again or self._queue)

    async def _set_webhook(self, params: JSON) -> bool:
        url = _str_param(params, "url") or ""
        secret = _str_param(params, "secret_token") or None
        if url and not url.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        if secret is not None and not SECRET_RE.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if _truthy(params.get("drop_pending_updates")):
            self._queue.clear()
        allowed = params.get("allowed_updates")
        if allowed is not None and allowed != "":
            kinds = _json_value(allowed, "Bad Request: can't parse allowed_updates")
            if isinstance(kinds, list):
                self.allowed_updates = [str(k) for k in kinds] or None
        self.webhook_max_connections = _int_param(params, "max_connections") or 40
        self._webhook_slots = None
        self.webhook_url = url
        self.webhook_secret = secret if url else None
        self._arrived.set()
        if url:
            pending, self._queue = self._queue, []
            for update in pending:  # updates waiting for getUpdates now go to the webhook
                if self._wanted(update):
                    self._spawn_delivery(update)
        return True

    async def _delete_webhook(self, params: JSON) -> bool:
        self.webhook_url = ""
        self.webhook_secret = None
        if _truthy(params.get("drop_pending_updates")):
            self._queue.clear()
        return True

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_update_count,
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self.allowed_updates:
                info["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message or ""
        return info

    def _commands_key(self, params: JSON) -> str:
        scope = _json_value(params.get("scope") or {"type": "default"}, "Bad Request: bad scope")
        scope_type = scope.get("type", "default") if isinstance(scope, dict) else "default"
        return f"{scope_type}|{_str_param(params, 'language_code') or ''}"

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = _json_value(params.get("commands"), "Bad Request: can't parse commands JSON")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be an Array of BotCommand")
        for command in commands:
            if (
                not isinstance(command, dict)
                or not COMMAND_RE.match(str(command.get("command", "")))
                or not 1 <= len(str(command.get("description", ""))) <= 256
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: JSON) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _get_chat(self, params: JSON) -> JSON:
        user = self._known_chat(params)
        return {
            **user.as_chat(),
            "accent_color_id": user.id % 7,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    async def _close_method(self, params: JSON) -> bool:
        return True

    # ------------------------------------------------------------------ control API

    def _add_control_routes(self) -> None:
        router = self.app.router
        router.add_post("/_emulator/users/{user_id}/{action}", self._control_action)
        router.add_get("/_emulator/sent/{chat_id}", self._control_sent)
        router.add_get("/_emulator/stats", self._control_stats)

    async def _control_action(self, request: web.Request) -> web.Response:
        """POST /_emulator/users/<id>/<start|say|press|contact|block|unblock> with a JSON
        body (first_name, language_code, username, phone, payload, text, message_id, data)."""
        body: JSON = {}
        if request.can_read_body:
            loaded = await request.json()
            body = loaded if isinstance(loaded, dict) else {}
        try:
            user_id = int(request.match_info["user_id"])
        except ValueError:
            raise web.HTTPBadRequest(text="user id must be an integer") from None
        user = self.user(
            user_id,
            first_name=str(body.get("first_name", "Анна")),
            language_code=body.get("language_code", "ru"),
            username=body.get("username"),
            phone=body.get("phone"),
        )
        action = request.match_info["action"]
        result: Any
        try:
            if action == "start":
                result = await self.user_start(user, body.get("payload"))
            elif action == "say":
                result = await self.say(user, str(body.get("text", "")))
            elif action == "press":
                result = await self.press(user, int(body["message_id"]), str(body["data"]))
            elif action == "contact":
                result = await self.share_contact(user, body.get("phone"))
            elif action == "block":
                result = await self.block(user)
            elif action == "unblock":
                result = self.unblock(user)
            else:
                raise web.HTTPNotFound(text=f"unknown action {action!r}")
        except (LookupError, ValueError, RuntimeError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    async def _control_sent(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        messages = [
            {
                "message_id": m.message_id,
                "text": m.text,
                "reply_markup": m.reply_markup,
                "date": m.date,
                "edits": m.edits,
                "deleted": m.deleted,
            }
            for m in self.sent(chat_id)
        ]
        return web.json_response({"ok": True, "result": messages}, dumps=_dumps)

    async def _control_stats(self, request: web.Request) -> web.Response:
        by_method: dict[str, int] = {}
        for call in self.calls:
            by_method[call.method] = by_method.get(call.method, 0) + 1
        stats = {
            "calls": len(self.calls),
            "by_method": by_method,
            "too_many_requests": self.too_many_requests,
            "messages_sent": sum(len(v) for v in self._sent.values()),
            "updates": len(self.updates),
            "pending_update_count": self.pending_update_count,
            "webhook_deliveries": len(self.webhook_deliveries),
        }
        return web.json_response({"ok": True, "result": stats})


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _limit(value: str) -> float | None:
    return None if value.lower() in ("none", "off", "0") else float(value)


async def _serve(args: argparse.Namespace) -> None:
    api = BotApiEmulator(
        token=args.token,
        username=args.username,
        rate=args.rate,
        chat_interval=args.chat_interval,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with api:
        sys.stdout.write(f"{api.base_url}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.testing.telegram", description="A Telegram Bot API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--username", default="boomerang_test_bot")
    parser.add_argument("--rate", type=_limit, default=30.0, help="messages/s per bot, or none")
    parser.add_argument(
        "--chat-interval", type=_limit, default=1.0, help="seconds between messages to a chat"
    )
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
