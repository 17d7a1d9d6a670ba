"""JavaScript transformations: what one record does stays that record's (or batch's)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.javascript import compile_javascript
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import TransformFailure


@pytest.mark.parametrize(
    "thrown",
    [
        'Object.defineProperty(new Error("a"), "message", {get() { throw 1; }})',
        'Object.defineProperty(new Error("a"), "name", {get() { throw 1; }})',
        "{toJSON() { throw 1; }, toString() { throw 1; }}",
        "new Proxy({}, {get() { throw 1; }, ownKeys() { throw 1; }})",
        "new Proxy({}, {getPrototypeOf() { throw 1; }})",
        'Object.defineProperty(new RangeError("a"), "message", {get() { throw 1; }})',
    ],
)
def test_an_error_that_cannot_be_described_fails_only_its_record(thrown: str) -> None:
    """Describing what was thrown ran getters and toString of user objects outside any
    guard: one record failed its whole batch as "runtime failure"."""
    source = f"function transform(c) {{ if (c.n === 1) {{ throw {thrown}; }} return {{n: c.n}}; }}"
    t = compile_javascript(source)
    out = t.transform([{"n": 0}, {"n": 1}, {"n": 2}])
    assert out[0] == {"n": 0}
    assert out[2] == {"n": 2}
    assert isinstance(out[1], TransformFailure)
    assert "could not be described" in out[1].message
    t.close()


def test_big_error_messages_are_capped_in_the_isolate() -> None:
    """Each record's message is cut to 2,000 characters before it joins the reply: 300
    records throwing 1 MB each used to fail the batch on the memory limit."""
    t = compile_javascript(
        'function transform(c) { throw new Error("x".repeat(1 << 20) + c.n); }',
        memory_limit_mb=256,
    )
    out = t.transform([{"n": i} for i in range(300)])
    assert all(isinstance(o, TransformFailure) for o in out)
    assert all(o.message.startswith("Error: xxx") for o in out)  # type: ignore[union-attr]
    assert max(len(o.message) for o in out) <= 2001  # type: ignore[union-attr]
    t.close()


def test_user_code_cannot_lift_the_size_limits() -> None:
    """The isolate's glue is reachable from user code: calling its setup again lifted
    the 1 MiB limit on one record's result and the 2,000 characters of a log line.
    The server now holds the worker's reply to those limits itself."""
    source = """
__headwater__.setup(1e9, 1e9);
function transform(c) {
  __headwater__.setup(1e9, 1e9);
  console.log("y".repeat(10000));
  return c.big ? {a: "x".repeat(3e6)} : {a: "small"};
}
"""
    t = compile_javascript(source)
    big, small = t.transform([{"big": True}, {"big": False}])
    assert isinstance(big, TransformFailure)
    assert big.message.startswith("the returned object is too large (3000008 characters")
    assert small == {"a": "small"}
    assert [len(line) for line in t.logs()] == [2001, 2001]
    t.close()


def test_a_forged_reply_is_held_to_the_same_limits() -> None:
    source = (
        "__headwater__.run = () => JSON.stringify({out: [{a: 'x'.repeat(3e6)}], errors: [],"
        " logs: ['y'.repeat(1e5)], dropped: 0});\n"
        "function transform(c) { return {}; }"
    )
    t = compile_javascript(source)
    [big] = t.transform([{"n": 1}])
    assert isinstance(big, TransformFailure)
    assert "too large" in big.message
    assert [len(line) for line in t.logs()] == [2001]
    t.close()


