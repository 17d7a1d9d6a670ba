"""JavaScript transformations: the contract, and hostile code contained in V8."""

from __future__ import annotations

import pytest

from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.javascript import (
    JavaScriptTransformation,
    compile_javascript,
    validate_javascript,
)
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import TransformFailure

TRIVIAL = """
function transform(customer) {
  const [first, ...rest] = (customer.name || "").split(" ");
  return {email: customer.email.toLowerCase(), first_name: first, last_name: rest.join(" ")};
}
"""
GOOD = [{"evil": False, "email": "A@B.COM"}]
EVIL = [{"evil": True, "email": "A@B.COM"}]


def hostile(attack: str, time_limit: float = 1.0) -> JavaScriptTransformation:
    source = (
        "function transform(c) {\n  if (c.evil) {\n" + attack + "\n  }\n"
        "  return {email: c.email.toLowerCase()};\n}\n"
    )
    return compile_javascript(source, time_limit=time_limit, memory_limit_mb=64)


def test_transforms_a_batch_in_order() -> None:
    t = compile_javascript(TRIVIAL)
    records = [{"email": f"A{i}@X.COM", "name": f"Ann Lee {i}"} for i in range(300)]
    out = t.transform(records)
    assert out[0] == {"email": "a0@x.com", "first_name": "Ann", "last_name": "Lee 0"}
    assert out[299] == {"email": "a299@x.com", "first_name": "Ann", "last_name": "Lee 299"}
    assert t.transform([]) == []
    t.close()


