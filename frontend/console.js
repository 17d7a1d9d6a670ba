// The console's own script, bundled by scripts/install (esbuild) with the npm packages
// it imports into src/headwater/entrypoints/console/static/dist/console.js.
// Pages work without it for reading; it adds htmx swaps, live run progress (SSE),
// the code editor, the run chart and the pipeline editor.
import htmx from "htmx.org";
import { EditorView, basicSetup } from "codemirror";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { startPipelineEditor } from "./editor.js";

window.htmx = htmx;
// Swapped-in content is made live at once (htmx's default waits 20 ms to "settle"; a
// quick keyboard user, or a test, acting in that window would be ignored).
htmx.config.defaultSettleDelay = 0;

// A refusal (4xx) answered with a fragment (the row with its reason) is swapped in like
// any answer, and still counts as an error (htmx:responseError below); an answer that is
// a whole page (the error page) never is: the status line tells its reason.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "4..", swap: true, error: true },
  { code: "...", swap: false, error: true },
];
const wholePage = (html) => /^\s*<!doctype html/i.test(html || "");

// What a refused action has to say, in one line: the answer's alert (after the error
// page's heading: "Not found: no pipeline ..."), never the text of a whole page.
function refusalText(xhr) {
  const answer = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const reason = answer.querySelector("[role=alert]")?.textContent.trim();
  const heading = answer.querySelector("h1")?.textContent.trim();
  if (reason) return heading ? `${heading}: ${reason}` : reason;
  return `Not done: the server answered ${xhr.status} ${xhr.statusText}`.trim();
}

// Focus survives a swap: htmx puts it back on the element with the same id; when that
// element is gone or disabled (Run now, once a run is live), it goes to the first
// control of the new content, so a keyboard user stays where they were working.
function refocus(fresh, id) {
  if (!fresh || document.activeElement !== document.body) return;
  const same = id && document.getElementById(id);
  if (same && !same.disabled && fresh.contains(same)) { same.focus(); return; }
  fresh.querySelector("button:not([disabled]), a[href], select:not([disabled]), input:not([disabled])")?.focus();
}
let focusBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", (e) => {
  if (e.detail.isError) {
    // Told here, not on htmx:responseError: that event comes from the element that
    // asked, which a swapped row has already taken out of the page.
    const status = document.getElementById("status-message");
    if (status) status.textContent = refusalText(e.detail.xhr);
    if (wholePage(e.detail.serverResponse)) { e.detail.shouldSwap = false; return; }
  }
  const target = e.detail.target;
  const inside = target && target.id && target.contains(document.activeElement);
  focusBeforeSwap = inside ? { target: target.id, id: document.activeElement.id } : null;
});
document.addEventListener("htmx:afterSettle", () => {
  if (focusBeforeSwap) refocus(document.getElementById(focusBeforeSwap.target), focusBeforeSwap.id);
  focusBeforeSwap = null;
});

