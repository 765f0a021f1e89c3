"""Which codes are sold and not returned: a small SQLite file beside the engine's store.

The adapter has no access to the engine's store, and a sale still waiting in the outbox
must already count, so the adapter keeps this ledger itself, written when a sale or a
return is captured (transform). Each code remembers the document that sold or returned
it: building the same message again (the outbox may transform a queued message a second
time) is not a duplicate.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from engine.errors import InputError

SOLD = "sold"
RETURNED = "returned"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_codes (
    code TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    document TEXT NOT NULL
)
"""


class SaleLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _states(self, codes: list[str]) -> dict[str, tuple[str, str]]:
        marks = ",".join("?" * len(codes))
        rows = self._connection.execute(
            f"SELECT code, state, document FROM trace_codes WHERE code IN ({marks})", codes
        )
        return {code: (state, document) for code, state, document in rows}

    def sell(self, codes: list[str], document: str, *, fields: list[str]) -> None:
        """Record a sale; InputError naming `fields[i]` (where HIS wrote code i) when a code
        is sold and not returned."""
        self._record(codes, document, fields=fields, new_state=SOLD, allowed_before=(None, RETURNED),
                     refusal="already sold by document {document} and not returned")

    def take_back(self, codes: list[str], document: str, *, fields: list[str]) -> None:
        """Record a return; InputError naming `fields[i]` when a code was never sold or is back already."""
        self._record(codes, document, fields=fields, new_state=RETURNED, allowed_before=(SOLD,),
                     refusal="not sold (last seen: {state} by document {document})")

    def _record(self, codes: list[str], document: str, *, fields: list[str], new_state: str,
                allowed_before: tuple[str | None, ...], refusal: str) -> None:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                states = self._states(codes)
                for index, code in enumerate(codes):
                    state, by = states.get(code, (None, ""))
                    if state == new_state and by == document:
                        continue
                    if state not in allowed_before:
                        reason = refusal.format(state=state, document=by) if state else "never sold"
                        raise InputError(reason, field=fields[index])
                self._connection.executemany(
                    "INSERT INTO trace_codes (code, state, document) VALUES (?, ?, ?) "
                    "ON CONFLICT (code) DO UPDATE SET state = excluded.state, document = excluded.document",
                    [(code, new_state, document) for code in codes],
                )
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
