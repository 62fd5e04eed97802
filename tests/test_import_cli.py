"""`boomerang import customers|orders` through the real CLI against a temporary SQLite file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from bot.settings import get_settings


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_clean_import_exits_0_and_prints_the_summary(run: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("ID клиента;ФИО;Телефон;Лишняя колонка\n1;Иван;89123456789;x\n", "utf-8")
    result = run.invoke(app, ["import", "customers", str(path)])
    assert result.exit_code == 0, result.output
    assert "note: ignored columns: 'Лишняя колонка'" in result.output
    assert f"{path}: customers: 1 created, 0 updated, 0 unchanged, 0 failed" in result.output
    again = run.invoke(app, ["import", "customers", str(path)])
    assert f"{path}: customers: 0 created, 0 updated, 1 unchanged, 0 failed" in again.output


def test_bad_rows_exit_1_and_are_written_to_the_errors_file(run: CliRunner, tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("id,name\n1,Ivan\n", "utf-8")
    assert run.invoke(app, ["import", "customers", str(customers)]).exit_code == 0
    orders = tmp_path / "orders.tsv"
    orders.write_text(
        "order\tclient\twhen\tsum\n1\t1\t01.03.2026\t100\n2\t1\t31.02.2026\t5\n", "utf-8"
    )
    errors = tmp_path / "errors.csv"
    result = run.invoke(
        app,
        [
            "import",
            "orders",
            str(orders),
            "--delimiter",
            "tab",
            "--errors",
            str(errors),
            "--map",
            "external_id=order",
            "--map",
            "customer=client",
            "--map",
            "placed_at=when",
            "--map",
            "amount=sum",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "1 created, 0 updated, 0 unchanged, 1 failed" in result.output
    assert f"{orders}:3 [placed_at]: no such date or time: '31.02.2026'" in result.output
    with errors.open(encoding="utf-8-sig", newline="") as written:
        assert list(csv.reader(written)) == [
            ["file", "line", "column", "value", "reason"],
            [str(orders), "3", "placed_at", "31.02.2026", "no such date or time: '31.02.2026'"],
        ]


def test_a_missing_required_column_is_an_error_naming_file_and_field(
    run: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("name\nIvan\n", "utf-8")
    result = run.invoke(app, ["import", "customers", str(path)])
    assert result.exit_code == 2
    assert f"{path}: no column for required field 'external_id'" in result.output
