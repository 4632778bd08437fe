// The webhook form's payload template: checked as JSON while typing (unless Content-Type says it is not
// JSON), with the chosen event types' variables listed beside it, inserted at the cursor by a click.

import { field, h, jsonError, replace } from "./dom.js";
import { envelopeOf } from "./shared.js";

/** `contentType()` is the Content-Type header as typed (undefined: none). */
export function templateSection(types, start, contentType) {
  const known = new Map(types.map((t) => [t.name, t]));
  const envelope = envelopeOf(types);
  const template = h("textarea", {
    rows: "12",
    class: "code",
    spellcheck: "false",
    value: start.payloadTemplate || "",
    placeholder: '{\n  "text": "{{alert_name}} on {{workspace_name}}"\n}',
  });
  const status = h("p", { class: "template-status", "aria-live": "polite" });
  const variablesBox = h("div", { class: "variables" });
  const check = () => showStatus(template, status, contentType());
  template.addEventListener("input", check);
  const varButton = (variable) =>
    h("button", { type: "button", class: "var", onclick: () => (insert(template, variable), check()), title: `Insert {{${variable}}}` }, variable);
  /** Lists the variables of the chosen types; returns their payload paths (for the conditions). */
  const showVariables = (selected) => {
    const [sections, paths] = variableSections(selected, known, envelope, varButton);
    replace(variablesBox, h("h2", { class: "panel-title" }, "Variables"), h("p", { class: "small muted" }, "Click to insert at the cursor."), sections);
    return paths;
  };
  const el = h(
    "div",
    { class: "template-editor" },
    h(
      "div",
      {},
      field("Payload template", template, {
        name: "payloadTemplate",
        hint: "JSON with {{variable}} placeholders inside strings. A string that is only one placeholder takes the value's type.",
      }),
      status,
    ),
    h("aside", { "aria-label": "Template variables" }, variablesBox),
  );
  const read = () => ({ payloadTemplate: template.value.trim() ? template.value : null });
  return { el, check, showVariables, read };
}

function showStatus(template, status, contentType) {
  const media = (contentType || "application/json").split(";")[0].trim().toLowerCase();
  const json = media === "application/json" || media.endsWith("+json");
  const text = template.value;
  let message;
  let tone;
  if (!text.trim()) [message, tone] = ["Empty: the whole event is sent as JSON.", "muted"];
  else if (!json) [message, tone] = [`Plain text: Content-Type is ${media}.`, "muted"];
  else {
    const error = jsonError(text);
    [message, tone] = error ? [`Not valid JSON: ${error}`, "bad"] : ["Valid JSON.", "ok"];
  }
  status.textContent = message;
  status.className = `template-status ${tone}`;
  template.toggleAttribute("aria-invalid", tone === "bad");
}

/** Inserts `{{variable}}` at the cursor, in quotes unless the cursor is already inside a JSON string. */
function insert(template, variable) {
  const { selectionStart: from, selectionEnd: to, value } = template;
  const before = value.slice(0, from);
  let quotes = 0;
  for (let i = 0; i < before.length; i += 1) {
    if (before[i] === "\\") i += 1;
    else if (before[i] === '"') quotes += 1;
  }
  const inString = quotes % 2 === 1;
  const text = inString ? `{{${variable}}}` : `"{{${variable}}}"`;
  template.setRangeText(text, from, to, "end");
  template.focus();
}

function variableSections(selected, known, envelope, varButton) {
  const paths = new Set();
  const sections = [h("h3", {}, "Every event"), h("div", { class: "var-list" }, envelope.map(varButton))];
  for (const typeName of selected) {
    const spec = known.get(typeName);
    sections.push(h("h3", {}, h("code", {}, typeName)));
    if (!spec) {
      sections.push(h("p", { class: "small muted" }, "Not defined: any variable is accepted."));
      continue;
    }
    const own = spec.variables.filter((v) => !envelope.includes(v));
    own.forEach((v) => paths.add(v));
    sections.push(
      own.length
        ? h("div", { class: "var-list" }, own.map(varButton))
        : h("p", { class: "small muted" }, "No payload variables."),
    );
  }
  if (!selected.length) sections.push(h("p", { class: "small muted" }, "Choose event types to see their variables."));
  return [sections, paths];
}
