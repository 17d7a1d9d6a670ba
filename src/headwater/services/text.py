"""Text no store keeps: the NUL character, and half a character.

PostgreSQL refuses it in text, whether written or only looked up with, so a name, an
email, a URL or an id holding one failed half way through a change (a database error,
a 500 or a traceback).  Every service checks what it is given first: text to keep is
`InvalidInput` naming the field (`refuse_nul`), an id to look up names nothing
(`known_id`: `NotFound`, as any unknown id).  The API refuses it at its edge too, in
the same words.  Nor can any store or warehouse be sent half a character (a lone
surrogate, which a Python string may hold: the CLI's arguments carry undecodable bytes
as such, ``\udcff``): `refuse_surrogate` refuses it, and no id holds one either.
"""

from __future__ import annotations

import re

from headwater.kernel.errors import InvalidInput, NotFound

NUL = "\x00"
NUL_REFUSED = "text cannot hold the NUL character (\\u0000)"
SURROGATE_REFUSED = "text cannot hold a lone surrogate (half of a character, not UTF-8)"
_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_nul(text: str, field: str) -> str:
    """`text`; `InvalidInput` at `field` when it holds the NUL character."""
    if NUL in text:
        raise InvalidInput(NUL_REFUSED, field)
    return text


def refuse_surrogate(text: str, field: str) -> str:
    """`text`; `InvalidInput` at `field` when it holds a lone surrogate."""
    if _SURROGATE.search(text):
        raise InvalidInput(SURROGATE_REFUSED, field)
    return text


def unknowable(entity_id: str) -> bool:
    """Whether no store can be asked about `entity_id` (it holds NUL or a surrogate)."""
    return NUL in entity_id or _SURROGATE.search(entity_id) is not None


def known_id(entity_id: str, noun: str) -> str:
    """`entity_id`; `NotFound` (``no <noun> with id '…'``) when it holds the NUL
    character or a lone surrogate: no id holds one, and the store cannot be asked."""
    if unknowable(entity_id):
        raise NotFound(f"no {noun} with id {entity_id!r}")
    return entity_id