// Live fragments: an element with data-live="URL" shows each server-sent event's HTML
// (already escaped by the server's templates) until the stream says "end". While the
// metadata store is away the stream stays open and says "outage" (plain text, put in
// the status line as text): the element keeps what it showed until the next event.
// A (re)connection refused with 503 (the store away as the stream started) is tried
// again after the answer's Retry-After, said in the status line meanwhile; any other
// refusal (signed out, the run gone) ends the following, as an EventSource does.
function followLive(root) {
  for (const el of root.querySelectorAll("[data-live]")) {
    if (!el.dataset.following) follow(el);
  }
}
let liveNote = null; // what the live streams put in the status line, until cleared
function showLiveNote(text) {
  const line = document.getElementById("status-message");
  if (line && text !== null) line.textContent = text;
  else if (line && liveNote !== null && line.textContent === liveNote) line.textContent = "";
  liveNote = text;
}
function follow(el) {
  el.dataset.following = "1";
  const source = new EventSource(el.dataset.live);
  source.addEventListener("outage", (e) => showLiveNote(e.data));
  source.addEventListener("progress", (e) => { showLiveNote(null); el.innerHTML = e.data; htmx.process(el); });
  source.addEventListener("end", (e) => {
    source.close();
    showLiveNote(null);
    const selector = el.dataset.liveEnd;
    const target = (selector && document.querySelector(selector)) || el;
    const holder = document.createElement("template");
    holder.innerHTML = e.data;
    const fresh = holder.content.firstElementChild;
    const focused = target.contains(document.activeElement) ? document.activeElement.id || "" : null;
    target.replaceWith(holder.content);
    if (fresh) { htmx.process(fresh); enhance(fresh); }
    if (focused !== null) refocus(fresh, focused);
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) followAgain(el); };
}
// Asks the stream's URL again why it was refused: a 503 is asked again after its
// Retry-After (its page's reason in the status line), a stream is followed again.
async function followAgain(el) {
  el.dataset.following = "retry";
  const stop = new AbortController();
  let answer = null;
  try { answer = await fetch(el.dataset.live, { signal: stop.signal, headers: { Accept: "text/event-stream" } }); } catch { /* no answer */ }
  const streams = answer?.ok && (answer.headers.get("content-type") || "").startsWith("text/event-stream");
  const page = answer?.status === 503 ? await answer.text().catch(() => "") : "";
  const reason = page && refusalText({ responseText: page, status: 503, statusText: answer.statusText });
  stop.abort();
  if (!el.isConnected) return;
  if (streams) { follow(el); return; }
  if (answer?.status !== 503) { el.dataset.following = ""; return; }
  const seconds = Number(answer.headers.get("retry-after")) || 5;
  showLiveNote(`${(reason || "The server is unavailable").replace(/\.$/, "")}. Live updates are paused, retrying in ${seconds} s…`);
  setTimeout(() => { if (el.isConnected) followAgain(el); }, seconds * 1000);
}

// Code editors: a <textarea data-code="javascript|python"> becomes CodeMirror 6; the
// textarea stays the form's value (and what the pipeline editor reads).
export function codeEditor(textarea) {
  if (textarea.editor) return textarea.editor;
  const lang = textarea.dataset.code === "python" ? python() : javascript();
  const view = new EditorView({
    doc: textarea.value,
    extensions: [
      basicSetup, lang,
      EditorView.updateListener.of((u) => {
        if (u.docChanged) {
          textarea.value = view.state.doc.toString();
          textarea.dispatchEvent(new Event("input", { bubbles: true }));
        }
      }),
      EditorView.contentAttributes.of({ "aria-label": textarea.getAttribute("aria-label") || "Code" }),
    ],
  });
  textarea.style.display = "none";
  textarea.after(view.dom);
  textarea.editor = {
    view,
    set(text) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }); },
  };
  return textarea.editor;
}

// Charts: <div data-chart> with a JSON payload {x: [unix], imported: [...], failed: [...]}.
function drawCharts(root) {
  for (const el of root.querySelectorAll("[data-chart]")) {
    if (el.dataset.drawn) continue;
    el.dataset.drawn = "1";
    const data = JSON.parse(el.querySelector("script").textContent);
    if (!data.x.length) continue;
    // One run alone would stretch the time axis over years (uPlot needs a span): give
    // it an hour each side, as empty points.
    if (data.x.length === 1) {
      data.x = [data.x[0] - 3600, data.x[0], data.x[0] + 3600];
      data.imported = [null, data.imported[0], null];
      data.failed = [null, data.failed[0], null];
    }
    new uPlot({
      title: el.dataset.title || "", width: el.clientWidth || 800, height: 220,
      scales: { x: { time: true } },
      series: [{}, { label: "Imported", stroke: "#2563eb" }, { label: "Failed", stroke: "#dc2626" }],
    }, [data.x, data.imported, data.failed], el);
  }
}

