"""The README's REST API section names routes that exist: every ``METHOD /path`` it
gives (``GET|PUT /warehouse``, ``POST /pipelines/{id}/enable|disable``) is an operation
of the API's OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

from tests.api.conftest import Tenant

README = Path(__file__).parents[2] / "README.md"
_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE)"
_MENTION = re.compile(rf"`({_METHOD}(?:\|{_METHOD})*) (/[^`?\s]*)`")


def _mentions() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The same flow over the REST API", 1)[1].split("\n## ", 1)[0]
    found = []
    for match in _MENTION.finditer(section):
        head, _, last = match.group(2).rpartition("/")
        for method in match.group(1).split("|"):
            found += [(method, f"{head}/{segment}") for segment in last.split("|")]
    return found


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_route_the_readme_names_exists(tenant: Tenant) -> None:
    """It gave ``GET|POST /model`` for adding a property: POST /model answers 405 (the
    route is POST /model/properties)."""
    document = tenant.http.get("/openapi.json").json()
    operations = {(m.upper(), _shape(p)) for p, item in document["paths"].items() for m in item}
    mentions = _mentions()
    assert len(mentions) > 10  # the section was found and read
    missing = [(m, p) for m, p in mentions if (m, _shape(p)) not in operations]
    assert missing == []
