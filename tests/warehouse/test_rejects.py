"""Rows refused before staging: the engine-neutral checks of `rejects.stage_values`."""

from __future__ import annotations

from datetime import UTC, datetime

from headwater.adapters.warehouse.contract import WarehouseError
from headwater.adapters.warehouse.rejects import RejectedData, stage_values
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
