"""TokenTable: hashed tokens, bearer parsing, roles."""

from __future__ import annotations

import pytest

from engine.api.auth import OPERATOR_ONLY, Caller, TokenTable, check

TOKENS = [("his-cashier", "his", "his-secret-1"), ("ops-alice", "operator", "ops-secret-2")]


def test_only_hashes_are_kept() -> None:
    table = TokenTable(TOKENS)
    kept = repr(vars(table))
    assert "his-secret-1" not in kept and "ops-secret-2" not in kept


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer his-secret-1", Caller("his-cashier", "his")),
        ("bearer ops-secret-2", Caller("ops-alice", "operator")),
        ("Bearer his-secret-", None),
        ("Basic his-secret-1", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_identify(header: str | None, expected: Caller | None) -> None:
    assert TokenTable(TOKENS).identify(header) == expected


def test_his_token_on_operator_route_is_forbidden_naming_the_role() -> None:
    response = check(TokenTable(TOKENS), "Bearer his-secret-1", OPERATOR_ONLY)
    assert not isinstance(response, Caller)
    assert response.status_code == 403
    assert b"needs role operator" in response.body


def test_unknown_role_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        TokenTable([("x", "admin", "secret")])
