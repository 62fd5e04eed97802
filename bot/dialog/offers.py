"""Offers a conversation issues: their code, discount and expiry join the render context.

A step like winback's `price_offer` both issues an offer (`do: issue_offer: {code: "BACK-{{
customer_id }}", discount: 15, expires_in_days: 14}`) and says it ("скидка {{ offer_discount }}%
по коду {{ offer_code }}"), and a later step may repeat the code. A channel passes each step's
outputs to `issue_offers` before it renders them: the offer (the code template rendered, the
discount, the expiry date) is kept in the conversation's answers (`offer_code`, `offer_discount`,
`offer_expires`), and `offer_context` puts the kept offer into the context of every later step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from bot.dialog import model
from bot.dialog.events import Action, Output
from bot.dialog.loader import LoadedScript
from bot.dialog.renderer import render
from bot.dialog.state import State

CODE, DISCOUNT, EXPIRES = "offer_code", "offer_discount", "offer_expires"


def offer_context(state: State, context: Mapping[str, object]) -> Mapping[str, object]:
    """`context` plus the offer the conversation issued so far, if any."""
    code = state.answers.get(CODE)
    if not isinstance(code, str):
        return context
    extended = dict(context)
    extended[CODE] = code
    extended[DISCOUNT] = state.answers.get(DISCOUNT)
    expires = state.answers.get(EXPIRES)
    extended[EXPIRES] = date.fromisoformat(expires) if isinstance(expires, str) else None
    return extended


def issue_offers(
    loaded: LoadedScript,
    state: State,
    outputs: Sequence[Output],
    context: Mapping[str, object],
    today: date,
) -> tuple[State, Mapping[str, object]]:
    """Keep the offers `outputs` issue in `state`; the state and the context to render them."""
    for output in outputs:
        if not isinstance(output, Action) or not isinstance(output.action, model.IssueOffer):
            continue
        do = loaded.script.steps[output.step].do
        if output.action not in do:
            continue
        index = do.index(output.action)
        code = render(loaded, output.step, f"do.{index}.code", offer_context(state, context))
        expires = today + timedelta(days=output.action.expires_in_days)
        state = (
            state.with_answer(CODE, code)
            .with_answer(DISCOUNT, output.action.discount)
            .with_answer(EXPIRES, expires.isoformat())
        )
    return state, offer_context(state, context)
