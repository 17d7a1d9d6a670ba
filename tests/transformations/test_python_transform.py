"""Python transformations: the contract (outcomes, validation, logs, pool life)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psutil
import pytest

from headwater.adapters.transformations.python import (
    PythonTransformation,
    compile_python,
    validate_python,
)
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import TransformFailure

TRIVIAL = """
def transform(customer):
    first, _, last = (customer.get("name") or "").partition(" ")
    return {"email": customer["email"].lower(), "first_name": first, "last_name": last}
"""


@pytest.fixture
def trivial() -> Iterator[PythonTransformation]:
    t = compile_python(TRIVIAL, time_limit=5.0)
    yield t
    t.close()


def test_transforms_a_batch_in_order(trivial: PythonTransformation) -> None:
    records = [{"email": f"A{i}@X.COM", "name": f"Ann Lee{i}"} for i in range(300)]
    out = trivial.transform(records)
    assert out[0] == {"email": "a0@x.com", "first_name": "Ann", "last_name": "Lee0"}
    assert out[299] == {"email": "a299@x.com", "first_name": "Ann", "last_name": "Lee299"}
    assert trivial.transform([]) == []


def test_skip_errors_and_wrong_types_are_per_record() -> None:
    source = """
import datetime, decimal
def transform(c):
    kind = c["kind"]
    if kind == "skip":
        return None
    if kind == "raise":
        raise ValueError("no good")
    if kind == "list":
        return [1]
    if kind == "exit":
        raise SystemExit(2)
    if kind == "set":
        return {"x": object()}
    if kind == "rich":
        return {"at": datetime.datetime(2024, 5, 1, 12, 0), "amount": decimal.Decimal("1.50")}
    return {"ok": kind}
