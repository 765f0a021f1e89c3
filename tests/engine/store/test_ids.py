from datetime import UTC, datetime, timedelta

import pytest

from engine.ids import ALPHABET, id_time, new_id


def test_ids_are_26_crockford_characters() -> None:
    made = new_id()
    assert len(made) == 26
    assert set(made) <= set(ALPHABET)


def test_ids_sort_in_creation_order_even_within_one_millisecond() -> None:
    made = [new_id() for _ in range(5000)]  # thousands of ids share each millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_id_time_is_the_creation_moment() -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(milliseconds=1)
    made = new_id()
    assert before <= id_time(made) <= datetime.now(UTC)


def test_id_time_rejects_foreign_strings() -> None:
    with pytest.raises(ValueError):
        id_time("not-an-id")
    with pytest.raises(ValueError):
        id_time("U" * 26)  # U is not in the Crockford alphabet
