"""Text no metadata store keeps: the NUL character.

PostgreSQL refuses it in text, whether written or only looked up with, so a name, an
email, a URL or an id holding one failed half way through a change (a database error,
a 500 or a traceback).  Every service checks what it is given first: text to keep is
`InvalidInput` naming the field (`refuse_nul`), an id to look up names nothing
(`known_id`: `NotFound`, as any unknown id).  The API refuses it at its edge too, in
the same words.
"""

from __future__ import annotations

from headwater.kernel.errors import InvalidInput, NotFound

NUL = "\x00"
NUL_REFUSED = "text cannot hold the NUL character (\\u0000)"


def refuse_nul(text: str, field: str) -> str:
    """`text`; `InvalidInput` at `field` when it holds the NUL character."""
    if NUL in text:
        raise InvalidInput(NUL_REFUSED, field)
    return text


def known_id(entity_id: str, noun: str) -> str:
    """`entity_id`; `NotFound` (``no <noun> with id '…'``) when it holds the NUL
    character: no id holds one, and the store cannot be asked about it."""
    if NUL in entity_id:
        raise NotFound(f"no {noun} with id {entity_id!r}")
    return entity_id