"""
    with compile_python(source) as t:
        kinds = ["skip", "raise", "list", "exit", "set", "rich", "fine"]
        out = t.transform([{"kind": k} for k in kinds])
    assert out[0] is None
    assert out[1] == TransformFailure("ValueError: no good (line 8)")
    assert out[2] == TransformFailure("transform must return a dict or None, not list")
    assert out[3] == TransformFailure("transform called exit(2) (line 12)")
    assert isinstance(out[4], TransformFailure)
    assert out[4].message.startswith("the returned dict is not JSON")
    assert "object" in out[4].message
    assert out[5] == {"at": "2024-05-01T12:00:00", "amount": "1.50"}
    assert out[6] == {"ok": "fine"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def transform(c):\n    return {\n", "line 2: SyntaxError: '{' was never closed"),
        ("x = 1\n", "the code does not define a function named transform"),
        ("def transform(a, b):\n    pass\n", "line 1: transform must take exactly one"),
        ("async def transform(c):\n    pass\n", "line 1: transform must be a plain def"),
        ("def transform(c):\n  return 1\n return 2\n", "line 3: SyntaxError: unindent"),
    ],
)
def test_validate_rejects_with_line(source: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_python(source)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    "expression", ["-" * 300_000 + "1", "1" + " + 1" * 200_000, "lambda: " * 100_000 + "1"]
)
def test_validate_says_what_is_wrong_with_code_nested_too_deeply(expression: str) -> None:
    """CPython's parser gives up on deep nesting with a bare MemoryError or a
    RecursionError: the answer was 'the code cannot be compiled: MemoryError: '."""
    with pytest.raises(InvalidInput) as caught:
        validate_python(f"def transform(c):\n    return {expression}\n")
    assert caught.value.message == (
        "the code cannot be compiled: an expression or a block is nested too deeply"
    )


def test_validate_gives_no_line_it_does_not_know() -> None:
    """A NUL character in the source was 'line None: SyntaxError: ...'."""
    with pytest.raises(InvalidInput) as caught:
        validate_python("def transform(c):\n    return {'a': 1}\x00\n")
    assert caught.value.message == "SyntaxError: source code string cannot contain null bytes"


def test_validate_does_not_execute_module_code(tmp_path: os.PathLike[str]) -> None:
    marker = os.path.join(tmp_path, "ran")
    validate_python(f"open({marker!r}, 'w').write('x')\ndef transform(c):\n    return c\n")
    assert not os.path.exists(marker)


def test_top_level_failure_is_rejected_at_compile_with_line() -> None:
    """The line is given once, where the error is located (as JavaScript's): the
    message said ``line 2: RuntimeError: boom (line 2)``."""
    with pytest.raises(InvalidInput) as caught:
        compile_python("import json\nraise RuntimeError('boom')\ndef transform(c):\n    pass\n")
    assert caught.value.message == "line 2: top-level code failed: RuntimeError: boom"
    assert caught.value.location == "line 2"
    with pytest.raises(InvalidInput) as caught:  # raised in a function it calls
        compile_python("def f():\n    return 1 / 0\n\nf()\ndef transform(c):\n    pass\n")
    assert caught.value.message == (
        "line 2: top-level code failed: ZeroDivisionError: division by zero"
    )
    with pytest.raises(InvalidInput) as caught:  # not transform: it was never called
        compile_python("import sys\nsys.exit(2)\ndef transform(c):\n    pass\n")
    assert caught.value.message == "line 2: the top-level code called exit(2)"
    with pytest.raises(InvalidInput, match="does not define a function named transform"):
        compile_python("transform = 3\n")


def test_print_is_captured_and_capped() -> None:
    source = "def transform(c):\n    print('seen', c['n'])\n    return None\n"
    with compile_python(source, log_cap=3) as t:
        assert t.transform([{"n": n} for n in range(5)]) == [None] * 5
        assert t.logs() == ["seen 0", "seen 1", "seen 2", "… 2 more lines not shown"]
        assert t.logs() == []


def test_code_is_compiled_once_and_state_survives_batches() -> None:
    source = "calls = []\ndef transform(c):\n    calls.append(1)\n    return {'n': len(calls)}\n"
    with compile_python(source) as t:
        assert t.transform([{}, {}]) == [{"n": 1}, {"n": 2}]
        assert t.transform([{}]) == [{"n": 3}]


def test_several_workers_split_a_batch_and_keep_order() -> None:
    source = "import os\ndef transform(c):\n    return {'i': c['i'], 'pid': os.getpid()}\n"
    with compile_python(source, workers=2) as t:
        out = t.transform([{"i": i} for i in range(400)])
        assert [o["i"] for o in out if isinstance(o, dict)] == list(range(400))
        assert len({o["pid"] for o in out if isinstance(o, dict)}) == 2


def test_workers_are_gone_after_close() -> None:
    t = compile_python(TRIVIAL, workers=2)
    t.transform([{"email": "A@B", "name": "x"}] * 200)
    pids = t.pids()
    assert len(pids) == 2
    assert all(psutil.pid_exists(pid) for pid in pids)
    t.close()
    assert t.pids() == []
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_half_a_character_fails_its_record_not_the_batch() -> None:
    """A lone surrogate printed, raised or returned, and an exception whose text cannot
    be had, are each their own record's error: they used to kill the worker while it
    wrote the batch's reply, failing every record of the batch."""
    source = """
class Odd(Exception):
    def __str__(self):
        raise RuntimeError("no text")

def transform(c):
    kind = c["kind"]
    if kind == "print":
        print("initial", "\\ud83d")
    if kind == "raise":
        raise ValueError("bad \\ud83d")
    if kind == "odd":
        raise Odd()
    if kind == "return":
        return {"first_name": "\\ud83d"}
    return {"kind": kind}
"""
    t = compile_python(source, time_limit=5.0, workers=1)
    try:
        out = t.transform([{"kind": k} for k in ("print", "raise", "odd", "return", "ok")])
        assert out[0] == {"kind": "print"}
        assert isinstance(out[1], TransformFailure)
        assert out[1].message.startswith("ValueError: bad \\ud83d")
        assert isinstance(out[2], TransformFailure)
        assert out[2].message.startswith("Odd")
        assert isinstance(out[3], TransformFailure)
        assert out[4] == {"kind": "ok"}
        assert t.logs() == ["initial \\ud83d"]
    finally:
        t.close()


def test_top_level_failure_with_half_a_character_is_a_clear_error() -> None:
    """The worker's start-up answer escapes a lone surrogate (half an emoji) as
    ``\\ud83d``, which the strict decoder refused: a JSONDecodeError traceback instead
    of the error that says what failed and where."""
    with pytest.raises(InvalidInput) as caught:
        compile_python("x = chr(0xD83D)\nraise ValueError('bad ' + x)\ndef transform(c): pass\n")
    assert caught.value.message == "line 2: top-level code failed: ValueError: bad \\ud83d"
    assert caught.value.message.encode("utf-8")  # storable text


def test_nan_and_infinity_returned_are_record_errors_not_nulls() -> None:
    """JSON has no NaN or Infinity: the reply's encoder wrote them as null, so a score
    of NaN was imported as a missing one without a word (a value the mapping language
    and the Customer Model refuse, naming the property)."""
    source = """
def transform(c):
    v = float(c["v"])
    if c["where"] == "top":
        return {"score": v, "note": None}
    return {"metadata": {"a": [1, {"b": v}]}, "note": None}
"""
    t = compile_python(source, time_limit=5.0, workers=1)
    try:
        cases = [("top", "nan"), ("deep", "-inf"), ("top", "1.5"), ("deep", "-0.0")]
        out = t.transform([{"where": w, "v": v} for w, v in cases])
        assert isinstance(out[0], TransformFailure)
        assert out[0].message == (
            "the returned dict is not JSON: NaN at 'score' (JSON has no NaN or Infinity)"
        )
        assert isinstance(out[1], TransformFailure)
        assert "-Infinity at 'metadata.a[1].b'" in out[1].message
        assert out[2] == {"score": 1.5, "note": None}
        assert out[3] == {"metadata": {"a": [1, {"b": -0.0}]}, "note": None}
    finally:
        t.close()


def test_a_value_json_cannot_hold_is_an_error_naming_where() -> None:
    """orjson refuses an integer past 64 bits, a key that is not text, a value of
    another type and a lone surrogate, and its message ('Integer exceeds 64-bit range')
    said neither which property nor where in it; the error now names the path."""
    source = """
def transform(c):
    kind = c["kind"]
    if kind == "big":
        return {"email": "a", "metadata": {"a": [1, 2**64]}}
    if kind == "small":
        return {"score": -2**63 - 1}
    if kind == "key":
        return {"metadata": {"tiers": {1: "gold"}}}
    if kind == "object":
        return {"metadata": {"x": [{"y": object()}]}}
    if kind == "surrogate":
        return {"nickname": "a\\ud800b"}
    return {"score": 2**63 - 1, "metadata": {"u64": 2**64 - 1}}
"""
    expected = {
        "big": "an integer past 64 bits at 'metadata.a[1]'",
        "small": "an integer past 64 bits at 'score'",
        "key": "a key that is not text (int) in 'metadata.tiers'",
        "object": "a value of type object at 'metadata.x[0].y'",
        "surrogate": "a lone surrogate in the text at 'nickname'",
    }
    with compile_python(source, time_limit=5.0, workers=1) as t:
        out = t.transform([{"kind": k} for k in [*expected, "fine"]])
    for (kind, where), got in zip(expected.items(), out, strict=False):
        assert isinstance(got, TransformFailure), kind
        assert got.message == f"the returned dict is not JSON: {where}"
    assert out[-1] == {"score": 2**63 - 1, "metadata": {"u64": 2**64 - 1}}


def test_stdlib_that_imports_lazily_works_in_the_sandbox() -> None:
    """The chrooted worker can import only what was loaded before the chroot, so
    ``datetime.strptime`` (which imports ``_strptime`` on first use) and decoding a
    UTF-8 file's byte-order mark failed with 'No module named _strptime' / 'unknown
    encoding' on every record."""
    source = """
import datetime, codecs
def transform(c):
    signup = datetime.datetime.strptime(c["signup"], "%d/%m/%Y")
    return {
        "signup": signup.date().isoformat(),
        "year": datetime.date.fromisoformat("2024-03-01").strftime("%Y"),
        "plain": c["raw"].encode("latin-1").decode("utf-8-sig"),
        "le": "a".encode("utf-16-le").hex() + "a".encode("utf-32-be").hex(),
        "escaped": "é".encode("unicode_escape").decode(),
        "hex": codecs.encode(b"hi", "hex").decode(),
    }
"""
    t = compile_python(source, time_limit=5.0, workers=1)
    try:
        [out] = t.transform([{"signup": "31/12/2023", "raw": "\u00ef\u00bb\u00bfann"}])
        assert out == {
            "signup": "2023-12-31",
            "year": "2024",
            "plain": "ann",
            "le": "6100" + "00000061",
            "escaped": "\\xe9",
            "hex": "6869",
        }
    finally:
        t.close()


def test_a_nul_character_in_an_error_or_a_line_is_shown_not_kept() -> None:
    """PostgreSQL text cannot hold NUL: one record whose error message held it (from
    the code, or a customer's value quoted in it) made every progress update of the run
    fail on a PostgreSQL store, so no error of the run was stored.  It shows as its
    escape, like half a character."""
    source = """
def transform(c):
    print("seen", c["name"])
    raise ValueError("bad name " + c["name"])
"""
    t = compile_python(source, time_limit=5.0, workers=1)
    try:
        [out] = t.transform([{"name": "a\x00b"}])
        assert out == TransformFailure("ValueError: bad name a\\u0000b (line 4)")
        assert t.logs() == ["seen a\\u0000b"]
    finally:
        t.close()


def test_time_zones_can_be_used_in_the_sandbox() -> None:
    """zoneinfo is importable, but the chroot hides the system's time-zone files, so
    ZoneInfo("Europe/Paris") failed on every record with 'cannot import name resources
    from importlib'; the zones are now read before the chroot."""
    source = """
import datetime, zoneinfo
def transform(c):
    try:
        zoneinfo.ZoneInfo(c["bad"])
    except zoneinfo.ZoneInfoNotFoundError as exc:
        missing = str(exc)
    zone = zoneinfo.ZoneInfo(c["zone"])
    local = datetime.datetime.fromtimestamp(c["created"], zone)
    return {"local": local.isoformat(), "missing": missing,
            "known": "America/New_York" in zoneinfo.available_timezones()}
"""
    t = compile_python(source, time_limit=5.0, workers=1)
    try:
        [out] = t.transform([{"zone": "Europe/Paris", "created": 1719835200, "bad": "Mars/Base"}])
        assert out == {
            "local": "2024-07-01T14:00:00+02:00",
            "missing": "'No time zone found with key Mars/Base'",
            "known": True,
        }
    finally:
        t.close()
