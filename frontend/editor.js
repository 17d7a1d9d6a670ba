// The pipeline editor ("Add pipeline..." / "Manage..."): builds the pipeline document
// (the same JSON the REST API takes) from the form, previews it, validates as you type
// and saves it. Every rule is the server's: it answers with problems located like
// "conditions[1]" (a filter row) or a Customer Model path (a mapping row).
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children);
  return node;
};

let data;

// "line 2, column 5: " (or "line 2: ") before a message that has a position.
const position = (p) => (p.line ? `line ${p.line}` + (p.column ? `, column ${p.column}` : "") + ": " : "");
let rowCount = 0;

function propertyType(path) {
  const found = data.properties.find((p) => p.path === path);
  if (found) return found;
  const map = data.properties.find((p) => p.kind === "map" && path.startsWith(p.path + "."));
  return map ? { path, kind: map.items, operators: map.item_operators } : null;
}

function valueInputs(row, prop, operator, values = []) {
  const box = $(".values", row);
  box.replaceChildren();
  const op = prop && prop.operators.find((o) => o.name === operator);
  if (!op || op.arity === 0) return;
  const kind = prop.kind;
  const typeAttr = kind === "timestamp" ? "date" : (kind === "integer" || kind === "number") ? "number" : "text";
  const n = row.dataset.n;
  if (op.arity === -1) {
    box.append(el("input", { type: "text", "aria-label": "Values", name: `values-${n}`, placeholder: "IT, FR",
      value: values.join(", "), "data-list": "1" }));
    return;
  }
  if (kind === "boolean") {
    const sel = el("select", { "aria-label": "Value" }, el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
    sel.value = String(values[0] ?? "true");
    box.append(sel);
    return;
  }
  const labels = op.arity === 2 ? ["From", "To"] : ["Value"];
  labels.forEach((label, i) => box.append(el("input", { type: typeAttr, "aria-label": label, value: values[i] ?? "" })));
}

function operatorSelect(row, prop, chosen) {
  const sel = $("select.operator", row);
  sel.replaceChildren(...(prop ? prop.operators : []).map((o) => el("option", { value: o.name, text: o.name })));
  if (chosen && prop && prop.operators.some((o) => o.name === chosen)) sel.value = chosen;
  sel.disabled = !prop;
}

function conditionRow(cond = {}) {
  const n = ++rowCount;
  const row = el("li", { class: "condition", "data-n": n });
  const property = el("input", { type: "text", list: "filter-properties", class: "property", "aria-label": "Property",
    value: cond.property || "", placeholder: "Search a Stripe property", autocomplete: "off" });
  const operator = el("select", { class: "operator", "aria-label": "Operator" });
  row.append(property, operator, el("span", { class: "values" }),
    el("button", { type: "button", class: "link", text: "Remove", "aria-label": "Remove condition", onclick: () => row.remove() }),
    el("p", { class: "field-error", role: "alert" }));
  const refresh = (keepOp, vals) => {
    const prop = propertyType(property.value.trim());
    operatorSelect(row, prop, keepOp);
    valueInputs(row, prop, operator.value, vals);
  };
  // Rebuild the operator and values only when the property really changed (a change
  // event also fires on blur, which must not reset what was chosen after it).
  const onProperty = () => {
    const path = property.value.trim();
    if (path === row.dataset.path) return;
    row.dataset.path = path;
    refresh(operator.value);
  };
  property.addEventListener("change", onProperty);
  property.addEventListener("input", () => { if (propertyType(property.value.trim())) onProperty(); });
  operator.addEventListener("change", () => valueInputs(row, propertyType(property.value.trim()), operator.value));
  row.dataset.path = property.value.trim();
  refresh(cond.operator, (cond.values || []).map(String));
  return row;
}

function groupBox(group = { logical: "and", conditions: [] }, nested = false) {
  const list = el("ul", { class: "conditions" });
  const logical = el("select", { class: "logical" },
    el("option", { value: "and", text: "and" }), el("option", { value: "or", text: "or" }));
  logical.value = group.logical || "and";
  const box = el("div", { class: nested ? "group nested" : "group", role: "group", "aria-label": nested ? "Condition group" : "Filters" },
    el("label", {}, nested ? "Customers in this group match " : "Combine conditions with ", logical),
    list,
    el("button", { type: "button", text: "Add condition", onclick: () => list.append(conditionRow()) }),
    el("button", { type: "button", text: "Add group", onclick: () => list.append(el("li", {}, groupBox(undefined, true))) }),
  );
  if (nested) box.append(el("button", { type: "button", class: "link", text: "Remove group", onclick: () => box.parentElement.remove() }));
  for (const c of group.conditions || []) list.append(c.conditions ? el("li", {}, groupBox(c, true)) : conditionRow(c));
  return box;
}

function typed(kind, text) {
  if (kind === "integer" || kind === "number") return text === "" ? text : Number(text);
  if (kind === "boolean") return text === "true";
  return text;
}

// The filter as the API takes it, each row remembering where it is for error placement.
function readGroup(box, where) {
  const conditions = [];
  for (const item of box.querySelector(":scope > ul").children) {
    const i = conditions.length;
    const here = `${where}conditions[${i}]`;
    if (!item.classList.contains("condition")) {
      conditions.push(readGroup(item.querySelector(":scope > .group"), here + "."));
      continue;
    }
    item.dataset.where = here;
    const path = $(".property", item).value.trim();
    const prop = propertyType(path);
    const inputs = [...item.querySelectorAll(".values input, .values select")];
    let values = inputs.map((i) => typed(prop && prop.kind, i.value.trim()));
    if (inputs[0] && inputs[0].dataset.list) values = inputs[0].value.split(",").map((v) => v.trim()).filter(Boolean).map((v) => typed(prop && prop.kind, v));
    const cond = { property: path, operator: $(".operator", item).value };
    if (inputs.length) cond.values = values;
    conditions.push(cond);
  }
  return { logical: box.querySelector(":scope > label > .logical").value, conditions };
}

function currentKind() { return $("[role=tab][aria-selected=true]").dataset.kind; }

function transformation() {
  const kind = currentKind();
  if (kind === "mapping") {
    const mapping = {};
    for (const input of document.querySelectorAll("input[data-model-path]")) {
      if (input.value.trim()) mapping[input.dataset.modelPath] = input.value.trim();
    }
    return { kind, mapping };
  }
  return { kind, source: $(`textarea[data-code=${kind}]`).value };
}

function filterDocument() {
  const f = readGroup($("#filters > .group"), "");
  return f.conditions.length ? f : null;
}

export function pipelineDocument() {
  const doc = {};
  if (data.connection_id) doc.connection_id = data.connection_id;
  doc.name = $("#pipeline-name").value;
  doc.description = $("#pipeline-description").value;
  doc.filter = filterDocument();
  doc.transformation = transformation();
  doc.incremental = $("#pipeline-incremental").checked;
  return doc;
}

function clearErrors() {
  for (const p of document.querySelectorAll("#pipeline-editor .field-error")) p.textContent = "";
  $("#editor-errors").textContent = "";
}

function showProblems(error) {
  clearErrors();
  const general = [];
  for (const p of error.problems || [{ location: error.field, message: error.message }]) {
    const where = p.location || "";
    const row = document.querySelector(`.condition[data-where="${CSS.escape(where)}"]`);
    const input = document.querySelector(`input[data-model-path="${CSS.escape(where)}"]`);
    const text = position(p) + p.message;
    if (row) $(".field-error", row).textContent = text;
    else if (input) input.closest("tr").querySelector(".field-error").textContent = text;
    else if (where === "name") $("#name-error").textContent = text;
    else general.push(where ? `${where}: ${text}` : text);
  }
  $("#editor-errors").textContent = general.join("\n");
}

// Posts JSON as the editor's own request (X-Requested-With: fetch): when the session
// has ended, the console answers 401 with where to sign in (never a redirect, which
// fetch would follow to the sign-in page); the editor goes there and the answer is null.
async function post(url, body) {
  const headers = { "Content-Type": "application/json", "X-Requested-With": "fetch" };
  if (document.body.dataset.workspace) headers["X-Headwater-Workspace"] = document.body.dataset.workspace;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  if (response.status !== 401) return response;
  const answer = await response.json().catch(() => ({}));
  if (!answer.location) return response;  // the API's 401 (validation): nothing to show
  window.location.assign(answer.location);
  return null;
}

// Validation as you type: the API's POST /validate answers every problem, located
// ("mapping.email" with the line and column in its expression, or "transformation").
let validateTimer;
function validateSoon() {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(async () => {
    const spec = transformation();
    const body = spec.kind === "mapping" ? { mapping: spec.mapping } : { transformation: spec };
    const response = await post(data.validate_url, body);
    if (!response || !response.ok) return;
    const answer = await response.json();
    for (const p of document.querySelectorAll("#mappings .field-error, .code-error")) p.textContent = "";
    for (const i of document.querySelectorAll("input[data-model-path]")) i.removeAttribute("aria-invalid");
    for (const p of answer.errors || []) {
      const where = (p.field || "").replace(/^mapping\./, "");
      const text = position(p) + p.message;
      const input = document.querySelector(`input[data-model-path="${CSS.escape(where)}"]`);
      if (spec.kind === "mapping" && input) {
        input.setAttribute("aria-invalid", "true");
        input.closest("tr").querySelector(".field-error").textContent = text;
      } else if (spec.kind !== "mapping") {
        $(`#code-error-${spec.kind}`).textContent += text + "\n";
      }
    }
  }, 250);
}

async function reloadPreview() {
  const out = $("#preview-output");
  out.setAttribute("aria-busy", "true");
  out.textContent = "Loading samples…";
  const doc = pipelineDocument();
  const response = await post(data.preview_url, { connection_id: data.connection_id || data.pipeline_connection, filter: doc.filter, transformation: doc.transformation });
  if (!response) return;  // signed out: on the way to the sign-in page
  out.innerHTML = await response.text();  // the server's template escapes every value
  out.removeAttribute("aria-busy");
}

let saving = false;
async function save() {
  if (saving) return;
  saving = true;
  const button = $("#save-pipeline");
  button.disabled = true;
  try {
    const response = await post(data.save_url, pipelineDocument());
    if (!response) return;  // signed out: on the way to the sign-in page
    const answer = await response.json();
    if (response.ok) { window.location.assign(answer.location); return; }
    showProblems(answer.error);
  } finally {
    saving = false;
    button.disabled = false;
  }
}

function switchKind(tab, codeEditor) {
  const from = currentKind();
  const to = tab.dataset.kind;
  if (from === to) return;
  const edited = from === "mapping" ? JSON.stringify(transformation().mapping) !== data.initial_mapping
    : $(`textarea[data-code=${from}]`).value !== data.templates[from] && $(`textarea[data-code=${from}]`).value !== data.initial_source;
  if (edited && !window.confirm(`Switch to ${tab.textContent}? Your ${$("[role=tab][aria-selected=true]").textContent} changes will be discarded.`)) return;
  for (const t of document.querySelectorAll("[role=tab]")) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (to !== "mapping") {
    const ta = $(`textarea[data-code=${to}]`);
    codeEditor(ta).set(data.templates[to]);
  }
  if (from === "mapping") for (const i of document.querySelectorAll("input[data-model-path]")) i.value = data.initial_mapping_values[i.dataset.modelPath] || "";
}

export function startPipelineEditor(root, codeEditor) {
  data = JSON.parse($("#editor-data").textContent);
  data.initial_mapping = JSON.stringify(transformation().mapping || {});
  data.initial_mapping_values = JSON.parse(data.initial_mapping);
  const initial = data.filter || { logical: "and", conditions: [] };
  $("#filters").append(groupBox(initial));
  for (const input of document.querySelectorAll("input[data-model-path]")) input.addEventListener("input", validateSoon);
  for (const ta of document.querySelectorAll("textarea[data-code]")) ta.addEventListener("input", validateSoon);
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => switchKind(tab, codeEditor));
  const kind = currentKind();
  if (kind !== "mapping") codeEditor($(`textarea[data-code=${kind}]`));
  data.initial_source = kind !== "mapping" ? $(`textarea[data-code=${kind}]`).value : null;
  $("#use-suggested").addEventListener("click", () => {
    for (const i of document.querySelectorAll("input[data-model-path]")) i.value = data.suggested[i.dataset.modelPath] || "";
    validateSoon();
  });
  $("#reload-preview").addEventListener("click", reloadPreview);
  $("#save-pipeline").addEventListener("click", save);
  root.addEventListener("submit", (e) => { e.preventDefault(); save(); });
  window.headwaterPipelineDocument = pipelineDocument;
}
