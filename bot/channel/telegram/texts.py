"""What the bot says outside scripts (linking, help, opt-out), in Russian and English."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "linked": "Готово{name}! Теперь мы можем писать вам здесь. Чтобы отписаться — /stop.",
        "hello_linked": "Здравствуйте{name}! Мы на связи. Чтобы отписаться — /stop.",
        "share_phone": (
            "Здравствуйте! Это бот магазина «{company}». Чтобы мы вас узнали, поделитесь номером "
            "телефона кнопкой ниже."
        ),
        "link_dead": (
            "Эта ссылка уже не действует. Поделитесь номером телефона кнопкой ниже — мы найдём "
            "ваш профиль."
        ),
        "phone_unknown": (
            "Спасибо! Мы не нашли покупателя с этим номером. Менеджер посмотрит и при "
            "необходимости свяжется с вами."
        ),
        "not_own_phone": "Пожалуйста, поделитесь своим номером кнопкой ниже.",
        "help": (
            "Сейчас у нас нет к вам вопросов. Если нужна помощь — нажмите кнопку, и менеджер "
            "свяжется с вами. Отписаться — /stop."
        ),
        "call_me": "Связаться с менеджером",
        "manager_called": "Спасибо! Менеджер свяжется с вами в ближайшее время.",
        "stale": "Этот вопрос уже закрыт.",
        "share_button": "📱 Поделиться номером",
    },
    "en": {
        "linked": "Done{name}! We can now reach you here. To opt out: /stop.",
        "hello_linked": "Hello{name}! We are in touch. To opt out: /stop.",
        "share_phone": (
            "Hello! This is the {company} bot. So that we know who you are, please share your "
            "phone number with the button below."
        ),
        "link_dead": (
            "This link no longer works. Share your phone number with the button below and we "
            "will find your profile."
        ),
        "phone_unknown": (
            "Thank you! We found no customer with this number. A manager will have a look and "
            "get in touch if needed."
        ),
        "not_own_phone": "Please share your own number with the button below.",
        "help": (
            "We have no questions for you right now. If you need help, press the button and a "
            "manager will contact you. To opt out: /stop."
        ),
        "call_me": "Contact a manager",
        "manager_called": "Thank you! A manager will contact you shortly.",
        "stale": "This question is already closed.",
        "share_button": "📱 Share my number",
    },
}


def text(locale: str, key: str, **values: str) -> str:
    return TEXTS.get(locale, TEXTS["en"])[key].format(**values)


def locale_of(customer_locale: str | None, language_code: str | None, default: str) -> str:
    """The customer's locale, else the Telegram app's language, else the shop's default."""
    for candidate in (customer_locale, (language_code or "")[:2], default):
        if candidate in TEXTS:
            return candidate
    return "en"