def test_a_promise_job_runs_within_the_batch_that_queued_it() -> None:
    """Promise callbacks (``.then``, ``await``) run after the call that queued them
    returns: they ran at the start of the next batch, outside any time limit, so an
    endless one made the worker silent until the server killed it (the time limit
    plus 2 s) and the next, innocent batch was counted as failed."""
    source = """
function transform(c) {
  if (c.evil) { Promise.resolve().then(() => { while (true) {} }); }
  return {email: c.email};
}
"""
    t = compile_javascript(source, time_limit=1.0, memory_limit_mb=64)
    try:
        with pytest.raises(BatchFailed, match="batch 1: time limit of 1 s exceeded"):
            t.transform([{"evil": True, "email": "a@b.com"}])
        started = time.monotonic()
        assert t.transform([{"evil": False, "email": "c@d.com"}]) == [{"email": "c@d.com"}]
        assert time.monotonic() - started < 1.0
    finally:
        t.close()


def test_a_promise_or_a_map_returned_is_its_records_error_not_an_empty_customer() -> None:
    """JSON.stringify writes a Promise (what an async transform returns), a Map or a
    Set as {}: each was imported as a customer with no properties, without a word."""
    source = """
async function later(c) { return {email: c.email}; }
function transform(c) {
  if (c.kind === "async") { return later(c); }
  if (c.kind === "map") { return new Map([["email", c.email]]); }
  if (c.kind === "set") { return new Set([c.email]); }
  return {email: c.email};
}
"""
    t = compile_javascript(source, time_limit=2.0, memory_limit_mb=64)
    try:
        kinds = ["async", "map", "set", "plain"]
        out = t.transform([{"kind": k, "email": "a@b.com"} for k in kinds])
        assert out[:3] == [
            TransformFailure(
                "transform returned a Promise (an async function?): promises are not "
                "awaited, return the object itself"
            ),
            TransformFailure("transform must return a plain object, not a Map"),
            TransformFailure("transform must return a plain object, not a Set"),
        ]
        assert out[3] == {"email": "a@b.com"}
    finally:
        t.close()


def test_a_nul_character_in_an_error_or_a_line_is_shown_not_kept() -> None:
    """PostgreSQL text cannot hold NUL (see the Python runtime's test): a record's error,
    and a log line show it as its escape."""
    source = """
function transform(c) {
  if (c.patch) {
    const value = function () { throw "gone ".repeat(1e5); };
    Object.defineProperty(Array.prototype, "push", {value: value, configurable: false});
  }
  console.log("seen", c.name);
  throw new Error("bad name " + c.name);
}
"""
    t = compile_javascript(source, time_limit=2.0, memory_limit_mb=64)
    try:
        [out] = t.transform([{"name": "a\x00b"}])
        assert out == TransformFailure("Error: bad name a\\u0000b (line 8)")
        assert t.logs() == ["seen a\\u0000b"]
        t.transform([{"name": "x", "patch": True}])  # mini-racer's calls use push
        with pytest.raises(BatchFailed) as caught:
            t.transform([{"name": "y"}])
        assert "runtime failure (<anonymous>:4: gone gone" in caught.value.message
        assert len(caught.value.message) < 2200  # what user code threw is cut too
    finally:
        t.close()


def test_built_ins_the_code_changes_do_not_break_the_runtime() -> None:
    """A polyfill of Array.prototype.toJSON (as Prototype.js has), or methods replaced
    on the prototypes the runtime's own glue used (push, slice, call), made every batch
    'a malformed reply' or 'runtime failure': the whole run failed, and its logs and
    record errors were lost."""
    source = """
Array.prototype.toJSON = function () { return "an array"; };
Object.prototype.toJSON = undefined;
String.prototype.slice = function () { return "sliced"; };
Function.prototype.call = function () { return null; };
function transform(c) {
  console.log("line " + c.n + " " + "x".repeat(2100));
  if (c.push) { Array.prototype.push = function () { throw new Error("no push"); }; }
  if (c.n === 2) { throw new Error("boom"); }
  return {tags: [c.n]};
}
"""
    t = compile_javascript(source, time_limit=2.0, memory_limit_mb=64)
    try:
        for batch in range(2):
            out = t.transform([{"n": 1, "push": batch == 0}, {"n": 2}])
            assert out == [{"tags": "an array"}, TransformFailure("Error: boom (line 9)")]
            logs = t.logs()
            assert [line[:8] for line in logs] == ["line 1 x", "line 2 x"]
            assert all(len(line) == 2001 and line.endswith("x…") for line in logs)
    finally:
        t.close()


