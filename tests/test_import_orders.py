"""`import orders` on SQLite and PostgreSQL: formats, bad rows, idempotence, rhythm refresh."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.app import App
from bot.customers import importer, order_rows
from bot.customers.importer import import_customers, import_orders
from bot.db.models import Customer, Order
from bot.errors import InputError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _orders(app: App) -> dict[str, Order]:
    with app.sessions() as session:
        return {o.external_id: o for o in session.scalars(select(Order))}


@pytest.fixture
def customers(app: App, tmp_path: Path) -> dict[str, int]:
    import_customers(app, _write(tmp_path / "customers.csv", "id;name\n1;Ivan\n2;Olga\n3;Petr\n"))
    with app.sessions() as session:
        return {c.external_id: c.id for c in session.scalars(select(Customer))}


@pytest.fixture
def refreshed(monkeypatch: pytest.MonkeyPatch) -> list[set[int] | None]:
    calls: list[set[int] | None] = []

    def record(engine: Engine, customer_ids: Collection[int] | None = None) -> None:
        calls.append(None if customer_ids is None else set(customer_ids))

    monkeypatch.setattr(importer, "refresh_rhythm", record)
    return calls


def test_cp1251_semicolon_export_with_decimal_commas_imports(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "Номер заказа;Код клиента;Дата заказа;Дата доставки;Сумма;Валюта;Статус;Товары\n"
        'A-1;1;12.03.2026 10:00;14.03.2026;1\u00a0990,50;;Выполнен;"Чайник x2; Кружка"\n'
        "A-2;2;2026-03-12T10:00:00+05:00;;10;usd;Отменён;\n",
        "cp1251",
    )
    report = import_orders(app, path)
    assert (report.created, report.failed) == (2, 0)
    orders = _orders(app)
    first = orders["A-1"]
    assert first.customer_id == customers["1"]
    assert first.placed_at == datetime(2026, 3, 12, 7, 0, tzinfo=UTC)
    assert first.delivered_at == datetime(2026, 3, 13, 21, 0, tzinfo=UTC)
    assert (first.amount_minor, first.currency, first.status) == (199050, "RUB", "delivered")
    assert first.items == [{"name": "Чайник", "qty": 2}, {"name": "Кружка", "qty": 1}]
    second = orders["A-2"]
    assert second.placed_at == datetime(2026, 3, 12, 5, 0, tzinfo=UTC)
    assert (second.amount_minor, second.currency, second.status) == (1000, "USD", "cancelled")


def test_english_comma_export_reads_zone_less_times_in_the_tz_option(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "order_id,customer_id,created_at,delivered_at,total,status,items\n"
        'B-1,3,2026-03-12 10:00,2026-03-13 09:30:15,"1,990.50",completed,"[{""name"": ""Tea""}]"\n',
    )
    report = import_orders(app, path, importer.ImportOptions(time_zone="Asia/Vladivostok"))
    assert (report.created, report.failed) == (1, 0)
    order = _orders(app)["B-1"]
    assert order.placed_at == datetime(2026, 3, 12, 0, 0, tzinfo=UTC)
    assert order.delivered_at == datetime(2026, 3, 12, 23, 30, 15, tzinfo=UTC)
    assert (order.amount_minor, order.status, order.items) == (
        199050,
        "delivered",
        [{"name": "Tea"}],
    )


def test_json_lines_orders_import(app: App, customers: dict[str, int], tmp_path: Path) -> None:
    path = _write(
        tmp_path / "orders.ndjson",
        '{"order_id": "J1", "customer_id": 1, "date": "2026-03-12", "amount": 1990.5,'
        ' "items": [{"name": "Tea", "qty": 2}]}\n',
    )
    assert import_orders(app, path).created == 1
    order = _orders(app)["J1"]
    assert (order.amount_minor, order.status, order.items) == (
        199050,
        "placed",
        [{"name": "Tea", "qty": 2}],
    )


def test_bad_order_rows_are_reported_with_line_column_and_reason(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "№;Код клиента;Дата;Дата доставки;Сумма\n"
        "1;1;01.03.2026;;100\n"
        ";1;01.03.2026;;100\n"
        "2;1;вчера;;100\n"
        "3;1;01.03.2026;;сто\n"
        "1;2;02.03.2026;;100\n"
        "4;1;01.12.2026;;100\n"
        "5;1;05.03.2026;01.03.2026;100\n"
        "6;99;01.03.2026;;100\n"
        "7;2;01.03.2026;;100\n",
    )
    report = import_orders(app, path)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [str(b) for b in report.bad_rows] == [
        f"{path}:3 [external_id]: missing order id",
        f"{path}:4 [placed_at]: not a date: 'вчера' (use YYYY-MM-DD, YYYY-MM-DD HH:MM or "
        "DD.MM.YYYY HH:MM)",
        f"{path}:5 [amount]: not an amount: 'сто'",
        f"{path}:6 [external_id]: duplicate order id '1': first seen on line 2",
        f"{path}:7 [placed_at]: order date is in the future",
        f"{path}:8 [delivered_at]: delivered before it was placed",
        f"{path}:9 [customer]: unknown customer '99'",
    ]
    assert sorted(_orders(app)) == ["1", "7"]


def test_a_bad_row_in_a_reimport_leaves_the_stored_order_unchanged(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    import_orders(
        app, _write(tmp_path / "a.csv", "id;customer_id;date;amount\n1;1;01.03.2026;100\n")
    )
    before = _orders(app)["1"]
    report = import_orders(
        app, _write(tmp_path / "b.csv", "id;customer_id;date;amount\n1;2;01.03.2026;1 0 0 x\n")
    )
    assert (report.updated, report.failed) == (0, 1)
    after = _orders(app)["1"]
    assert (after.customer_id, after.amount_minor) == (before.customer_id, before.amount_minor)


def test_reimporting_orders_changes_nothing_and_refreshes_no_rhythm(
    app: App, customers: dict[str, int], tmp_path: Path, refreshed: list[set[int] | None]
) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "id;customer_id;date;delivery_date;amount;status;items\n"
        "1;1;01.03.2026 10:00;03.03.2026;1 990,50;paid;Tea x2\n"
        "2;2;2026-03-05;;10;;\n",
    )
    assert import_orders(app, path).created == 2
    assert refreshed == [None]  # two of three customers changed: refresh everyone
    stored = _orders(app)
    second = import_orders(app, path)
    assert (second.created, second.updated, second.unchanged, second.failed) == (0, 0, 2, 0)
    assert refreshed == [None]
    assert {k: (o.id, o.amount_minor, o.items) for k, o in _orders(app).items()} == {
        k: (o.id, o.amount_minor, o.items) for k, o in stored.items()
    }


def test_a_changed_order_refreshes_the_rhythm_of_its_old_and_new_customer(
    app: App, customers: dict[str, int], tmp_path: Path, refreshed: list[set[int] | None]
) -> None:
    path = tmp_path / "orders.csv"
    _write(path, "id;customer_id;date\n" + "".join(f"{i};1;2026-03-0{i}\n" for i in range(1, 8)))
    import_orders(app, path)
    # Ten customers, so one changed order is below the refresh-everyone share.
    import_customers(
        app, _write(tmp_path / "more.csv", "id\n" + "".join(f"x{i}\n" for i in range(10)))
    )
    _write(path, "id;customer_id;date\n1;2;2026-03-01\n")
    report = import_orders(app, path)
    assert (report.updated, report.unchanged) == (1, 0)
    assert refreshed[-1] == {customers["1"], customers["2"]}


def test_an_orders_file_without_a_customer_column_fails_and_stores_nothing(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    path = _write(tmp_path / "orders.csv", "id;date\n1;2026-03-01\n")
    with pytest.raises(InputError, match=r"orders\.csv: no column for required field 'customer'"):
        import_orders(app, path)
    assert _orders(app) == {}


def test_customers_are_resolved_when_the_id_cache_overflows(
    app: App, customers: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order_rows, "CUSTOMER_CACHE_SIZE", 1)
    path = _write(tmp_path / "o.csv", "id;customer_id;date\n1;1;2026-03-01\n2;2;2026-03-01\n")
    report = import_orders(app, path, importer.ImportOptions(batch_size=1))
    assert (report.created, report.failed) == (2, 0)
    report = import_orders(app, path, importer.ImportOptions(batch_size=2))
    assert (report.unchanged, report.failed) == (2, 0)


BAD_AND_GOOD_ROWS = (
    "№;Код клиента;Дата;Дата доставки;Сумма;Статус\n"
    "1;1;01.03.2026 10:00;;100;Доставлен\n"
    ";1;01.03.2026;;100;\n"
    "2;1;вчера;;100;\n"
    "3;1;01.03.2026 10:05;;сто;\n"
    "1;2;02.03.2026;;100;\n"
    "4;1;01.12.2026;;100;\n"
    "5;1;05.03.2026;01.03.2026;100;\n"
    "6;99;01.03.2026;;100;\n"
    "7;2;01.03.2026 10:07;01.03.2026 12:00;100;\n"
    "8;2;01.03.2026 10:08;;100;Потерян\n"
    "9;3;01.03.2026 10:09;;100;доставлен\n"
    "10;3;01.03.2026 10:10;;100;Потерян\n"
)


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_a_large_file_is_validated_in_a_child_process_with_the_same_result(
    app: App,
    customers: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    """Above PARALLEL_MIN_BYTES a forked child validates; report and rows equal the plain run."""
    if not importer._can_fork():
        pytest.skip("validation in a child process needs fork (Linux)")
    path = _write(tmp_path / "orders.csv", BAD_AND_GOOD_ROWS)
    received = []
    original = importer._received

    def spy(*args: object) -> object:
        received.append(True)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(importer, "_received", spy)
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    report = import_orders(app, path, importer.ImportOptions(batch_size=batch_size))
    assert received
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert [(str(b), b.value) for b in report.bad_rows] == [
        (f"{path}:3 [external_id]: missing order id", ""),
        (
            f"{path}:4 [placed_at]: not a date: 'вчера' (use YYYY-MM-DD, YYYY-MM-DD HH:MM or "
            "DD.MM.YYYY HH:MM)",
            "вчера",
        ),
        (f"{path}:5 [amount]: not an amount: 'сто'", "сто"),
        (f"{path}:6 [external_id]: duplicate order id '1': first seen on line 2", "1"),
        (f"{path}:7 [placed_at]: order date is in the future", "01.12.2026"),
        (f"{path}:8 [delivered_at]: delivered before it was placed", "01.03.2026"),
        (f"{path}:9 [customer]: unknown customer '99'", "99"),
        (f"{path}:11 [status]: unknown status 'Потерян'", "Потерян"),
        (f"{path}:13 [status]: unknown status 'Потерян'", "Потерян"),
    ]
    orders = _orders(app)
    assert sorted(orders) == ["1", "7", "9"]
    assert [orders[key].status for key in sorted(orders)] == ["delivered"] * 3


def test_an_unreadable_byte_in_a_child_validated_file_is_an_input_error(
    app: App, customers: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not importer._can_fork():
        pytest.skip("validation in a child process needs fork (Linux)")
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    good = "".join(f"{i};1;01.03.2026 10:00;;100\n" for i in range(8000))
    path = tmp_path / "orders.csv"
    path.write_bytes(("id;customer_id;date;delivered;amount\n" + good).encode() + b"x\xff;1;;;\n")
    with pytest.raises(InputError, match="cannot be read as utf-8.*--encoding"):
        import_orders(app, path, importer.ImportOptions(batch_size=1000))
    # Batches read before the undecodable chunk were written, as without a child.
    stored = len(_orders(app))
    assert stored % 1000 == 0 and 0 < stored <= 8000


def test_status_words_are_cached_but_an_empty_status_follows_the_delivery_date(
    app: App, customers: dict[str, int], tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "id;customer_id;date;delivered_at;status\n"
        "1;1;01.03.2026 10:00;02.03.2026 10:00;\n"
        "2;1;01.03.2026 10:00;;\n"
        "3;1;01.03.2026 10:00;;Оплачен\n"
        "4;1;01.03.2026 10:00;02.03.2026 10:00;Оплачен\n",
    )
    report = import_orders(app, path)
    assert report.failed == 0
    assert [o.status for _, o in sorted(_orders(app).items())] == [
        "delivered",
        "placed",
        "paid",
        "paid",
    ]
