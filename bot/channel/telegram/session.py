"""aiogram's HTTP session posting JSON bodies: the configurable seam aiogram offers for transport.

aiogram's `AiohttpSession` builds a multipart form for every request: each field through
`prepare_value` (a keyboard is dumped from its pydantic model, walked and JSON-encoded), then
aiohttp's form encoder. `JsonSession` posts `application/json` instead (the Bot API accepts both),
and a reply_markup given as `Prepared` -- a Bot API JSON dict the caller already holds, e.g. the
rendered keyboard -- goes into the body as it is, never validated into pydantic models and dumped
back. Scalars are sent as the same strings the form had (`"1101"`, `"true"`), so the server reads
the same parameters either way. Requests carrying files still go as aiogram's multipart form.

Answers are checked by aiogram (`check_response`: the same exceptions, `TelegramRetryAfter` with
its `retry_after`). A method marked `lean` (see `lean_send_message`) gets only the `message_id` of
the answer: the sent message is not validated into a full `Message` (chat, sender, the keyboard
again), which nobody reads on the sending path.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

JSON_HEADERS = {"Content-Type": "application/json"}


class Prepared(dict[str, Any]):
    """A Bot API JSON object (a reply_markup) sent as it is: no pydantic round trip."""


class LeanSendMessage(SendMessage):
    """sendMessage whose answer is read for its `message_id` only (an int, not a `Message`)."""


def lean_send_message(
    chat_id: int, text: str, reply_markup: dict[str, Any] | None
) -> LeanSendMessage:
    """A sendMessage built without validation: `reply_markup` (Bot API JSON) rides as `Prepared`.
    `await bot(method)` with a `JsonSession` returns the new message's id. A copy of one template
    with three fields replaced: `model_construct` would resolve the other defaults each time."""
    markup = Prepared(reply_markup) if reply_markup is not None else None
    return _TEMPLATE.model_copy(update={"chat_id": chat_id, "text": text, "reply_markup": markup})


_TEMPLATE = LeanSendMessage.model_construct(chat_id=0, text="")


class JsonSession(AiohttpSession):
    """`AiohttpSession` posting JSON; see the module's docstring."""

    def build_json(self, bot: Bot, method: TelegramMethod[Any]) -> str | None:
        """The request body as JSON, or None when the request carries files (multipart)."""
        if isinstance(method, LeanSendMessage):  # the campaign's hot path: three known fields
            lean: dict[str, Any] = {"chat_id": method.chat_id, "text": method.text}
            if method.reply_markup is not None:
                lean["reply_markup"] = method.reply_markup
            return self.json_dumps(lean)
        files: dict[str, InputFile] = {}
        body: dict[str, Any] = {}
        for key in type(method).model_fields:
            value = getattr(method, key, None)
            if value is None:
                continue
            if isinstance(value, Prepared):
                body[key] = value
                continue
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is None or prepared == "" or prepared == [] or prepared == {}:
                continue
            if not isinstance(prepared, (str, dict, list)):
                prepared = self.json_dumps(prepared)  # 1101 -> "1101", as in the form
            body[key] = prepared
        if files:
            return None
        return self.json_dumps(body)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 -- aiogram's signature
    ) -> TelegramType:
        data = self.build_json(bot, method)
        if data is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=data.encode(),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                raw = await response.text()
                status = response.status
        except TimeoutError as error:
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:
            message = f"{type(error).__name__}: {error}"
            raise TelegramNetworkError(method=method, message=message) from error
        if isinstance(method, LeanSendMessage) and HTTPStatus.OK <= status <= HTTPStatus.IM_USED:
            answer = _loads(raw)
            if isinstance(answer, dict) and answer.get("ok"):
                result = answer.get("result")
                if isinstance(result, dict) and isinstance(result.get("message_id"), int):
                    return cast(TelegramType, result["message_id"])
        checked = self.check_response(bot=bot, method=method, status_code=status, content=raw)
        return cast(TelegramType, checked.result)


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
