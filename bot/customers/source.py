"""Reading an export file as a stream of rows with their physical line numbers.

Owns the file-level guessing: encoding (BOM, UTF-8, else cp1251), CSV delimiter (`,` `;` tab),
and CSV versus JSON lines. Rows come out as lists of cell strings aligned with `header`, in
batches, so the importer never holds the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bot.errors import InputError

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Excel and 1C write very long cells (item lists); the csv module's default limit is 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig when there is a BOM; utf-8 when the sample decodes as such; else cp1251."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header most often; `,` when the header is a single column."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_delimiter(option: str) -> str:
    """`--delimiter`: a character, or the words tab / semicolon / comma."""
    named = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}
    value = named.get(option.casefold(), option)
    if len(value) != 1:
        raise InputError("--delimiter", f"expected one character or 'tab', got {option!r}")
    return value


@dataclass(slots=True)
class Row:
    line: int
    cells: list[str]
    error: str | None = None
    """Set when the line itself is unreadable (broken JSON); cells are then empty."""


@dataclass
class Source:
    """An open export: its header, and the rows after it in batches."""

    path: Path
    encoding: str
    kind: str  # "csv" or "jsonl"
    header: list[str]
    delimiter: str | None
    size: int
    _binary: IO[bytes]
    _text: IO[str]
    _rows: Iterator[Row] = field(init=False)

    def __post_init__(self) -> None:
        self._rows = self._csv_rows() if self.kind == "csv" else self._jsonl_rows()

    @property
    def bytes_read(self) -> int:
        return self._binary.tell()

    def batches(self, size: int) -> Iterator[list[Row]]:
        batch: list[Row] = []
        try:
            for row in self._rows:
                batch.append(row)
                if len(batch) >= size:
                    yield batch
                    batch = []
        except UnicodeDecodeError as error:
            raise InputError(
                str(self.path),
                f"cannot be read as {self.encoding} ({error.reason}); pass --encoding",
            ) from None
        if batch:
            yield batch

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _csv_rows(self) -> Iterator[Row]:
        reader = csv.reader(self._text, delimiter=self.delimiter or ",")
        width = len(self.header)
        # line_num counts physical lines this reader consumed, so a record starts right after the
        # previous one ends, even when a quoted cell spans lines. The header (line 1) was read
        # before the reader existed, hence the + 1.
        previous_end = 1
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num + 1
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) < width:
                cells.extend([""] * (width - len(cells)))
            yield Row(line, cells)

    def _jsonl_rows(self) -> Iterator[Row]:
        index = {name: i for i, name in enumerate(self.header)}
        width = len(self.header)
        # The first line was read while opening; it is row 1 (JSON lines have no header line).
        line = 1
        for text in self._text:
            line += 1
            if not text.strip():
                continue
            yield _jsonl_row(line, text, index, width)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _jsonl_row(line: int, text: str, index: dict[str, int], width: int) -> Row:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        return Row(line, [], error=f"not valid JSON: {error.msg}")
    if not isinstance(loaded, dict):
        return Row(line, [], error="a JSON line must be an object")
    cells = [""] * width
    for key, value in loaded.items():
        position = index.get(key)
        if position is not None:
            cells[position] = _cell(value)
    return Row(line, cells)


def open_source(path: Path, encoding: str | None = None, delimiter: str | None = None) -> Source:
    """Open `path`, sniff what it is and read its header (line 1)."""
    try:
        binary = path.open("rb")
    except OSError as error:
        raise InputError(str(path), f"cannot open: {error.strerror}") from None
    size = path.stat().st_size
    sample = binary.read(SAMPLE_BYTES)
    binary.seek(0)
    chosen = encoding or detect_encoding(sample)
    try:
        codecs.lookup(chosen)
    except LookupError:
        binary.close()
        raise InputError("--encoding", f"unknown encoding {chosen!r}") from None
    if chosen.replace("_", "-").lower() in ("utf-8", "utf8") and sample.startswith(codecs.BOM_UTF8):
        chosen = "utf-8-sig"  # an explicit --encoding utf-8 must not leave the BOM in a header
    text = io.TextIOWrapper(binary, encoding=chosen, newline="")
    try:
        first = text.readline()
    except UnicodeDecodeError as error:
        text.close()
        raise InputError(str(path), f"cannot be read as {chosen} ({error.reason})") from None
    if not first.strip():
        text.close()
        raise InputError(str(path), "is empty: expected a header line")
    is_jsonl = path.suffix.lower() in JSONL_SUFFIXES or first.lstrip().startswith("{")
    if is_jsonl:
        return _open_jsonl(path, chosen, size, binary, text, first)
    sep = delimiter or detect_delimiter(first)
    header = next(csv.reader([first], delimiter=sep))
    return Source(path, chosen, "csv", header, sep, size, binary, text)


def _open_jsonl(
    path: Path, encoding: str, size: int, binary: IO[bytes], text: IO[str], first: str
) -> Source:
    """JSON lines: the first object's keys are the header, and that object is row 1 (line 1)."""
    try:
        loaded = json.loads(first)
    except json.JSONDecodeError as error:
        text.close()
        raise InputError(f"{path}:1", f"not valid JSON: {error.msg}") from None
    if not isinstance(loaded, dict):
        text.close()
        raise InputError(f"{path}:1", "a JSON line must be an object")
    header = [str(key) for key in loaded]
    source = Source(path, encoding, "jsonl", header, None, size, binary, text)
    first_row = _jsonl_row(1, first, {k: i for i, k in enumerate(header)}, len(header))
    rest = source._rows

    def rows() -> Iterator[Row]:
        yield first_row
        yield from rest

    source._rows = rows()
    return source
