// Event types: the built-in catalogue and the organisation's own, each with its variables; an admin
// defines one from a sample payload, and a publisher publishes an event (publish.js).

import { gql } from "./api.js";
import { button, field, h, jsonError, replace } from "./dom.js";
import { publishForm } from "./publish.js";
import { showError, showProblems } from "./problems.js";
import { PERMISSION as P } from "./roles.js";
import { envelopeOf, eventTypes, forget } from "./shared.js";

const DEFINE = "mutation($input: DefineEventTypeInput!) { defineEventType(input: $input) { name variables } }";


export async function eventTypesView(body, ctx) {
  const types = await eventTypes();
  if (!ctx.current()) return;
  const own = types.filter((t) => !t.builtIn);
  const builtIn = types.filter((t) => t.builtIn);
  const envelope = envelopeOf(types);
  replace(
    body,
    h("div", { class: "page-head" }, h("h1", {}, "Event types")),
    h(
      "p",
      { class: "muted" },
      "Any type name may be published; a defined type also declares its variables, which templates can use. Every type has the envelope variables ",
      envelope.map((v, i) => [i ? ", " : "", h("code", {}, v)]),
      ".",
    ),
    ctx.can(P.PUBLISH_EVENTS) ? publishForm(types) : null,
    h(
      "section",
      { "aria-labelledby": "own-types" },
      h("h2", { id: "own-types" }, "Your organisation's types"),
      own.length ? typeList(own, envelope) : h("p", { class: "empty card" }, "None yet."),
      ctx.can(P.DEFINE_EVENT_TYPES) ? defineForm(ctx) : null,
    ),
    h(
      "section",
      { "aria-labelledby": "built-in-types" },
      h("h2", { id: "built-in-types" }, "Built-in catalogue"),
      typeList(builtIn, envelope),
    ),
  );
}

function typeList(types, envelope) {
  return h(
    "ul",
    { class: "type-list" },
    types.map((t) =>
      h(
        "li",
        { class: "card type-card", "data-type": t.name },
        h("h3", {}, h("code", {}, t.name)),
        t.description ? h("p", { class: "muted" }, t.description) : null,
        h(
          "ul",
          { class: "chips vars", "aria-label": `Variables of ${t.name}` },
          t.variables.filter((v) => !envelope.includes(v)).map((v) => h("li", {}, h("code", {}, v))),
        ),
        t.samplePayload
          ? h(
              "details",
              {},
              h("summary", {}, "Sample payload"),
              h("pre", { class: "code" }, JSON.stringify(t.samplePayload, null, 2)),
            )
          : null,
      ),
    ),
  );
}

/** The variables a sample declares, as the server derives them (for the preview while typing). */
function variablesOf(sample) {
  const seen = new Set();
  const walk = (obj, prefix) => {
    for (const [key, value] of Object.entries(obj)) {
      const path = `${prefix}${key}`;
      seen.add(path);
      const inner = Array.isArray(value) ? value.find((v) => v && typeof v === "object" && !Array.isArray(v)) : value;
      if (inner && typeof inner === "object" && !Array.isArray(inner)) walk(inner, `${path}.`);
    }
  };
  walk(sample, "");
  return [...seen];
}

function defineForm(ctx) {
  const name = h("input", { type: "text", placeholder: "monitor.alert", spellcheck: "false", autocomplete: "off" });
  const description = h("input", { type: "text" });
  const sample = h("textarea", {
    rows: "8",
    class: "code",
    spellcheck: "false",
    placeholder: '{\n  "monitor": "api",\n  "severity": 2,\n  "host": {"name": "web-1"}\n}',
  });
  const preview = h("div", { class: "preview", "aria-live": "polite" });
  const check = () => showPreview(preview, sample.value.trim());
  sample.addEventListener("input", check);
  check();
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button("Define event type", null, { kind: "primary", type: "submit" });
  const define = async () => {
    let payload;
    try {
      payload = JSON.parse(sample.value);
    } catch (error) {
      showProblems(form, summary, [{ field: "samplePayload", message: `is not valid JSON: ${error.message}` }], "Not defined");
      return;
    }
    submit.disabled = true;
    try {
      const input = { name: name.value.trim(), description: description.value.trim() || null, samplePayload: payload };
      const made = (await gql(DEFINE, { input })).defineEventType;
      forget("eventTypes");
      ctx.go("#/event-types", `Defined “${made.name}” with ${made.variables.length} variables.`);
    } catch (error) {
      showError(form, summary, error, "Not defined");
    } finally {
      submit.disabled = false;
    }
  };
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "define-type", novalidate: true, onsubmit: (e) => (e.preventDefault(), define()) },
    h("h3", { id: "define-type" }, "Define a type from a sample payload"),
    h("p", { class: "small muted" }, "Defining a name you already defined replaces it."),
    summary,
    h(
      "div",
      { class: "grid-2" },
      field("Name", name, { name: "name", required: true, hint: "Lowercase words joined by dots or underscores." }),
      field("Description", description, { name: "description" }),
    ),
    h("div", { class: "grid-2" }, field("Sample payload (JSON object)", sample, { name: "samplePayload", required: true }), preview),
    h("div", { class: "form-actions" }, submit),
  );
  return form;
}

/** While typing a sample: the variables it would declare, or why it cannot be one. */
function showPreview(preview, text) {
  if (!text) {
    replace(preview, h("p", { class: "small muted" }, "Paste a realistic payload: its keys and dotted paths become the variables."));
    return;
  }
  const error = jsonError(text);
  if (error) {
    replace(preview, h("p", { class: "template-status bad" }, `Not valid JSON: ${error}`));
    return;
  }
  const value = JSON.parse(text);
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    replace(preview, h("p", { class: "template-status bad" }, "The sample must be a JSON object."));
    return;
  }
  replace(
    preview,
    h("p", { class: "small" }, "Variables it declares:"),
    h("ul", { class: "chips vars" }, variablesOf(value).map((v) => h("li", {}, h("code", {}, v)))),
  );
}
