"""The names people give tokens and workspaces: trimmed, one to `MAX` characters, no
control characters (a name is shown in tables and pages; a newline or an escape in it
would only deceive)."""

from __future__ import annotations

import re

from headwater.kernel.errors import InvalidInput

MAX = 200
_CONTROL = re.compile("[\x00-\x1f\x7f]")
#: The same rule as a JSON Schema pattern, for the API's documents.
PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def checked_name(name: str, what: str) -> str:
    """`name` trimmed; `InvalidInput` (field ``name``) when it breaks the rule above."""
    if _CONTROL.search(name):
        raise InvalidInput(f"a {what} name cannot hold control characters", "name")
    name = name.strip()
    if not name or len(name) > MAX:
        raise InvalidInput(f"a {what} needs a name of 1 to {MAX} characters", "name")
    return name
