"""The editor's preview (templates/preview.html) shows customers' values as they are:
`tojson` wrote ``José O'Brien & Co <x>`` as ``Jos\\u00e9 O\\u0027Brien \\u0026 Co
\\u003cx\\u003e`` and sorted the keys; the text is now the JSON as it is, escaped by the
template (never markup)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser

from headwater.entrypoints.console.web import env
from headwater.services.pipelines.preview import Preview, Sample

NAME = "José O'Brien & Co <x>"


class _Page(HTMLParser):
    """The text of each <pre>, and every tag met."""

    def __init__(self) -> None:
        super().__init__()
        self.pres: list[str] = []
        self.tags: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "pre":
            self._in_pre = True
            self.pres.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pres[-1] += data


def test_the_preview_shows_values_verbatim_and_escaped() -> None:
    given = {"zip": "75001", "name": NAME, "id": "cus_1", "metadata": {"b": "ü", "a": "<b>"}}
    made = {"name": NAME, "email": "jose@example.com"}
    result = Preview(samples=[Sample("cus_1", given, "ok", made)], scanned=1)
    html = env.get_template("preview.html").render(result=result, error=None, problems=[])
    page = _Page()
    page.feed(html)
    assert page.pres == [
        json.dumps(given, ensure_ascii=False, indent=2),  # the keys in their own order
        json.dumps(made, ensure_ascii=False, indent=2),
    ]
    assert NAME in page.pres[0]
    assert "x" not in page.tags  # "<x>" is text
    assert "b" not in page.tags
    assert "José O&#39;Brien &amp; Co &lt;x&gt;" in html


def test_half_a_character_stays_an_escape() -> None:
    """A lone surrogate cannot be written as UTF-8: it stays ``\\ud800``."""
    given = {"name": "a\ud800b \U0001f600"}
    result = Preview(samples=[Sample("cus_2", given, "ok", None)], scanned=1)
    html = env.get_template("preview.html").render(result=result, error=None, problems=[])
    assert "&#34;name&#34;: &#34;a\\ud800b \U0001f600&#34;" in html
    html.encode()  # the answer can be sent


def test_a_sample_shows_the_row_a_run_writes_and_the_error_it_records() -> None:
    """The row is shown as the import converts it (an ISO 8601 datetime, a decimal as
    text); a sample that fails shows what the code returned, marked as not written,
    and the run's error, as text."""
    row = {"email": "a@example.com", "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    row |= {"credit": Decimal("12.500000000"), "since": date(2026, 1, 2)}
    error = "property 'created_at' (datetime): cannot convert \"<b>soon</b>\""
    result = Preview(
        samples=[
            Sample("cus_1", {"id": "cus_1"}, "ok", row, returned={"created_at": 1767323045}),
            Sample("cus_2", {"id": "cus_2"}, "error", None, error, "validate", {"x": "<i>"}),
        ],
        scanned=2,
    )
    html = env.get_template("preview.html").render(result=result, error=None, problems=[])
    page = _Page()
    page.feed(html)
    assert page.pres[1] == json.dumps(
        {
            "email": "a@example.com",
            "created_at": "2026-01-02T03:04:05+00:00",
            "credit": "12.5",  # as the API spells it
            "since": "2026-01-02",
        },
        indent=2,
    )
    assert "Warehouse row" in html
    assert page.pres[3] == json.dumps({"x": "<i>"}, indent=2)
    assert "Returned, not written" in html
    assert (
        "validate: property &#39;created_at&#39; (datetime): cannot convert &#34;&lt;b&gt;" in html
    )
    assert "b" not in page.tags
    assert "i" not in page.tags
