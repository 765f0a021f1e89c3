"""Trace-code capture checks: the code's shape, and its product prefix mapped to the
insurance catalogue code through the hospital's four-code table (a CSV in conf/).

A 码上放心 code is 20 digits starting with 8: a 7-digit product identifier (药品标识码,
one per packaging level) and a 13-digit serial part. Other formats are configured by
pattern; the prefix length stays the mapping key. An optional `package` column marks a
prefix `large` (a case or carton: its codes are expanded into box codes before upload when
the relation query is configured) or `small` (the default).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError, InputError

DEFAULT_PATTERN = r"^8\d{19}$"
PRODUCT_PREFIX_DIGITS = 7
PREFIX_COLUMN = "trace_prefix"
CATALOGUE_COLUMN = "med_list_codg"
PACKAGE_COLUMN = "package"
PACKAGES = ("small", "large")


@dataclass(frozen=True)
class ProductMap:
    """Trace-code product prefix → 医保目录编码 (med_list_codg), and which prefixes are large packages."""

    codes: dict[str, str]
    prefix_digits: int = PRODUCT_PREFIX_DIGITS
    large: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path, *, prefix_digits: int = PRODUCT_PREFIX_DIGITS) -> ProductMap:
        """Read a CSV with the columns `trace_prefix`, `med_list_codg` and optionally `package`
        (others are ignored)."""
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as exc:
            raise ConfigError([f"trace-code mapping table {path}: {exc}"]) from exc
        codes: dict[str, str] = {}
        large: set[str] = set()
        for number, row in enumerate(rows, start=2):
            prefix = (row.get(PREFIX_COLUMN) or "").strip()
            catalogue_code = (row.get(CATALOGUE_COLUMN) or "").strip()
            package = (row.get(PACKAGE_COLUMN) or "").strip() or "small"
            if package not in PACKAGES:
                raise ConfigError([f"trace-code mapping table {path} line {number}: {PACKAGE_COLUMN} must be "
                                   f"{' or '.join(PACKAGES)}, not {package!r}"])
            if len(prefix) != prefix_digits or not catalogue_code:
                raise ConfigError([
                    f"trace-code mapping table {path} line {number}: needs a {prefix_digits}-character "
                    f"{PREFIX_COLUMN} and a {CATALOGUE_COLUMN}"
                ])
            if codes.get(prefix, catalogue_code) != catalogue_code:
                raise ConfigError([f"trace-code mapping table {path} line {number}: prefix {prefix} mapped twice"])
            codes[prefix] = catalogue_code
            if package == "large":
                large.add(prefix)
        return cls(codes, prefix_digits, frozenset(large))

    def catalogue_code(self, trace_code: str) -> str | None:
        return self.codes.get(trace_code[: self.prefix_digits])

    def is_large(self, trace_code: str) -> bool:
        """Whether the code's prefix is marked a large package (case, carton) in the table."""
        return trace_code[: self.prefix_digits] in self.large


@dataclass(frozen=True)
class CodeRules:
    """How a captured code must look and which catalogue item it belongs to."""

    pattern: re.Pattern[str]
    products: ProductMap

    def check(self, codes: object, *, field: str) -> tuple[list[str], str]:
        """The codes as strings and the one catalogue code they all map to.

        InputError (party his) naming `field[i]` for a malformed code or an unknown prefix,
        and naming `field` when the codes belong to different catalogue items.
        """
        if not isinstance(codes, list) or not codes:
            raise InputError("must be a non-empty list of trace codes", field=field)
        checked: list[str] = []
        catalogue_codes: set[str] = set()
        for index, code in enumerate(codes):
            name = f"{field}[{index}]"
            if not isinstance(code, str) or not self.pattern.fullmatch(code):
                raise InputError(f"not a trace code (expected {self.pattern.pattern})", field=name)
            catalogue_code = self.products.catalogue_code(code)
            if catalogue_code is None:
                raise InputError(
                    f"product prefix {code[: self.products.prefix_digits]} is not in the mapping table", field=name
                )
            if code in checked:
                raise InputError("the same code twice in one message", field=name)
            checked.append(code)
            catalogue_codes.add(catalogue_code)
        if len(catalogue_codes) > 1:
            raise InputError(
                f"codes of different catalogue items in one record: {', '.join(sorted(catalogue_codes))}", field=field
            )
        return checked, catalogue_codes.pop()