// Menus (⋮) and dialogs: keyboard friendly, ARIA states kept in step.
function wireMenus(root) {
  for (const button of root.querySelectorAll("[aria-haspopup=menu]")) {
    if (button.dataset.wired) continue;
    button.dataset.wired = "1";
    const menu = document.getElementById(button.getAttribute("aria-controls"));
    const close = () => { menu.hidden = true; button.setAttribute("aria-expanded", "false"); };
    button.addEventListener("click", () => {
      const open = menu.hidden;
      menu.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) menu.querySelector("[role=menuitem]")?.focus();
    });
    menu.addEventListener("keydown", (e) => {
      const items = [...menu.querySelectorAll("[role=menuitem]")];
      const i = items.indexOf(document.activeElement);
      const moves = { ArrowDown: i + 1, ArrowUp: i - 1 + items.length, Home: 0, End: items.length - 1 };
      if (e.key === "Escape") { close(); button.focus(); }
      if (e.key === "Tab") close();  // focus moves on: the menu must not stay open behind it
      if (e.key in moves) { items[moves[e.key] % items.length].focus(); e.preventDefault(); }
    });
    menu.addEventListener("click", close);
  }
  for (const dialog of root.querySelectorAll("dialog[data-confirm-name]")) {
    if (dialog.dataset.wired) continue;
    dialog.dataset.wired = "1";
    const input = dialog.querySelector("input[name=confirm]");
    const submit = dialog.querySelector("button[type=submit]");
    input.addEventListener("input", () => { submit.disabled = input.value !== dialog.dataset.confirmName; });
  }
  // Search boxes that filter a list as you type (the form still works without script).
  for (const box of root.querySelectorAll("input[data-filters]")) {
    if (box.dataset.wired) continue;
    box.dataset.wired = "1";
    box.addEventListener("input", () => {
      const words = box.value.trim().toLowerCase();
      for (const item of document.querySelector(box.dataset.filters).children) {
        item.hidden = Boolean(words) && !item.textContent.toLowerCase().includes(words);
      }
    });
  }
  for (const toggle of root.querySelectorAll("[data-toggles]")) {
    if (toggle.dataset.wired) continue;
    toggle.dataset.wired = "1";
    toggle.addEventListener("click", () => {
      const panel = document.getElementById(toggle.dataset.toggles);
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", String(!panel.hidden));
    });
  }
  for (const opener of root.querySelectorAll("[data-opens]")) {
    if (opener.dataset.wired) continue;
    opener.dataset.wired = "1";
    opener.addEventListener("click", () => {
      const dialog = document.getElementById(opener.dataset.opens);
      // Closed, focus goes back to what opened it; from a menu (closed by now), to the
      // menu's button.
      const menu = opener.closest("[role=menu]");
      const back = menu ? document.querySelector(`[aria-controls="${menu.id}"]`) : opener;
      dialog.addEventListener("close", () => back?.focus(), { once: true });
      dialog.showModal();
    });
  }
  for (const closer of root.querySelectorAll("[data-closes]")) {
    if (closer.dataset.wired) continue;
    closer.dataset.wired = "1";
    closer.addEventListener("click", () => closer.closest("dialog").close());
  }
}

// Optimistic switches: flip at once, roll back with the server's message on failure.
document.addEventListener("htmx:beforeRequest", (e) => {
  const el = e.detail.elt;
  if (el.getAttribute && el.getAttribute("role") === "switch") {
    el.dataset.was = el.getAttribute("aria-checked");
    el.setAttribute("aria-checked", el.dataset.was === "true" ? "false" : "true");
  }
});
// Selects that save as they change (data-saved: the value the server has) go back to
// that value when a save fails.
document.addEventListener("htmx:afterRequest", (e) => {
  const el = e.detail.elt;
  if (e.detail.successful && el.matches && el.matches("select[data-saved]")) el.dataset.saved = el.value;
});
document.addEventListener("htmx:responseError", (e) => {
  const el = e.detail.elt;
  if (el.getAttribute && el.getAttribute("role") === "switch") el.setAttribute("aria-checked", el.dataset.was);
  if (el.matches && el.matches("select[data-saved]")) el.value = el.dataset.saved;
});

