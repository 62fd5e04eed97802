"""Alembic environment: uses the engine handed over by bot.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, engine_from_config, pool

import bot.db.models
import bot.db.outreach
import bot.db.tasks
import bot.db.telegram
import bot.db.voice  # noqa: F401
from bot.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations_online()
