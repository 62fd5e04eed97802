"""The states of an outreach row and the moves allowed between them.

```
planned ◄─► due ──► sending ──► in_conversation ──► done
   │         │         │  ▲            │
   │         │         ▼  │            ▼
   │         │        retry ──────►  failed
   └─────────┴──────────┴──────────► skipped
```

- `planned`: inserted by the planner for a run; not yet due (or due at once, see the dispatcher).
- `due`: claimed by a dispatcher under a lease (`lease_owner`, `lease_until`); a guard `Defer`
  puts it back to `planned` with `next_attempt_at`; a `due` row whose lease expired was never
  sent (`sending` is committed first) and may be claimed again.
- `sending`: claimed and committed *before* any provider call (design decision 2), so a crash
  after the call never sends twice: a row found in `sending` with an expired lease is checked, never
  blindly re-sent.
- `in_conversation`: the customer answered; the dialog engine holds the conversation.
- `retry`: no answer, busy, voicemail, a provider error: waits for `next_attempt_at`.
- `done`, `failed`, `skipped` are final: never overwritten (a holdout row is `skipped` from birth).
"""

from __future__ import annotations

from typing import Final

PLANNED: Final = "planned"
DUE: Final = "due"
SENDING: Final = "sending"
IN_CONVERSATION: Final = "in_conversation"
DONE: Final = "done"
RETRY: Final = "retry"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"

STATES: Final = (PLANNED, DUE, SENDING, IN_CONVERSATION, DONE, RETRY, FAILED, SKIPPED)
FINAL: Final = frozenset({DONE, FAILED, SKIPPED})
"""A row in one of these states is never changed again."""

HOLDOUT: Final = "holdout"
"""skip_reason of the control group's rows."""

MOVES: Final[dict[str, frozenset[str]]] = {
    PLANNED: frozenset({DUE, SENDING, SKIPPED, FAILED}),
    DUE: frozenset({PLANNED, SENDING, SKIPPED, FAILED}),
    SENDING: frozenset({IN_CONVERSATION, DONE, RETRY, FAILED, SKIPPED}),
    IN_CONVERSATION: frozenset({DONE, RETRY, FAILED}),
    RETRY: frozenset({DUE, SENDING, SKIPPED, FAILED}),
    DONE: frozenset(),
    FAILED: frozenset(),
    SKIPPED: frozenset(),
}


def can_move(current: str, target: str) -> bool:
    """Whether a row in state `current` may move to `target`; staying put is not a move.

    Unknown state names raise ValueError (a typo must not read as "not allowed").
    """
    for name in (current, target):
        if name not in MOVES:
            raise ValueError(
                f"unknown outreach state {name!r}; expected one of {', '.join(STATES)}"
            )
    return target in MOVES[current]
