// Installed in every isolate before the user's code (headwater.adapters.transformations
// .javascript.worker); it captures the built-ins it relies on so that user code
// replacing JSON, String, etc. can only break its own results.
const __headwater__ = (function () {
  "use strict";
  const g = globalThis;
  const parse = JSON.parse, stringify = JSON.stringify, isArray = Array.isArray;
  const toStr = String, ErrorCtor = Error, RangeErrorCtor = RangeError;
  // Methods uncurried (slice(s, 0, 9)): called without looking up .call, which user
  // code may replace as it may any prototype's method.
  const uncurry = Function.prototype.bind.bind(Function.prototype.call);
  const exec = uncurry(RegExp.prototype.exec), test = uncurry(RegExp.prototype.test);
  const slice = uncurry(String.prototype.slice), indexOf = uncurry(String.prototype.indexOf);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const getTime = uncurry(Date.prototype.getTime), defineProperty = Object.defineProperty;
  // mini-racer passes each batch in an array it fills with Array.prototype.push.
  const ArrayProto = Array.prototype, push = ArrayProto.push;
  function keepPush() {
    try {
      if (ArrayProto.push !== push) {
        defineProperty(ArrayProto, "push", {value: push, writable: true, configurable: true});
      }
    } catch (x) { /* made unconfigurable by the code: its batches fail, no one else's */ }
  }
  // What V8 says when the process's memory limit refuses an ArrayBuffer or a
  // WebAssembly memory (their bytes live outside the V8 heap).
  const outOfMemory = /allocation failed|could not allocate memory/;
  const where = /<anonymous>:(\d+):\d+/;
  // Nothing may run outside a time-limited call: no timers, no GC callbacks.
  g.setTimeout = undefined; g.clearTimeout = undefined; g.__timer_manager = undefined;
  if (g.Atomics) { delete g.Atomics.waitAsync; }
  delete g.FinalizationRegistry;
  let fn = null, logs = [], nlogs = 0, dropped = 0, logCap = 0, maxChars = 0;
  function show(v) {
    if (typeof v === "string") { return v; }
    try { const s = stringify(v); return s === undefined ? toStr(v) : s; }
    catch (e) { return toStr(v); }
  }
  function log(...args) {
    if (nlogs >= logCap) { dropped++; return; }
    let line = "";
    for (let i = 0; i < args.length; i++) { line += (i ? " " : "") + show(args[i]); }
    logs[nlogs++] = line.length > 2000 ? slice(line, 0, 2000) + "…" : line;
  }
  const con = {log: log, info: log, warn: log, error: log, debug: log};
  Object.defineProperty(g, "console", {value: con, writable: true, configurable: true});
  // A record's error message, cut here (as replies.MAX_MESSAGE does) so that many
  // long messages cannot fill the isolate's memory while the reply is built.
  function cut(s) { return s.length > 2000 ? slice(s, 0, 2000) + "…" : s; }
  function describe(e) {
    // User objects' getters, proxies and toString run here: guarded, so that what one
    // record throws stays that record's error.
    try {
      if (e instanceof ErrorCtor) {
        let msg = toStr(e.name) + ": " + toStr(e.message);
        const m = typeof e.stack === "string" ? exec(where, e.stack) : null;
        return cut(m ? msg + " (line " + m[1] + ")" : msg);
      }
      return cut("transform threw " + show(e));
    } catch (x) {
      return "transform threw a value that could not be described";
    }
  }
  function isOutOfMemory(e) {
    try { return e instanceof RangeErrorCtor && test(outOfMemory, toStr(e.message)); }
    catch (x) { return false; }  // a user object (a proxy, a getter) that throws
  }
  // Where `v` holds NaN, an infinity or an Invalid Date, which stringify writes as
  // null, or a BigInt, which it refuses without saying where (and why), or null.
  const finite = Number.isFinite, ownKeys = Object.keys, DateCtor = Date;
  function notFinite(v, at) {
    if (typeof v === "bigint") {
      return "a BigInt at '" + at + "' (JSON has none: return it as a string, or as a " +
             "number when it is within 2^53)";
    }
    if (typeof v === "number") {
      if (finite(v)) { return null; }
      return (v !== v ? "NaN" : v > 0 ? "Infinity" : "-Infinity") + " at '" + at +
             "' (JSON has no NaN or Infinity)";
    }
    if (v === null || typeof v !== "object") { return null; }
    if (v instanceof DateCtor) {
      const time = getTime(v);
      return time === time ? null : "an Invalid Date at '" + at + "' (JSON writes it as null)";
    }
    const many = isArray(v), keys = many ? null : ownKeys(v), n = many ? v.length : keys.length;
    for (let i = 0; i < n; i++) {
      const found = many ? notFinite(v[i], at + "[" + i + "]")
                         : notFinite(v[keys[i]], at ? at + "." + keys[i] : keys[i]);
      if (found !== null) { return found; }
    }
    return null;
  }
  // Whether JSON text `s` nests arrays and objects deeper than maxDepth: the reply is
  // read at most 1,024 levels deep, and one deeper result made the whole batch
  // unreadable.  Counting brackets first bounds the depth, so most texts are not scanned.
  const maxDepth = 255;
  function count(s, b, n) {
    for (let i = indexOf(s, b); i !== -1 && n <= maxDepth; i = indexOf(s, b, i + 1)) {
      n++;
    }
    return n;
  }
  function tooDeep(s) {
    if (count(s, "{", count(s, "[", 0)) <= maxDepth) { return false; }
    let depth = 0, quoted = false;
    for (let i = 0; i < s.length; i++) {
      const c = charCodeAt(s, i);
      if (quoted) {
        if (c === 92) { i++; } else if (c === 34) { quoted = false; }
      } else if (c === 34) { quoted = true; }
      else if (c === 91 || c === 123) { if (++depth > maxDepth) { return true; } }
      else if (c === 93 || c === 125) { depth--; }
    }
    return false;
  }
  // What stringify refused in `v`, and where (a BigInt), or null: not found (one a
  // toJSON made), or the walk failed (a cycle, a getter that throws).
  function refused(v) {
    try { return notFinite(v, ""); } catch (e) { return null; }
  }
  function kind(v) { return isArray(v) ? "an array" : v === null ? "null" : "a " + typeof v; }
  // What stringify writes as {}: it would be imported as a customer with no properties.
  const PromiseCtor = Promise, MapCtor = Map, SetCtor = Set;
  function notPlain(r) {
    if (r instanceof PromiseCtor) {
      return "transform returned a Promise (an async function?): promises are not awaited, " +
             "return the object itself";
    }
    const name = r instanceof MapCtor ? "a Map" : r instanceof SetCtor ? "a Set" : null;
    return name === null ? null : "transform must return a plain object, not " + name;
  }
  return {
    setup(cap, chars) {  // once, before the user's code (which can see this object)
      if (maxChars === 0) { logCap = cap; maxChars = chars; }
    },
    bind() {
      fn = typeof transform === "function" ? transform : null;
      keepPush();
      return fn !== null;
    },
    run(text) {
      const records = parse(text);
      nlogs = 0; dropped = 0; logs = [];
      let out = "", errors = "";
      for (let i = 0; i < records.length; i++) {
        let part = "null", err = null, r = null, encoding = false;
        try {
          r = fn(records[i]);
          if (r === null || r === undefined) { part = "null"; }
          else if (typeof r !== "object" || isArray(r)) {
            err = "transform must return an object or null, not " + kind(r);
          } else if ((err = notPlain(r)) === null) {
            encoding = true;
            part = stringify(r);
            encoding = false;
            if (part.length > maxChars) {
              err = "the returned object is too large (" + part.length +
                    " characters of JSON, limit " + maxChars + ")";
              part = "null";
            } else if (tooDeep(part)) {
              err = "the returned object is nested deeper than " + maxDepth +
                    " levels (arrays and objects)";
              part = "null";
            } else {
              const bad = indexOf(part, "null") === -1 ? null : notFinite(r, "");
              if (bad !== null) { err = "the returned object is not JSON: " + bad; part = "null"; }
            }
          }
        } catch (e) {
          if (isOutOfMemory(e)) { return '{"memory":true}'; }
          err = encoding ? refused(r) : null;
          err = err === null ? describe(e) : "the returned object is not JSON: " + err;
          part = "null";
        }
        out += (i ? "," : "") + part;
        // Text only through stringify: a toJSON the code set on a prototype is not read.
        if (err !== null) { errors += (errors ? ",[" : "[") + i + "," + stringify(err) + "]"; }
      }
      keepPush();
      let lines = "";
      for (let i = 0; i < nlogs; i++) { lines += (i ? "," : "") + stringify(logs[i]); }
      return '{"out":[' + out + '],"errors":[' + errors + '],"logs":[' + lines +
             '],"dropped":' + dropped + "}";
    },
  };
})();
// Named, so that a frame of this glue (JSON.stringify of a result) is never reported
// as a line of the user's code, which is <anonymous> (see describe).
//# sourceURL=headwater-prelude.js
