// Credentials (create, list masked) and event types (built-ins and the organisation's own, define one
// from a sample payload, publish an event).

import { gql } from "./api.js";
import { button, field, h, jsonError, replace, shortId, uid } from "./dom.js";
import { showProblems } from "./problems.js";
import { ENVELOPE, credentials, eventTypes, forget } from "./shared.js";

// -- credentials ---------------------------------------------------------------------------------

const KINDS = [
  ["BEARER", "Bearer token", "Authorization: Bearer <token>"],
  ["BASIC", "Basic", "Authorization: Basic <username:password>"],
  ["HEADER", "Header", "a header of your choice"],
];

export async function credentialsView(body, ctx) {
  const list = await credentials();
  if (!ctx.current()) return;
  replace(
    body,
    h("div", { class: "page-head" }, h("h1", {}, "Credentials")),
    h(
      "p",
      { class: "muted" },
      "Secrets sent with deliveries to targets that need them. They are stored encrypted and never shown again: only masked.",
    ),
    h(
      "div",
      { class: "card table-card" },
      list.length
        ? h(
            "table",
            { class: "table" },
            h("caption", { class: "sr-only" }, "Credentials"),
            h("thead", {}, h("tr", {}, ["Name", "Kind", "Secret", "Id"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              list.map((c) =>
                h(
                  "tr",
                  { "data-credential": c.id },
                  h("td", { class: "strong" }, c.name),
                  h("td", {}, KINDS.find(([k]) => k === c.kind)?.[1] || c.kind),
                  h("td", {}, h("code", {}, c.maskedSecret)),
                  h("td", {}, h("code", { title: c.id }, shortId(c.id))),
                ),
              ),
            ),
          )
        : h("p", { class: "empty" }, "No credentials yet."),
    ),
    ctx.can("manage") ? credentialForm(ctx) : null,
  );
}

function credentialForm(ctx) {
  const name = h("input", { type: "text", autocomplete: "off" });
  const kindName = uid("kind");
  const radios = KINDS.map(([value, label, hint], i) => {
    const radio = h("input", { type: "radio", name: kindName, value, id: uid("kind"), checked: i === 0 });
    return h("div", { class: "check" }, radio, h("label", { for: radio.id }, label, h("span", { class: "small muted" }, ` — ${hint}`)));
  });
  const secret = (label, type = "password") =>
    field(label[0], h("input", { type, autocomplete: "off", spellcheck: "false" }), { name: label[1] });
  const parts = {
    BEARER: [secret(["Token", "token"])],
    BASIC: [secret(["Username", "username"], "text"), secret(["Password", "password"])],
    HEADER: [secret(["Header name", "headerName"], "text"), secret(["Header value", "headerValue"])],
  };
  const partsBox = h("div", { class: "grid-2" });
  const kind = () => radios.map((r) => r.querySelector("input")).find((r) => r.checked).value;
  const showParts = () => replace(partsBox, parts[kind()]);
  const kinds = h(
    "fieldset",
    { class: "field", "data-field": "kind", onchange: showParts },
    h("legend", {}, "Kind"),
    h("div", { class: "radios" }, radios),
    h("p", { class: "field-error", hidden: true }),
  );
  showParts();
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button("Create credential", null, { kind: "primary", type: "submit" });
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "new-credential",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const input = { name: name.value.trim(), kind: kind() };
        for (const el of parts[kind()]) input[el.dataset.field] = el.querySelector("input").value || null;
        submit.disabled = true;
        try {
          const data = await gql(
            "mutation($input: CreateCredentialInput!) { createCredential(input: $input) { id name maskedSecret } }",
            { input },
          );
          forget("credentials");
          const made = data.createCredential;
          ctx.go("#/credentials", `Created credential “${made.name}” (${made.maskedSecret}).`);
        } catch (error) {
          showProblems(form, summary, error.fields?.length ? error.fields : [{ field: "", message: error.message }], "The credential was not created");
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", { id: "new-credential" }, "New credential"),
    summary,
    field("Name", name, { name: "name", required: true }),
    kinds,
    partsBox,
    h("div", { class: "form-actions" }, submit),
  );
  return form;
}

// -- event types -----------------------------------------------------------------------------------

export async function eventTypesView(body, ctx) {
  const types = await eventTypes();
  if (!ctx.current()) return;
  const own = types.filter((t) => !t.builtIn);
  const builtIn = types.filter((t) => t.builtIn);
  replace(
    body,
    h("div", { class: "page-head" }, h("h1", {}, "Event types")),
    h(
      "p",
      { class: "muted" },
      "Any type name may be published; a defined type also declares its variables, which templates can use. Every type has the envelope variables ",
      ENVELOPE.map((v, i) => [i ? ", " : "", h("code", {}, v)]),
      ".",
    ),
    ctx.can("publish") ? publishForm(types) : null,
    h(
      "section",
      { "aria-labelledby": "own-types" },
      h("h2", { id: "own-types" }, "Your organisation's types"),
      own.length ? typeList(own) : h("p", { class: "empty card" }, "None yet."),
      ctx.can("manage") ? defineForm(ctx) : null,
    ),
    h(
      "section",
      { "aria-labelledby": "built-in-types" },
      h("h2", { id: "built-in-types" }, "Built-in catalogue"),
      typeList(builtIn),
    ),
  );
}

function typeList(types) {
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
          t.variables.filter((v) => !ENVELOPE.includes(v)).map((v) => h("li", {}, h("code", {}, v))),
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
  const check = () => {
    const text = sample.value.trim();
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
  };
  sample.addEventListener("input", check);
  check();
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button("Define event type", null, { kind: "primary", type: "submit" });
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "define-type",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        let payload;
        try {
          payload = JSON.parse(sample.value);
        } catch (error) {
          showProblems(form, summary, [{ field: "samplePayload", message: `is not valid JSON: ${error.message}` }], "Not defined");
          return;
        }
        submit.disabled = true;
        try {
          const data = await gql(
            "mutation($input: DefineEventTypeInput!) { defineEventType(input: $input) { name variables } }",
            { input: { name: name.value.trim(), description: description.value.trim() || null, samplePayload: payload } },
          );
          forget("eventTypes");
          ctx.go("#/event-types", `Defined “${data.defineEventType.name}” with ${data.defineEventType.variables.length} variables.`);
        } catch (error) {
          showProblems(form, summary, error.fields?.length ? error.fields : [{ field: "", message: error.message }], "Not defined");
        } finally {
          submit.disabled = false;
        }
      },
    },
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

function publishForm(types) {
  const listId = uid("types");
  const type = h("input", { type: "text", list: listId, placeholder: "alert.activated", spellcheck: "false", autocomplete: "off" });
  const payload = h("textarea", { rows: "6", class: "code", spellcheck: "false", placeholder: '{"alert_name": "Disk full"}' });
  const key = h("input", { type: "text", spellcheck: "false", autocomplete: "off" });
  const status = h("p", { class: "template-status", "aria-live": "polite" });
  const result = h("div", { role: "status" });
  const useSample = button("Use the sample payload", () => {
    const found = types.find((t) => t.name === type.value.trim());
    if (found?.samplePayload) {
      payload.value = JSON.stringify(found.samplePayload, null, 2);
      payload.dispatchEvent(new Event("input"));
    }
  }, { kind: "small" });
  payload.addEventListener("input", () => {
    const error = payload.value.trim() ? jsonError(payload.value) : null;
    status.textContent = error ? `Not valid JSON: ${error}` : "";
    status.className = `template-status ${error ? "bad" : ""}`;
  });
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button("Publish", null, { kind: "primary", type: "submit" });
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "publish-title",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        replace(result);
        let data;
        try {
          data = JSON.parse(payload.value);
        } catch (error) {
          showProblems(form, summary, [{ field: "payload", message: `is not valid JSON: ${error.message}` }], "Not published");
          return;
        }
        submit.disabled = true;
        try {
          const answer = await gql(
            "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }",
            { input: { type: type.value.trim(), payload: data, idempotencyKey: key.value.trim() || null } },
          );
          showProblems(form, summary, [], "");
          const { eventId, duplicate } = answer.publishEvent;
          replace(
            result,
            h(
              "p",
              { class: "flash inline" },
              duplicate ? "Already published with this idempotency key: event " : "Published event ",
              h("code", {}, eventId),
              ".",
            ),
          );
        } catch (error) {
          showProblems(form, summary, error.fields?.length ? error.fields : [{ field: "", message: error.message }], "Not published");
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", { id: "publish-title" }, "Publish an event"),
    h("p", { class: "small muted" }, "What a source system does: every active webhook of your organisation that takes this type and whose conditions match gets a delivery."),
    summary,
    h(
      "div",
      { class: "grid-2" },
      field("Type", type, { name: "type", required: true }),
      field("Idempotency key", key, { name: "idempotencyKey", hint: "Optional: publishing again with the same key creates nothing new." }),
    ),
    h("datalist", { id: listId }, types.map((t) => h("option", { value: t.name }))),
    field("Payload (JSON)", payload, { name: "payload", required: true }),
    status,
    h("div", { class: "form-actions" }, submit, useSample),
    result,
  );
  return form;
}