def test_top_level_code_is_held_to_the_memory_limit() -> None:
    """The worker capped its memory only after the top-level code had run, and at what
    it held then plus the limit: array buffers made at the top level were never
    counted (6 x 64 MB, filled, under a 64 MB limit were all kept, and so could be
    gigabytes in the server's machine)."""
    source = """
const keep = [];
for (let i = 0; i < N; i++) { keep.push(new Uint8Array(64 << 20).fill(1)); }
function transform(c) { return {kept: keep.length}; }
"""
    with pytest.raises(InvalidInput) as caught:
        compile_javascript(source.replace("N", "6"), time_limit=5.0, memory_limit_mb=64)
    assert caught.value.message.startswith(
        "top-level code exceeded the memory limit of 64 MB (V8 stopped with SIG"
    )
    t = compile_javascript(source.replace("N", "1"), time_limit=5.0, memory_limit_mb=64)
    try:
        assert t.transform([{}]) == [{"kept": 1}]
    finally:
        t.close()


def test_the_worker_holding_v8_is_locked_down_before_v8_starts() -> None:
    """Only V8 stood between user code and the system: a V8 bug would have given it
    the server's network and the right to trace or signal its processes.  The worker
    now has a network namespace of its own (when the server may make one), no new
    privileges, is not dumpable, and the Python workers' seccomp filter (sockets,
    tracing, mounts, namespaces, signals to others refused) covers its V8 threads."""
    t = compile_javascript("function transform(c) { return {n: c.n + 1}; }", time_limit=1.0)
    try:
        pid = t.pid()
        assert pid is not None
        status = Path(f"/proc/{pid}/status").read_text()
        assert "\nNoNewPrivs:\t1\n" in status
        assert "\nSeccomp:\t2\n" in status
        if os.geteuid() == 0:
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert t.transform([{"n": 1}]) == [{"n": 2}]
    finally:
        t.close()


def test_the_worker_holding_v8_sees_no_files_and_runs_as_no_account() -> None:
    """Code that escaped V8 ran as the server's user with the whole file system in
    view: the store (and the key that decrypts its secrets), the warehouse file.  The
    worker now loads V8 and its ICU data, then chroots to an empty directory (and, as
    root, takes a user id of its own) before any context is made; V8 keeps working
    there, locale formatting (ICU) included, also in a context rebuilt after a limit."""
    t = compile_javascript(
        "function transform(c) { if (c.loop) { for (;;) {} }\n"
        "  return {n: c.n + 1, d: new Date(0).toLocaleString('de-DE', {timeZone: 'UTC'}),\n"
        "          f: new Intl.NumberFormat('en-IN').format(1234567)}; }",
        time_limit=0.5,
    )
    try:
        pid = t.pid()
        assert pid is not None
        root = os.readlink(f"/proc/{pid}/root")
        may_chroot = os.geteuid() == 0 or os.readlink(f"/proc/{pid}/ns/user") != os.readlink(
            "/proc/self/ns/user"
        )
        if may_chroot:
            assert root != "/"
            assert os.listdir(root) == []
        if os.geteuid() == 0:
            status = Path(f"/proc/{pid}/status").read_text()
            uids = status.split("\nUid:\t")[1].split("\n")[0].split()
            assert int(uids[0]) >= 1_000_000
            assert len(set(uids)) == 1
        expected = {"n": 2, "d": "1.1.1970, 00:00:00", "f": "12,34,567"}
        assert t.transform([{"n": 1}]) == [expected]
        with pytest.raises(BatchFailed):
            t.transform([{"n": 1, "loop": True}])
        assert t.transform([{"n": 1}]) == [expected]  # a context made after the chroot
    finally:
        t.close()