// Every change names the workspace its page showed, so that a page left open in a tab
// while the workspace was switched in another is refused, not applied to the other one.
const shownWorkspace = () => document.body && document.body.dataset.workspace;
document.addEventListener("submit", (e) => {
  const form = e.target, ws = shownWorkspace();
  if (!ws || (form.getAttribute("method") || "get").toLowerCase() !== "post") return;
  let field = form.querySelector("input[name=_workspace]");
  if (!field) {
    field = document.createElement("input");
    Object.assign(field, { type: "hidden", name: "_workspace" });
    form.append(field);
  }
  field.value = ws;
}, true);
document.addEventListener("htmx:configRequest", (e) => {
  const ws = shownWorkspace();
  if (ws) e.detail.headers["X-Headwater-Workspace"] = ws;
});

// Forms that must not be posted twice (double clicks): the first submit disables them.
// Only forms answered by a new page (a redirect, or the page again with an error): a
// page shown again as it was left (Back, from the back-forward cache) gets them back
// usable, buttons and all; a form that stays on the page (htmx) must not have data-once.
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (e.defaultPrevented || !form.matches("form[data-once]")) return;
  if (form.dataset.sent) { e.preventDefault(); return; }
  form.dataset.sent = "1";
  for (const b of form.querySelectorAll("button[type=submit]")) {
    b.dataset.label = b.textContent;
    b.setAttribute("aria-disabled", "true");
    b.textContent += "…";
  }
});
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-once][data-sent]")) {
    delete form.dataset.sent;
    for (const b of form.querySelectorAll("button[data-label]")) {
      b.textContent = b.dataset.label;
      delete b.dataset.label;
      b.removeAttribute("aria-disabled");
    }
  }
});

// Copy buttons: <button data-copies="ID"> copies the value of the input #ID and says so.
function wireCopies(root) {
  for (const button of root.querySelectorAll("[data-copies]")) {
    if (button.dataset.wired) continue;
    button.dataset.wired = "1";
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copies);
      let done = false;
      try {
        await navigator.clipboard.writeText(input.value);
        done = true;
      } catch {
        // No clipboard API (a page served over plain http to another host): select the
        // text and use the older command, which works from a click.
        input.select();
        done = document.execCommand("copy");
      }
      const status = document.getElementById("status-message");
      if (status) status.textContent = done ? "Copied to the clipboard" : "Select the text and copy it (Ctrl+C)";
    });
  }
}

// Tabs (role=tab): one tab stop; arrows, Home and End move between the tabs, Enter or
// Space chooses (choosing may ask a question, so moving alone never switches).
function wireTabs(root) {
  for (const list of root.querySelectorAll("[role=tablist]")) {
    if (list.dataset.wired) continue;
    list.dataset.wired = "1";
    list.addEventListener("keydown", (e) => {
      const tabs = [...list.querySelectorAll("[role=tab]")];
      const i = tabs.indexOf(document.activeElement);
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1 + tabs.length, Home: 0, End: tabs.length - 1 };
      if (i < 0 || !(e.key in moves)) return;
      e.preventDefault();
      const next = tabs[moves[e.key] % tabs.length];
      for (const t of tabs) t.tabIndex = t === next ? 0 : -1;
      next.focus();
    });
    // Leaving the list, the tab stop goes back to the chosen tab.
    list.addEventListener("focusout", (e) => {
      if (list.contains(e.relatedTarget)) return;
      for (const t of list.querySelectorAll("[role=tab]")) t.tabIndex = t.getAttribute("aria-selected") === "true" ? 0 : -1;
    });
  }
}

function enhance(root) {
  wireCopies(root);
  wireTabs(root);
  followLive(root);
  drawCharts(root);
  wireMenus(root);
  for (const ta of root.querySelectorAll("textarea[data-code]")) if (!ta.closest("[data-lazy-code]")) codeEditor(ta);
}

document.addEventListener("DOMContentLoaded", () => {
  enhance(document);
  const editor = document.getElementById("pipeline-editor");
  if (editor) startPipelineEditor(editor, codeEditor);
});
document.addEventListener("htmx:load", (e) => enhance(e.detail.elt));
