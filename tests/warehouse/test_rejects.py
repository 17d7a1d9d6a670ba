"""Refused rows, engine-neutral: the checks of `rejects.stage_values`, and what
`write_isolating` does when no single row explains a refusal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headwater.adapters.warehouse.contract import WarehouseError, WriteResult
from headwater.adapters.warehouse.rejects import (
    Refused,
    RejectedData,
    stage_values,
    write_isolating,
)
from headwater.kernel.errors import TerminalError
from headwater.kernel.model import PropertyType
from headwater.kernel.records import IdentityRow


def test_nul_checks_find_nul_text_and_ignore_values_that_are_not_text() -> None:
    """PostgreSQL's staging refuses NUL; a non-text value must not break the scan."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    staged = stage_values(
        [
            IdentityRow("cus_1", at, {"email": "ok"}),
            IdentityRow("cus_2", at, {"email": 5}),
            IdentityRow("cus_3", at, {"email": "a\x00b"}),
            IdentityRow("cus_4", at, {"email": None}),
        ],
        {"email": PropertyType.STRING},
        nul_forbidden=True,
    )
    assert [r.source_id for r in staged.rows] == ["cus_1", "cus_2", "cus_4"]
    assert staged.rejected == [
        ("cus_3", "column 'email': 'a\\x00b' contains a NUL character, which cannot be stored")
    ]


def test_refused_data_is_a_terminal_data_error_not_a_transient_warehouse_one() -> None:
    """Retrying a batch the engine refused cannot help (issue 10 item 2)."""
    error = RejectedData("DuckDB refused a value: out of range")
    assert isinstance(error, TerminalError)
    assert not isinstance(error, WarehouseError)
    assert error.transient is False


def test_a_refusal_no_single_row_explains_fails_the_batch_as_a_data_error() -> None:
    """Every row passes on its own, the batch never does: nothing is committed and the
    write fails with `RejectedData` (terminal), after trials that were all rolled back."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [IdentityRow(f"cus_{i}", at, {}) for i in range(4)]
    calls: list[tuple[int, bool]] = []

    def attempt(part: list[IdentityRow], commit: bool) -> WriteResult | Refused:
        calls.append((len(part), commit))
        if len(part) == len(rows):
            return Refused("the batch as a whole breaks a constraint")
        return WriteResult(inserted=len(part))

    with pytest.raises(RejectedData, match="as a whole") as caught:
        write_isolating(rows, attempt)
    assert not caught.value.transient
    assert calls == [(4, True), (2, False), (2, False), (4, True)]
