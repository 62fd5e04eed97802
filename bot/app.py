"""Composition root: settings, database, clock — built once per process and handed down."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, SystemClock
from bot.db.migrate import ensure_schema
from bot.db.session import create_db_engine, make_sessionmaker
from bot.settings import Settings, get_settings


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock


def open_app(settings: Settings | None = None, clock: Clock | None = None) -> App:
    """Open the database (migrating it to the newest schema first) and wire the seams."""
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url)
    ensure_schema(engine)
    return App(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        clock=clock or SystemClock(),
    )
