"""The script versions live conversations are pinned to, kept so a reply after an edit works.

An asynchronous conversation (a Telegram chat, a phone call's later turns) continues on the version
it started on (design decision 4). `ScriptVersions.remember` stores a script's source the first
time a conversation starts on it; `script_for` gives the loaded script of a conversation's state:
from the library when it is the current version, else parsed from the stored source.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.app import App
from bot.db.telegram import ScriptVersion
from bot.dialog.library import Library
from bot.dialog.loader import LoadedScript, load_script_bytes
from bot.dialog.state import State


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
