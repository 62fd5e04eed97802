"""Shared fixtures: a migrated database on SQLite and (opt-in locally, always in CI) PostgreSQL.

PostgreSQL tests run when BOOMERANG_TEST_POSTGRES_URL points at a server whose user may create
databases; `.ci/run` starts one. Without it they skip with the reason shown; with CI=true a missing
server is a failure, because in CI nothing may skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.app import App, open_app
from bot.clock import FixedClock
from bot.db.session import normalise_url
from bot.settings import Settings

POSTGRES_ENV = "BOOMERANG_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: .ci/run must start PostgreSQL")
        pytest.skip(f"PostgreSQL test: set {POSTGRES_ENV} to run it (CI always does)")
    return normalise_url(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'boomerang.db'}"
        return
    admin_url = _postgres_admin_url()
    assert admin_url is not None
    name = f"boomerang_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
def app(settings: Settings, clock: FixedClock) -> Iterator[App]:
    opened = open_app(settings, clock=clock)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def sqlite_app(tmp_path: Path, clock: FixedClock) -> Iterator[App]:
    """SQLite only, for tests about file handling rather than SQL."""
    opened = open_app(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"), clock=clock)
    yield opened
    opened.engine.dispose()
