"""Per-instrument test code tables: the analyser's test code → the LIS item code.

One file per instrument under conf/ (`conf/lis_codes/<instrument>.csv`), kept by the lab's
interface engineer. CSV, UTF-8 (a BOM from Excel is fine), `#` starts a comment line:

    test_code,lis_code,lis_name
    GLU,1001,葡萄糖
    1,2005,CA125

`test_code` is what the device sends (OBX-3.1 or the OBX-4 fallback, ASTM R-3 component
4 or 1; compared without surrounding spaces, case-sensitive as devices are); `lis_code`
the LIS item; `lis_name` is optional. A code listed twice is a configuration error, found
when the daemon starts, not when a result arrives.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

REQUIRED_COLUMNS = ("test_code", "lis_code")


class CodeTableError(ValueError):
    """The table cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LisItem:
    code: str
    name: str = ""


class CodeTable:
    """Instrument code → LIS item, read from one file."""

    def __init__(self, items: dict[str, LisItem], source: str) -> None:
        self._items = items
        self.source = source

    def __len__(self) -> int:
        return len(self._items)

    def lookup(self, test_code: str) -> LisItem | None:
        return self._items.get(test_code.strip())

    @classmethod
    def load(cls, path: Path) -> CodeTable:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CodeTableError(f"{path}: cannot be read as UTF-8 text: {exc}") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<text>") -> CodeTable:
        rows = [
            (number, [cell.strip() for cell in cells])
            for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1)
            if cells and any(cell.strip() for cell in cells) and not cells[0].lstrip().startswith("#")
        ]
        columns = rows[0][1] if rows else []
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            wanted = ", ".join(REQUIRED_COLUMNS)
            raise CodeTableError(f"{source}: header must name {wanted}; missing {', '.join(missing)}")
        items: dict[str, LisItem] = {}
        for number, cells in rows[1:]:
            row = dict(zip(columns, cells, strict=False))
            test_code, lis_code = row.get("test_code", ""), row.get("lis_code", "")
            where = f"{source} line {number}"
            if not test_code or not lis_code:
                raise CodeTableError(f"{where}: both test_code and lis_code are needed")
            if test_code in items:
                raise CodeTableError(f"{where}: test code {test_code!r} is listed twice")
            items[test_code] = LisItem(lis_code, row.get("lis_name", ""))
        return cls(items, source)
