"""Files the command line reads: keys, definitions, transformations' code, lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from headwater.kernel import json_text
from headwater.kernel.errors import InvalidInput

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


#: The largest key, definition or code file read: a file that never ends (/dev/zero
#: given by mistake) was read whole, until memory ran out.
MAX_FILE_BYTES = 8 << 20


def text_file(path: Path, option: str) -> str:
    """The file's text, read as UTF-8: bytes that are not name the file and the byte;
    one larger than `MAX_FILE_BYTES` is refused unread past that."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, more than a key, a definition "
            "or a transformation's code holds",
            option,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at position {exc.start} "
            f"(line {line})",
            option,
        ) from None


def json_file(path: Path, option: str) -> Any:
    text = text_file(path, option)
    if not text.strip():
        raise InvalidInput(f"{path}: the file is empty", option)
    try:
        return json_text.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})", option
        ) from None
    except RecursionError:  # thousands of nested brackets: not a definition
        raise InvalidInput(f"{path}: nested too deeply to read", option) from None