def test_skip_errors_and_wrong_types_are_per_record() -> None:
    source = """
function transform(c) {
  switch (c.kind) {
    case "skip": return null;
    case "undefined": return;
    case "throw": throw new TypeError("no good");
    case "throw-string": throw "plain";
    case "array": return [1];
    case "number": return 5;
    case "bigint": return {n: 10n};
    case "date": return {at: new Date(Date.UTC(2024, 4, 1))};
  }
  return {ok: c.kind};
}
"""
    t = compile_javascript(source)
    kinds = ["skip", "undefined", "throw", "throw-string", "array", "number", "bigint", "date", "x"]
    out = t.transform([{"kind": k} for k in kinds])
    assert out[:2] == [None, None]
    assert out[2] == TransformFailure("TypeError: no good (line 6)")
    assert out[3] == TransformFailure("transform threw plain")
    assert out[4] == TransformFailure("transform must return an object or null, not an array")
    assert out[5] == TransformFailure("transform must return an object or null, not a number")
    assert isinstance(out[6], TransformFailure)
    assert "BigInt" in out[6].message
    assert out[7] == {"at": "2024-05-01T00:00:00.000Z"}
    assert out[8] == {"ok": "x"}
    t.close()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("function transform(c) {\n  return {\n}}}", "line 3: SyntaxError: Unexpected token '}'"),
        ("var x = 1;", "the code does not define a function named transform"),
        ("\n\nfoo.bar();", "line 3: top-level code failed: ReferenceError: foo is not defined"),
        ("while (true) {}\nfunction transform(c) {}", "top-level code did not finish"),
    ],
)
def test_validate_rejects_with_line(source: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_javascript(source)
    assert caught.value.message.startswith(message)


def test_arrow_function_and_const_are_accepted() -> None:
    source = "const transform = (c) => ({email: c.email});"
    assert validate_javascript(source) is None  # no InvalidInput
    t = compile_javascript(source)
    assert t.transform([{"email": "a@b.c"}]) == [{"email": "a@b.c"}]
    t.close()


def test_console_output_is_captured_and_capped() -> None:
    source = "function transform(c) { console.log('seen', c.n, {a: 1}); return null; }"
    t = compile_javascript(source, log_cap=3)
    assert t.transform([{"n": n} for n in range(5)]) == [None] * 5
    assert t.logs() == [
        'seen 0 {"a":1}',
        'seen 1 {"a":1}',
        'seen 2 {"a":1}',
        "… 2 more lines not shown",
    ]
    assert t.logs() == []
    t.close()


def test_state_survives_batches_compiled_once() -> None:
    t = compile_javascript("let n = 0;\nfunction transform(c) { n++; return {n: n}; }")
    assert t.transform([{}, {}]) == [{"n": 1}, {"n": 2}]
    assert t.transform([{}]) == [{"n": 3}]
    t.close()


def test_infinite_loop_hits_the_time_limit_and_the_next_batch_runs() -> None:
    t = hostile("while (true) {}")
    with pytest.raises(BatchFailed) as caught:
        t.transform(EVIL + GOOD)
    assert caught.value.message == "JavaScript transformation, batch 1: time limit of 1 s exceeded"
    assert (caught.value.reason, caught.value.records_at_fault) == (
        "time limit of 1 s exceeded",
        True,
    )
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    t.close()


def test_memory_bomb_hits_the_memory_limit() -> None:
    t = hostile("const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); }", 5.0)
    with pytest.raises(BatchFailed, match="batch 1: memory limit of 64 MB exceeded"):
        t.transform(EVIL)
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    t.close()


def test_deep_recursion_is_a_record_error() -> None:
    t = hostile("function f(n) { return f(n + 1); }\nreturn f(0);")
    [result] = t.transform(EVIL)
    assert isinstance(result, TransformFailure)
    assert result.message.startswith("RangeError: Maximum call stack size exceeded")
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    t.close()


def test_huge_return_values() -> None:
    t = hostile("return {x: 'a'.repeat(c.size)};", 5.0)
    [big] = t.transform([{"evil": True, "size": 2_000_000, "email": ""}])
    assert isinstance(big, TransformFailure)
    assert "too large" in big.message
    [huge] = t.transform([{"evil": True, "size": 2**31, "email": ""}])
    assert isinstance(huge, TransformFailure)
    assert huge.message.startswith("RangeError: Invalid string length")
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    t.close()


@pytest.mark.parametrize(
    "name", ["require", "process", "fetch", "XMLHttpRequest", "setTimeout", "FinalizationRegistry"]
)
def test_host_apis_are_absent(name: str) -> None:
    t = hostile(f"return {{kind: typeof {name}}};")
    assert t.transform(EVIL) == [{"kind": "undefined"}]
    t.close()


def test_calling_host_apis_is_a_record_error() -> None:
    t = hostile("return {x: require('fs').readFileSync('/proc/self/environ', 'utf8')};")
    [result] = t.transform(EVIL)
    assert result == TransformFailure("ReferenceError: require is not defined (line 3)")
    t.close()


def test_dynamic_import_cannot_load_files() -> None:
    t = hostile(
        "let got = 'nothing'; import('/etc/passwd').then((m) => { got = m; });\n"
        "return {got: String(got)};"
    )
    assert t.transform(EVIL) == [{"got": "nothing"}]
    t.close()


def test_patching_globals_cannot_break_the_runtime() -> None:
    source = """
function transform(c) {
  JSON.parse = () => [];
  JSON.stringify = () => "{}";
  Array.prototype.join = () => "";
  return {email: c.email};
}
"""
    t = compile_javascript(source)
    assert t.transform([{"email": "a"}, {"email": "b"}]) == [{"email": "a"}, {"email": "b"}]
    assert t.transform([{"email": "c"}]) == [{"email": "c"}]
    t.close()


# Run in a fresh interpreter so that its peak memory is its own: the server's process
# (this one) and the processes it starts, measured separately.
_ARRAY_BUFFER_BOMB = r"""
import json, resource, sys
from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.javascript import compile_javascript

source = '''
const keep = [];
function transform(c) {
  for (let i = 0; i < 12; i++) { keep.push(new Uint8Array(256 << 20).fill(7)); }
  return {n: keep.length};
}
'''
t = compile_javascript(source, time_limit=20.0, memory_limit_mb=128)
try:
    outcome = repr(t.transform([{"id": "cus_1"}]))
except BatchFailed as exc:
    outcome = exc.message
t.close()
# This process's peak from VmHWM: ru_maxrss survives exec, so it would report the
# peak of whatever process forked us (a test runner of several hundred MB).
with open("/proc/self/status") as status:
    own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "own_mb": own // 1024,
                  "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}))
"""


def test_array_buffers_count_against_the_memory_limit() -> None:
    """Issue 17 §4: ArrayBuffer backing stores live outside V8's heap; 12 x 256 MB of
    them must fail the batch on the memory limit, and no process grow past it."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _ARRAY_BUFFER_BOMB],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert (
        report["outcome"] == "JavaScript transformation, batch 1: memory limit of 128 MB exceeded"
    )
    assert report["own_mb"] < 400  # the server's process: no array buffers in it
    assert report["children_mb"] < 128 + 200  # the limit plus the runtime itself


def test_buffers_and_heap_together_hit_the_limit_and_the_next_batch_runs() -> None:
    """Buffers first, then a heap that can no longer grow: V8 ends the worker, the
    batch fails on the memory limit and a new worker takes the next batch."""
    t = hostile(
        "const keep = [];\n"
        "for (let i = 0; i < 3; i++) { keep.push(new Uint8Array(20 << 20).fill(1)); }\n"
        "while (true) { keep.push(new Array(1e6).fill({a: 1})); }",
        10.0,
    )
    first = t.pid()
    with pytest.raises(BatchFailed, match="batch 1: memory limit of 64 MB exceeded"):
        t.transform(EVIL)
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    assert t.pid() not in (None, first)
    t.close()
    assert t.pid() is None


def test_webassembly_memory_counts_against_the_memory_limit() -> None:
    t = hostile(
        "const keep = [];\n"
        "for (let i = 0; i < 8; i++) {\n"
        "  const m = new WebAssembly.Memory({initial: 4096, maximum: 4096});\n"
        "  new Uint8Array(m.buffer).fill(1); keep.push(m);\n"
        "}",
        10.0,
    )
    with pytest.raises(BatchFailed, match="batch 1: memory limit of 64 MB exceeded"):
        t.transform(EVIL)
    assert t.transform(GOOD) == [{"email": "a@b.com"}]
    t.close()


def test_half_an_emoji_is_a_record_error_not_a_failed_batch() -> None:
    """A string cut inside a surrogate pair (an emoji's first half) is not Unicode:
    the record that returns or logs it fails alone, with a message that says why (it
    used to fail the whole batch, and so the run, on the reply's decoding)."""
    source = """
function transform(c) {
  if (c.kind === "cut") { return {first_name: c.name.substring(0, 1)}; }
  if (c.kind === "log") { console.log("initial", c.name.substring(0, 1)); }
  if (c.kind === "throw") { throw new Error("bad " + c.name.substring(0, 1)); }
  return {first_name: c.name};
}
"""
    t = compile_javascript(source)
    out = t.transform(
        [
            {"kind": "cut", "name": "😀x"},
            {"kind": "ok", "name": "😀 Ann"},
            {"kind": "log", "name": "😀"},
            {"kind": "throw", "name": "😀"},
        ]
    )
    assert isinstance(out[0], TransformFailure)
    assert "not valid Unicode" in out[0].message
    assert out[1] == {"first_name": "😀 Ann"}
    assert out[2] == {"first_name": "😀"}
    assert isinstance(out[3], TransformFailure)
    assert out[3].message.startswith("Error: bad ")
    assert t.logs() == ["initial \\ud83d"]
    t.close()


@pytest.mark.parametrize(
    "attack",
    [
        '__headwater__.run = () => \'{"out":[{}],"errors":[[7,"x"]],"logs":[],"dropped":0}\';',
        '__headwater__.run = () => "[1]";',
        '__headwater__.run = () => \'{"out":[null],"errors":[],"logs":5,"dropped":"z"}\';',
    ],
)
def test_a_forged_or_broken_reply_fails_the_batch_not_the_run(attack: str) -> None:
    """User code can replace what writes the reply: whatever comes back, a malformed
    reply fails its batch (`BatchFailed`), never raises something else."""
    t = compile_javascript(f"{attack}\nfunction transform(c) {{ return {{a: [1]}}; }}")
    with pytest.raises(BatchFailed):
        t.transform([{"n": 1}])
    t.close()


def test_an_error_message_is_capped() -> None:
    """What a transform throws is kept per record in the run's errors: at most 2,000
    characters of it (an 8 MB message was kept whole, for each of 1,000 errors)."""
    t = compile_javascript('function transform(c) { throw new Error("x".repeat(8e6)); }')
    [out] = t.transform([{"n": 1}])
    assert isinstance(out, TransformFailure)
    assert out.message.startswith("Error: xxx")
    assert len(out.message) == 2001
    t.close()


def test_nan_and_infinity_returned_are_record_errors_not_nulls() -> None:
    """JSON.stringify writes NaN and Infinity as null, so a score of NaN (0/0, a
    Number() of text) was imported as a missing one without a word (a value the
    mapping language and the Customer Model refuse, naming the property)."""
    source = """
function transform(c) {
  const v = Number(c.v);
  if (c.where === "top") { return {score: v, note: null}; }
  return {metadata: {a: [1, {b: v}]}, note: null};
}
"""
    t = compile_javascript(source)
    cases = [("top", "NaN"), ("deep", "-Infinity"), ("top", "1.5"), ("deep", "2")]
    out = t.transform([{"where": w, "v": v} for w, v in cases])
    assert isinstance(out[0], TransformFailure)
    assert out[0].message == (
        "the returned object is not JSON: NaN at 'score' (JSON has no NaN or Infinity)"
    )
    assert isinstance(out[1], TransformFailure)
    assert "-Infinity at 'metadata.a[1].b'" in out[1].message
    assert out[2] == {"score": 1.5, "note": None}
    assert out[3] == {"metadata": {"a": [1, {"b": 2}]}, "note": None}
    t.close()


def test_an_invalid_date_returned_is_a_record_error_not_a_null() -> None:
    """new Date() of text it cannot read is an Invalid Date, which JSON.stringify writes
    as null: a signup date the transform could not parse was imported as none."""
    source = """
function transform(c) {
  return {signed_up_at: new Date(c.metadata.signup), list: [new Date(0)], note: null};
}
"""
    t = compile_javascript(source)
    out = t.transform([{"metadata": {"signup": "next tuesday"}}, {"metadata": {"signup": 0}}])
    assert isinstance(out[0], TransformFailure)
    assert out[0].message == (
        "the returned object is not JSON: an Invalid Date at 'signed_up_at' "
        "(JSON writes it as null)"
    )
    assert out[1] == {
        "signed_up_at": "1970-01-01T00:00:00.000Z",
        "list": ["1970-01-01T00:00:00.000Z"],
        "note": None,
    }
    t.close()


def test_a_value_json_cannot_hold_is_not_blamed_on_a_line_of_the_users_code() -> None:
    """A BigInt returned fails in the runtime's own JSON.stringify, whose line (74 of
    the runtime's glue) was reported as the line of the user's code, which had one."""
    t = compile_javascript("function transform(c) { return {n: 1n}; }")
    [out] = t.transform([{}])
    assert out == TransformFailure(
        "the returned object is not JSON: a BigInt at 'n' (JSON has none: return it as a "
        "string, or as a number when it is within 2^53)"
    )
    t.close()


def test_a_bigint_returned_is_an_error_naming_where() -> None:
    """JSON.stringify refuses a BigInt ('Do not know how to serialize a BigInt') without
    saying which property held it; the error now names the path.  What the walk cannot
    see (a BigInt made by a toJSON, a cycle) keeps V8's own message."""
    source = """
function transform(c) {
  if (c.k === "deep") { return {email: "a", metadata: {ids: [1, {big: 2n ** 64n}]}}; }
  if (c.k === "tojson") { return {metadata: {toJSON() { return {n: 5n}; }}}; }
  if (c.k === "cycle") { const o = {}; o.self = {o}; return {metadata: o}; }
  return {metadata: {big: String(2n ** 64n)}};
}
"""
    t = compile_javascript(source)
    deep, tojson, cycle, text = t.transform([{"k": k} for k in ("deep", "tojson", "cycle", "x")])
    assert isinstance(deep, TransformFailure)
    assert deep.message.startswith(
        "the returned object is not JSON: a BigInt at 'metadata.ids[1].big' (JSON has none"
    )
    assert tojson == TransformFailure("TypeError: Do not know how to serialize a BigInt")
    assert isinstance(cycle, TransformFailure)
    assert "circular structure" in cycle.message
    assert text == {"metadata": {"big": "18446744073709551616"}}
    t.close()


def test_a_result_nested_too_deep_fails_its_record_not_the_batch() -> None:
    """A result nested 2,000 deep is written by JSON.stringify, but the reply holding it
    is past what the reply's reader takes (1,024 levels): the whole batch was lost,
    every record of it counted as failed."""
    source = """
function transform(c) {
  let o = 1;
  for (let i = 0; i < c.depth; i++) { o = (i % 2) ? [o] : {k: o}; }
  return {metadata: o, text: "[[[[{{{{"};
}
"""
    t = compile_javascript(source)
    out = t.transform([{"depth": 0}, {"depth": 2000}, {"depth": 254}, {"depth": 255}])
    assert out[0] == {"metadata": 1, "text": "[[[[{{{{"}
    assert out[1] == TransformFailure(
        "the returned object is nested deeper than 255 levels (arrays and objects)"
    )
    assert isinstance(out[2], dict)
    assert isinstance(out[3], TransformFailure)
    t.close()
