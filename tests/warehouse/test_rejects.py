"""Rows refused before staging: the engine-neutral checks of `rejects.stage_values`."""

from __future__ import annotations

from datetime import UTC, datetime

from headwater.adapters.warehouse.rejects import stage_values
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
