"""Reading export files: encoding and delimiter detection, JSON lines, physical line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.customers.source import detect_delimiter, detect_encoding, open_source
from bot.errors import InputError


def _rows(path: Path, **options: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with open_source(path, **options) as source:
        rows = [(row.line, row.cells) for batch in source.batches(2) for row in batch]
        return source.header, rows


def test_encoding_is_detected_from_bom_then_utf8_then_cp1251() -> None:
    assert detect_encoding("\ufeffИмя".encode()) == "utf-8-sig"
    assert detect_encoding("Имя".encode()) == "utf-8"
    assert detect_encoding("Имя".encode("cp1251")) == "cp1251"
    # A sample cut inside a multi-byte character is still UTF-8.
    assert detect_encoding("Имя".encode()[:-1]) == "utf-8"


def test_delimiter_is_the_most_frequent_in_the_header() -> None:
    assert detect_delimiter("a;b;c\n") == ";"
    assert detect_delimiter("a\tb\tc\n") == "\t"
    assert detect_delimiter("a,b;c,d\n") == ","
    assert detect_delimiter("id\n") == ","


def test_cp1251_file_reads_with_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes('ФИО;Код\r\n"Иван\r\nПетров";1\r\n\r\nОльга;2\r\n'.encode("cp1251"))
    header, rows = _rows(path)
    assert header == ["ФИО", "Код"]
    assert rows == [(2, ["Иван\r\nПетров", "1"]), (5, ["Ольга", "2"])]


def test_encoding_option_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("Код,ФИО\n1,Иван\n".encode("cp1251"))
    assert _rows(path, encoding="cp1251")[1] == [(2, ["1", "Иван"])]


def test_utf8_with_a_bad_byte_later_in_the_file_names_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,name\n" + b"1,x\n" * 40_000 + "2,Иван\n".encode("cp1251"))
    with pytest.raises(InputError, match="cannot be read as utf-8.*--encoding"):
        _rows(path)


def test_json_lines_have_no_header_line_and_report_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text('{"id": 1, "n": [1]}\n{broken\n\n{"id": 3, "x": 1}\n', "utf-8")
    header, rows = _rows(path)
    assert header == ["id", "n"]
    assert rows == [(1, ["1", "[1]"]), (2, []), (4, ["3", ""])]
    with open_source(path) as source:
        errors = [row.error for batch in source.batches(10) for row in batch]
    assert errors[1] is not None and errors[1].startswith("not valid JSON")


def test_an_empty_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("", "utf-8")
    with pytest.raises(InputError, match="empty"):
        _rows(path)
