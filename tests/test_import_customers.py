"""`import customers` on SQLite and PostgreSQL: dialects of real exports, bad rows, idempotence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.clock import FixedClock
from bot.customers.importer import ImportOptions, import_customers
from bot.db.models import Consent, Customer, Manager

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _customers(app: App) -> dict[str, Customer]:
    with app.sessions() as session:
        return {c.external_id: c for c in session.scalars(select(Customer))}


def _consents(app: App) -> list[tuple[int, str, str, bool, datetime, str]]:
    with app.sessions() as session:
        rows = session.scalars(select(Consent).order_by(Consent.id))
        return [(c.customer_id, c.channel, c.purpose, c.granted, c.at, c.source) for c in rows]


def test_cp1251_semicolon_export_with_russian_headers_imports(app: App, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "clients.csv",
        "Код клиента;ФИО;Имя;Телефон;Дата рождения;Теги;Менеджер\n"
        "1;Иван Петров;Иван;8 (912) 345-67-89;01.02.1990;vip, опт;Анна Смирнова\n"
        "2;Мария Иванова;Мария;+7 912 345 67 80;;;Анна Смирнова\n",
        "cp1251",
    )
    report = import_customers(app, path)
    assert (report.created, report.updated, report.failed) == (2, 0, 0)
    ivan = _customers(app)["1"]
    assert ivan.name == "Иван Петров"
    assert ivan.first_name == "Иван"
    assert ivan.phone == "+79123456789"
    assert ivan.birthday == date(1990, 2, 1)
    assert ivan.tags == ["vip", "опт"]
    with app.sessions() as session:
        manager = session.scalars(select(Manager)).one()
    assert manager.name == "Анна Смирнова"
    assert {c.manager_id for c in _customers(app).values()} == {manager.id}


def test_utf8_bom_comma_export_with_english_headers_imports(app: App, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "customers.csv",
        "\ufeffcustomer_id,full_name,phone,email,locale,timezone,flagged\n"
        "c1,Ivan Petrov,89123456789,Ivan@Example.com,RU,Asia/Yekaterinburg,\n",
    )
    report = import_customers(app, path)
    assert (report.created, report.failed) == (1, 0)
    ivan = _customers(app)["c1"]
    assert (ivan.phone, ivan.email, ivan.locale, ivan.time_zone, ivan.flagged) == (
        "+79123456789",
        "ivan@example.com",
        "ru",
        "Asia/Yekaterinburg",
        None,
    )


def test_tab_separated_utf8_export_imports(app: App, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.tsv", "ID\tКлиент\tПочта\n7\tОльга\tolga@example.com\n")
    assert import_customers(app, path).created == 1
    assert _customers(app)["7"].email == "olga@example.com"


def test_json_lines_export_imports(app: App, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.jsonl",
        '{"id": 1, "name": "Ivan", "phone": "+7 912 345 67 89", "tags": ["a", "b"]}\n'
        "\n"
        '{"id": 2, "name": "Olga", "phone": "bad"}\n',
    )
    report = import_customers(app, path)
    assert report.created == 1
    assert [str(b) for b in report.bad_rows] == [f"{path}:3 [phone]: not a phone number: 'bad'"]
    assert _customers(app)["1"].tags == ["a", "b"]


def test_map_option_reads_a_field_from_an_unusual_header(app: App, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "Номер карты;Покупатель\nK-1;Ivan\n")
    options = ImportOptions(column_map={"external_id": "Номер карты", "name": "Покупатель"})
    assert import_customers(app, path, options).created == 1
    assert _customers(app)["K-1"].name == "Ivan"


def test_bad_rows_are_reported_and_good_rows_still_imported(app: App, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.csv",
        "id;name;phone;birthday\n"
        "1;Ivan;+79123456789;01.02.1990\n"
        ";No id;+79123456780;\n"
        "2;Bad phone;12345;\n"
        "3;Bad date;;31.02.1990\n"
        "1;Duplicate;+79123456781;\n"
        "4;Olga;;\n",
    )
    report = import_customers(app, path)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [str(b) for b in report.bad_rows] == [
        f"{path}:3 [external_id]: missing customer id",
        f"{path}:4 [phone]: not a valid phone number: '12345'",
        f"{path}:5 [birthday]: no such date: '31.02.1990'",
        f"{path}:6 [external_id]: duplicate customer id '1': first seen on line 2",
    ]
    assert [b.value for b in report.bad_rows] == ["", "12345", "31.02.1990", "1"]
    assert sorted(_customers(app)) == ["1", "4"]


def test_a_bad_row_in_a_reimport_leaves_the_stored_customer_unchanged(
    app: App, tmp_path: Path
) -> None:
    good = _write(tmp_path / "a.csv", "id;name;phone\n1;Ivan;+79123456789\n")
    import_customers(app, good)
    before = _customers(app)["1"]
    bad = _write(tmp_path / "b.csv", "id;name;phone\n1;Renamed;not a phone\n")
    report = import_customers(app, bad)
    assert (report.updated, report.failed) == (0, 1)
    after = _customers(app)["1"]
    assert (after.name, after.phone, after.updated_at) == (
        before.name,
        before.phone,
        before.updated_at,
    )


def test_reimporting_the_same_file_changes_nothing(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "c.csv",
        "id;name;phone;tags;manager;consent;consent_at;opted_out\n"
        "1;Ivan;+79123456789;vip;Anna;telegram:* sms:marketing;2026-01-10 12:00;нет\n"
        "2;Olga;;;;*;;да\n",
    )
    first = import_customers(app, path)
    assert (first.created, first.failed) == (2, 0)
    stored, ledger = _customers(app), _consents(app)
    assert len(ledger) == 4 + 12
    assert ledger[0][4:] == (datetime(2026, 1, 10, 9, 0, tzinfo=UTC), "import c.csv:2")
    assert stored["2"].opted_out_at == NOW
    clock.advance(timedelta(days=1))
    second = import_customers(app, path)
    assert (second.created, second.updated, second.unchanged, second.failed) == (0, 0, 2, 0)
    again = _customers(app)
    for key, customer in stored.items():
        assert again[key].updated_at == customer.updated_at
        assert again[key].opted_out_at == customer.opted_out_at
    assert _consents(app) == ledger


def test_a_changed_cell_updates_only_that_customer(app: App, tmp_path: Path) -> None:
    _write(tmp_path / "c.csv", "id;name\n1;Ivan\n2;Olga\n")
    import_customers(app, tmp_path / "c.csv")
    _write(tmp_path / "c.csv", "id;name\n1;Ivan Petrov\n2;Olga\n")
    report = import_customers(app, tmp_path / "c.csv")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert _customers(app)["1"].name == "Ivan Petrov"


def test_consent_withdrawal_adds_one_ledger_row(app: App, tmp_path: Path) -> None:
    _write(tmp_path / "c.csv", "id;consent\n1;sms:marketing\n")
    import_customers(app, tmp_path / "c.csv")
    _write(tmp_path / "c.csv", "id;consent\n1;-sms:marketing\n")
    report = import_customers(app, tmp_path / "c.csv")
    assert report.updated == 1
    assert [(c[1], c[2], c[3]) for c in _consents(app)] == [
        ("sms", "marketing", True),
        ("sms", "marketing", False),
    ]


def test_sqlite_checkpoint_setting_is_restored_after_an_import(
    sqlite_app: App, tmp_path: Path
) -> None:
    import_customers(sqlite_app, _write(tmp_path / "c.csv", "id\n1\n"))
    with sqlite_app.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
