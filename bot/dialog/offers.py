"""Offers a step issues: their code, discount and expiry join the render context of that step.

A step like winback's `price_offer` both issues an offer (`do: issue_offer: {code: "BACK-{{
customer_id }}", discount: 15, expires_in_days: 14}`) and says it ("скидка {{ offer_discount }}%
по коду {{ offer_code }}"). Before a channel renders a step's outputs it passes them here: the
context gains `offer_code` (the code template rendered), `offer_discount` and `offer_expires`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from bot.dialog import model
from bot.dialog.events import Action, Output
from bot.dialog.loader import LoadedScript
from bot.dialog.renderer import render


def with_offers(
    loaded: LoadedScript,
    outputs: Sequence[Output],
    context: Mapping[str, object],
    today: date,
) -> Mapping[str, object]:
    """`context`, plus the offer the outputs issue (the last one, if several)."""
    extended: dict[str, object] | None = None
    for output in outputs:
        if not isinstance(output, Action) or not isinstance(output.action, model.IssueOffer):
            continue
        do = loaded.script.steps[output.step].do
        if output.action not in do:
            continue
        index = do.index(output.action)
        extended = dict(context) if extended is None else extended
        extended["offer_code"] = render(loaded, output.step, f"do.{index}.code", context)
        extended["offer_discount"] = output.action.discount
        extended["offer_expires"] = today + timedelta(days=output.action.expires_in_days)
    return context if extended is None else extended
