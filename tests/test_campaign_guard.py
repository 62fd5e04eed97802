"""The compliance guard at the moment of sending: opt-out, 38-FZ, consent, caps, local windows."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.campaign.guard import (
    MANAGER_TASK,
    ConsentEntry,
    ContactRecord,
    Defer,
    GuardPolicy,
    Reason,
    Recipient,
    Reroute,
    Send,
    SendRequest,
    Skip,
    consents_in_force,
    decide,
)
from bot.campaign.window import SendingWindow

MOSCOW = ZoneInfo("Europe/Moscow")
POLICY = GuardPolicy()
WINDOW = SendingWindow(start=time(10), end=time(20))
# Tuesday 2026-11-17 12:00 in Moscow (09:00 UTC): inside every window used here.
NOON = datetime(2026, 11, 17, 12, 0, tzinfo=MOSCOW)
RU_PHONE = "+79123456789"
KZ_PHONE = "+77012345678"
US_PHONE = "+12125551234"


def consent(
    channel: str, purpose: str, granted: bool = True
) -> dict[tuple[str, str], ConsentEntry]:
    at = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    return {(channel, purpose): ConsentEntry(granted, at, "checkout form v3")}


def anna(**changes: object) -> Recipient:
    """A Moscow customer with a Russian mobile and a Telegram chat, no ledger entries."""
    base = Recipient(customer_id=1, phone=RU_PHONE, telegram_chat_id=5001)
    return replace(base, **changes)  # type: ignore[arg-type]


def request(**changes: object) -> SendRequest:
    base = SendRequest(
        campaign_id="winback-90",
        purpose="survey",
        channel="telegram",
        channels_in_order=("telegram", "voice"),
        window=WINDOW,
        campaign_time_zone="Europe/Moscow",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- the happy path ---


def test_a_survey_by_telegram_inside_the_window_is_sent_with_the_local_time() -> None:
    decision = decide(anna(), request(), POLICY, NOON.astimezone(UTC))
    assert decision == Send("telegram", NOON)
    assert isinstance(decision, Send) and decision.local_time.utcoffset() == timedelta(hours=3)


# --- opt-out and flags come first ---


def test_an_opted_out_customer_is_skipped_whatever_the_consent() -> None:
    customer = anna(
        opted_out_at=datetime(2026, 11, 1, tzinfo=UTC), consents=consent("telegram", "survey")
    )
    decision = decide(customer, request(), POLICY, NOON)
    assert isinstance(decision, Skip) and decision.reason is Reason.OPTED_OUT


def test_opt_out_is_checked_before_the_38_fz_reroute() -> None:
    customer = anna(opted_out_at=datetime(2026, 11, 1, tzinfo=UTC))
    decision = decide(customer, request(purpose="marketing", channel="voice"), POLICY, NOON)
    assert isinstance(decision, Skip) and decision.reason is Reason.OPTED_OUT


def test_a_flagged_customer_is_skipped() -> None:
    decision = decide(anna(flagged="complaint 2026-10-02"), request(), POLICY, NOON)
    assert decision == Skip(Reason.FLAGGED, "flagged: complaint 2026-10-02")


# --- 38-FZ art. 18: no robot marketing calls to +7 numbers ---


def test_robot_marketing_to_a_russian_number_goes_by_telegram_when_consented() -> None:
    customer = anna(consents=consent("telegram", "marketing"))
    decision = decide(customer, request(purpose="marketing", channel="voice"), POLICY, NOON)
    assert isinstance(decision, Reroute)
    assert decision.to == "telegram" and decision.reason is Reason.ROBOT_MARKETING_BANNED
    assert "38-FZ" in decision.text


@pytest.mark.parametrize(
    ("changes", "channels"),
    [
        ({"consents": consent("telegram", "marketing")}, ("voice",)),  # no Telegram message
        ({"telegram_chat_id": None, "consents": consent("telegram", "marketing")}, None),
        ({}, None),  # no Telegram marketing consent: the default for marketing is no
        ({"consents": consent("telegram", "marketing", granted=False)}, None),
    ],
    ids=["campaign-has-no-telegram", "no-chat", "no-consent", "consent-withdrawn"],
)
def test_robot_marketing_to_a_russian_number_becomes_a_manager_task(
    changes: dict[str, object], channels: tuple[str, ...] | None
) -> None:
    req = request(purpose="marketing", channel="voice")
    if channels is not None:
        req = replace(req, channels_in_order=channels)  # type: ignore[arg-type]
    decision = decide(anna(**changes), req, POLICY, NOON)
    assert isinstance(decision, Reroute)
    assert decision.to == MANAGER_TASK and decision.reason is Reason.ROBOT_MARKETING_BANNED


def test_kazakh_numbers_share_plus_7_and_are_treated_alike() -> None:
    customer = anna(phone=KZ_PHONE, consents=consent("voice", "marketing"))
    decision = decide(customer, request(purpose="marketing", channel="voice"), POLICY, NOON)
    assert isinstance(decision, Reroute) and decision.to == MANAGER_TASK


def test_a_malformed_plus_7_number_fails_closed() -> None:
    customer = anna(phone="+7 12", consents=consent("voice", "marketing"))
    decision = decide(customer, request(purpose="marketing", channel="voice"), POLICY, NOON)
    assert isinstance(decision, Reroute)


def test_a_robot_service_call_to_a_russian_number_is_allowed() -> None:
    decision = decide(anna(), request(purpose="service", channel="voice"), POLICY, NOON)
    assert decision == Send("voice", NOON)


def test_a_robot_marketing_call_to_a_us_number_is_allowed_with_consent() -> None:
    new_york = ZoneInfo("America/New_York")
    at = datetime(2026, 11, 17, 12, 0, tzinfo=new_york)  # the zone comes from the +1 212 number
    customer = anna(phone=US_PHONE, consents=consent("voice", "marketing"))
    decision = decide(customer, request(purpose="marketing", channel="voice"), POLICY, at)
    assert decision == Send("voice", at)
    without = decide(
        anna(phone=US_PHONE), request(purpose="marketing", channel="voice"), POLICY, at
    )
    assert isinstance(without, Skip) and without.reason is Reason.NO_CONSENT


# --- an address for the channel ---


def test_no_telegram_chat_or_no_phone_skips_the_channel() -> None:
    no_chat = decide(anna(telegram_chat_id=None), request(), POLICY, NOON)
    assert isinstance(no_chat, Skip) and no_chat.reason is Reason.NO_ADDRESS
    no_phone = decide(anna(phone=None), request(channel="voice"), POLICY, NOON)
    assert isinstance(no_phone, Skip) and no_phone.reason is Reason.NO_ADDRESS


# --- the consent ledger and the defaults per purpose ---


def test_the_newest_ledger_entry_wins_granted_then_withdrawn() -> None:
    granted = ConsentEntry(True, datetime(2026, 3, 1, tzinfo=UTC), "checkout form v3")
    withdrawn = ConsentEntry(False, datetime(2026, 9, 5, tzinfo=UTC), "telegram /stop")
    regranted = ConsentEntry(True, datetime(2026, 10, 1, tzinfo=UTC), "account settings")
    ledger = [("telegram", "marketing", withdrawn), ("telegram", "marketing", granted)]
    in_force = consents_in_force(ledger)  # out of order on purpose: time decides, not position
    assert in_force == {("telegram", "marketing"): withdrawn}
    marketing = request(purpose="marketing")
    decision = decide(anna(consents=in_force), marketing, POLICY, NOON)
    assert isinstance(decision, Skip) and decision.reason is Reason.CONSENT_WITHDRAWN
    assert "telegram /stop" in decision.text
    again = consents_in_force([*ledger, ("telegram", "marketing", regranted)])
    assert decide(anna(consents=again), marketing, POLICY, NOON) == Send("telegram", NOON)


def test_defaults_per_purpose_apply_only_without_a_ledger_entry() -> None:
    assert decide(anna(), request(purpose="survey"), POLICY, NOON) == Send("telegram", NOON)
    assert decide(anna(), request(purpose="service"), POLICY, NOON) == Send("telegram", NOON)
    marketing = decide(anna(), request(purpose="marketing"), POLICY, NOON)
    assert isinstance(marketing, Skip) and marketing.reason is Reason.NO_CONSENT
    # a withdrawal beats the default
    refused = decide(
        anna(consents=consent("telegram", "survey", granted=False)), request(), POLICY, NOON
    )
    assert isinstance(refused, Skip) and refused.reason is Reason.CONSENT_WITHDRAWN
    # the defaults are configurable
    strict = GuardPolicy(consent_defaults={"survey": False, "service": True, "marketing": False})
    survey = decide(anna(), request(), strict, NOON)
    assert isinstance(survey, Skip) and survey.reason is Reason.NO_CONSENT


def test_consent_is_per_channel() -> None:
    customer = anna(phone=US_PHONE, consents=consent("telegram", "marketing"))
    at = datetime(2026, 11, 17, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    by_voice = decide(customer, request(purpose="marketing", channel="voice"), POLICY, at)
    assert isinstance(by_voice, Skip) and by_voice.reason is Reason.NO_CONSENT


# --- frequency caps across campaigns ---


def test_a_contact_by_another_campaign_5_days_ago_defers_a_14_day_cap_until_day_14() -> None:
    contacted = NOON - timedelta(days=5)
    customer = anna(last_contacts=[ContactRecord(contacted, "birthday", "marketing")])
    decision = decide(customer, request(cap_days=14), POLICY, NOON)
    assert isinstance(decision, Defer) and decision.reason is Reason.FREQUENCY_CAP
    assert decision.until == (contacted + timedelta(days=14)).astimezone(UTC)  # Tue 12:00 MSK


def test_a_cap_that_ends_outside_the_window_defers_to_the_next_opening() -> None:
    contacted = datetime(2026, 11, 10, 21, 0, tzinfo=MOSCOW)  # +14 days: Tue 24 Nov 21:00
    customer = anna(last_contacts=[ContactRecord(contacted, "birthday", "marketing")])
    decision = decide(customer, request(cap_days=14), POLICY, NOON)
    assert isinstance(decision, Defer) and decision.reason is Reason.FREQUENCY_CAP
    assert decision.until == datetime(2026, 11, 25, 10, 0, tzinfo=MOSCOW)


def test_an_expired_cap_does_not_defer() -> None:
    contacted = NOON - timedelta(days=15)
    customer = anna(last_contacts=[ContactRecord(contacted, "birthday", "marketing")])
    assert decide(customer, request(cap_days=14), POLICY, NOON) == Send("telegram", NOON)


def test_a_cap_exempt_post_order_survey_is_not_deferred() -> None:
    customer = anna(last_contacts=[ContactRecord(NOON - timedelta(days=1), "winback", "marketing")])
    post_order = request(campaign_id="post-order", cap_days=14, cap_exempt=True)
    assert decide(customer, post_order, POLICY, NOON) == Send("telegram", NOON)


def test_contacts_of_exempt_campaigns_do_not_count_against_marketing_caps() -> None:
    survey = ContactRecord(NOON - timedelta(days=2), "post-order", "survey", exempt_from_cap=True)
    customer = anna(last_contacts=[survey], consents=consent("telegram", "marketing"))
    marketing = request(purpose="marketing", cap_days=14)
    assert decide(customer, marketing, POLICY, NOON) == Send("telegram", NOON)


# --- the local window ---


def test_voice_is_held_to_8_to_21_local_time_even_in_a_wider_window() -> None:
    wide = request(purpose="service", channel="voice", window=SendingWindow(end=time(23)))
    evening = datetime(2026, 11, 17, 21, 30, tzinfo=MOSCOW)
    decision = decide(anna(), wide, POLICY, evening)
    assert isinstance(decision, Defer) and decision.reason is Reason.OUTSIDE_WINDOW
    assert decision.until == datetime(2026, 11, 18, 10, 0, tzinfo=MOSCOW)  # the campaign's 10:00
    assert decision.until.tzinfo is UTC
    early = request(
        purpose="service", channel="voice", window=SendingWindow(start=time(7), end=time(23))
    )
    morning = datetime(2026, 11, 17, 7, 30, tzinfo=MOSCOW)
    by_voice = decide(anna(), early, POLICY, morning)
    assert isinstance(by_voice, Defer) and by_voice.until == morning.replace(hour=8, minute=0)
    by_telegram = decide(anna(), replace(early, channel="telegram"), POLICY, morning)
    assert by_telegram == Send("telegram", morning)


def test_the_customers_own_zone_beats_the_phones_region() -> None:
    vladivostok = ZoneInfo("Asia/Vladivostok")  # UTC+10
    customer = anna(time_zone="Asia/Vladivostok")
    assert decide(customer, request(), POLICY, NOON) == Send(
        "telegram", NOON.astimezone(vladivostok)
    )
    late = NOON.replace(hour=15)  # 22:00 in Vladivostok
    decision = decide(customer, request(), POLICY, late)
    assert isinstance(decision, Defer)
    assert decision.until == datetime(2026, 11, 18, 10, 0, tzinfo=vladivostok)
    assert "Asia/Vladivostok" in decision.text


def test_without_zone_or_phone_the_campaign_zone_is_used() -> None:
    customer = anna(phone=None, time_zone=None)
    at = datetime(2026, 11, 17, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, 08:00 in London
    berlin = request(campaign_time_zone="Europe/Berlin", window=SendingWindow(start=time(9)))
    assert isinstance(decide(customer, berlin, POLICY, at), Send)
    london = replace(berlin, campaign_time_zone="Europe/London")
    assert isinstance(decide(customer, london, POLICY, at), Defer)


def test_a_window_that_never_opens_is_a_skip() -> None:
    evening = request(
        purpose="service", channel="voice", window=SendingWindow(start=time(21), end=time(23))
    )
    decision = decide(anna(), evening, POLICY, NOON)
    assert isinstance(decision, Skip) and decision.reason is Reason.WINDOW_NEVER_OPENS


# --- logging and inputs ---


def test_every_skip_and_deferral_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.campaign.guard")
    decide(anna(flagged="abuse"), request(), POLICY, NOON)
    decide(anna(), request(), POLICY, NOON.replace(hour=22))
    decide(anna(), request(), POLICY, NOON)  # a send is not logged by the guard
    reasons = [getattr(record, "reason", None) for record in caplog.records]
    assert reasons == ["flagged", "outside_window"]
    assert "customer 1 campaign winback-90" in caplog.records[0].getMessage()


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(anna(), request(), POLICY, datetime(2026, 11, 17, 12))  # noqa: DTZ001
