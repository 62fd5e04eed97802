"""The script versions live conversations are pinned to, kept so a reply after an edit works.

An asynchronous conversation (a Telegram chat, a phone call's later turns) continues on the version
it started on (design decision 4). `ScriptVersions.remember` stores a script's source the first
time a conversation starts on it; `script_for` gives the loaded script of a conversation's state:
from the library when it is the current version, else parsed from the stored source; `load` gives
a stored conversation with everything a channel needs to take its next step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.people import load_people
from bot.channel.finish import Finished
from bot.customers.zone import customer_zone
from bot.db.telegram import ScriptVersion
from bot.dialog.events import Output
from bot.dialog.library import Library
from bot.dialog.loader import LoadedScript, load_script_bytes
from bot.dialog.locale_pack import LocalePack
from bot.dialog.state import State


@dataclass(frozen=True, slots=True)
class Stored:
    """A conversation as its outreach row holds it, ready for its next step."""

    outreach_id: int
    customer_id: int
    campaign_id: str
    state: State
    loaded: LoadedScript
    """The script at the version the conversation is pinned to."""
    pack: LocalePack
    context: Mapping[str, object]
    """The render context of the customer (bot.campaign.people)."""
    zone: ZoneInfo
    """The customer's zone: relative answers and offer dates are read in it."""

    def finished(self, state: State, outputs: Sequence[Output]) -> Finished:
        """This conversation, ended in `state` by a step that gave `outputs`."""
        return Finished(
            self.outreach_id, self.customer_id, self.campaign_id, state, outputs, self.zone
        )


class ScriptVersions:
    def __init__(self, app: App, library: Library) -> None:
        self.app = app
        self.library = library
        self._stored: set[str] = set()

    def remember(self, loaded: LoadedScript) -> None:
        """Keep the script's source at this version (once per process and version)."""
        if loaded.version in self._stored or not loaded.source:
            return
        with self.app.sessions.begin() as session:
            if session.get(ScriptVersion, loaded.version) is None:
                session.add(
                    ScriptVersion(
                        version=loaded.version,
                        script_id=loaded.script.id,
                        locale=loaded.script.locale,
                        source=loaded.source.decode("utf-8"),
                        first_used_at=self.app.clock.now(),
                    )
                )
        self._stored.add(loaded.version)

    def script_for(self, session: Session, state: State) -> LoadedScript:
        for (script_id, _), loaded in self.library.scripts.items():
            if script_id == state.script and loaded.version == state.version:
                return loaded
        stored = session.get(ScriptVersion, state.version)
        if stored is None:
            raise LookupError(f"script {state.script}@{state.version} is neither loaded nor stored")
        return load_script_bytes(
            stored.source.encode("utf-8"), f"{state.script}@{state.version} (stored)"
        )

    def load(
        self,
        session: Session,
        outreach_id: int,
        customer_id: int,
        campaign_id: str,
        conversation: Mapping[str, Any] | None,
    ) -> Stored | None:
        """The stored conversation of an outreach row; None when there is none, or its
        locale pack or customer is gone."""
        if conversation is None:
            return None
        state = State.from_dict(conversation)
        loaded = self.script_for(session, state)
        pack = self.library.packs.get(loaded.script.locale)
        if pack is None:
            return None
        settings = self.app.settings
        now = self.app.clock.now()
        people = load_people(session, [customer_id], {}, settings.company_name, now)
        person = people.get(customer_id)
        if person is None:
            return None
        recipient = person.recipient
        zone = customer_zone(recipient.time_zone, recipient.phone, settings.default_time_zone)
        return Stored(
            outreach_id, customer_id, campaign_id, state, loaded, pack, person.context, zone
        )
