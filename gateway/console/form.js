// The webhook form: create, and edit with expectedVersion (a conflict is explained, nothing is lost).

import { gql } from "./api.js";
import { button, field, h, jsonError, replace, uid } from "./dom.js";
import { ENVELOPE, OPERATORS, WEBHOOK, WEBHOOK_FIELDS, credentials, eventTypes } from "./shared.js";
import { showProblems } from "./problems.js";

const CREATE = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { ${WEBHOOK_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateWebhookInput!, $expectedVersion: Int) {
  updateWebhook(id: $id, input: $input, expectedVersion: $expectedVersion) { ${WEBHOOK_FIELDS} }
}`;
const METHODS = ["POST", "PUT", "PATCH", "GET", "DELETE"];
const LABELS = {
  name: "Name",
  description: "Description",
  eventTypes: "Event types",
  targetUrl: "Target URL",
  method: "Method",
  headers: "Headers",
  credentialId: "Credential",
  payloadTemplate: "Payload template",
  filters: "Conditions",
  active: "Active",
  rateLimitPerSecond: "Rate limit",
  ordered: "Ordered delivery",
  signingSecret: "Signing secret",
};
const PLACEHOLDERS = {
  EQ: "Disk full, 42 or true",
  NEQ: "resolved",
  IN: "critical, major",
  NOT_IN: "test, staging",
  CONTAINS: "CPU",
  GT: "90 or 2025-01-01T00:00:00Z",
  GTE: "90",
  LT: "10",
  LTE: "10",
  MATCHES: "^LT-PAR-",
};

export async function webhookFormView(body, ctx) {
  const [id] = ctx.params;
  const [types, creds, loaded] = await Promise.all([
    eventTypes(),
    credentials(),
    id ? gql(WEBHOOK, { id }).then((d) => d.webhook) : Promise.resolve(null),
  ]);
  if (!ctx.current()) return;
  if (id && !loaded) {
    replace(body, h("h1", {}, "No such webhook"), h("p", {}, h("a", { href: "#/webhooks" }, "Back to the webhooks")));
    return;
  }
  render(body, ctx, types, creds, loaded);
}

function render(body, ctx, types, creds, base) {
  const editing = Boolean(base);
  let since = base; // the version this form edits; a save names it as expectedVersion
  const start = base || {};

  // -- basics
  const name = h("input", { type: "text", value: start.name || "", autocomplete: "off" });
  const description = h("input", { type: "text", value: start.description || "" });

  // -- event types, from the catalogue (and any undefined ones the webhook already names)
  const chosen = new Set(start.eventTypes || []);
  const known = new Map(types.map((t) => [t.name, t]));
  const names = [...types.map((t) => t.name), ...[...chosen].filter((n) => !known.has(n))];
  const typeBoxes = names.map((typeName) => {
    const box = h("input", { type: "checkbox", value: typeName, checked: chosen.has(typeName), id: uid("type") });
    const spec = known.get(typeName);
    return h(
      "div",
      { class: "type-option" },
      box,
      h(
        "label",
        { for: box.id },
        h("code", {}, typeName),
        h("span", { class: "small muted" }, spec ? spec.description || "" : "not defined: any variable is accepted"),
      ),
    );
  });
  const typesFieldset = h(
    "fieldset",
    { class: "field types", "data-field": "eventTypes" },
    h("legend", {}, "Event types", h("span", { class: "req", "aria-hidden": "true" }, " *")),
    h("p", { class: "hint" }, "The events this webhook receives. Their variables are listed next to the payload template."),
    h("div", { class: "type-grid" }, typeBoxes),
    h("p", { class: "field-error", hidden: true }),
  );
  const selectedTypes = () =>
    typeBoxes.map((b) => b.querySelector("input")).filter((b) => b.checked).map((b) => b.value);

  // -- destination
  const target = h("input", { type: "url", value: start.targetUrl || "", placeholder: "https://example.com/hooks", spellcheck: "false" });
  const method = h("select", {}, METHODS.map((m) => h("option", { value: m, selected: (start.method || "POST") === m }, m)));
  const credential = h(
    "select",
    {},
    h("option", { value: "" }, "None"),
    creds.map((c) =>
      h("option", { value: c.id, selected: start.credentialId === c.id }, `${c.name} (${c.kind}, ${c.maskedSecret})`),
    ),
  );
  const headerRows = h("div", { class: "rows" });
  const headersBox = h(
    "fieldset",
    { class: "field", "data-field": "headers" },
    h("legend", {}, "Headers"),
    h("div", { class: "row-columns", "aria-hidden": "true" }, h("span", {}, "Name"), h("span", {}, "Value")),
    headerRows,
    button("Add header", () => addHeader({ name: "", value: "" }, true), { kind: "small" }),
    h("p", { class: "field-error", hidden: true }),
  );
  const renumberHeaders = () => {
    [...headerRows.children].forEach((row, i) => {
      const [n, v] = row.querySelectorAll("input");
      n.closest(".field").dataset.field = `headers[${i}].name`;
      v.closest(".field").dataset.field = `headers[${i}].value`;
      n.setAttribute("aria-label", `Header ${i + 1} name`);
      v.setAttribute("aria-label", `Header ${i + 1} value`);
      row.querySelector("button").setAttribute("aria-label", `Remove header ${i + 1}`);
    });
  };
  const addHeader = (header, focus) => {
    const n = h("input", { type: "text", value: header.name, placeholder: "X-Team", spellcheck: "false", oninput: checkTemplate });
    const v = h("input", { type: "text", value: header.value, placeholder: "value", spellcheck: "false", oninput: checkTemplate });
    const row = h(
      "div",
      { class: "row header-row" },
      h("div", { class: "field" }, n, h("p", { class: "field-error", hidden: true })),
      h("div", { class: "field" }, v, h("p", { class: "field-error", hidden: true })),
      button("Remove", () => {
        row.remove();
        renumberHeaders();
        checkTemplate();
      }, { kind: "small ghost" }),
    );
    headerRows.append(row);
    renumberHeaders();
    if (focus) n.focus();
  };

  // -- conditions
  const datalistId = uid("paths");
  const datalist = h("datalist", { id: datalistId });
  const groupsBox = h("div", { class: "groups" });
  const renumberGroups = () => {
    const groups = [...groupsBox.querySelectorAll(".cond-group")];
    groups.forEach((group, i) => {
      group.dataset.field = `filters[${i}].conditions`;
      group.querySelector("h3").textContent = `Group ${i + 1}: all of these`;
      group.querySelector(".remove-group").setAttribute("aria-label", `Remove group ${i + 1}`);
      group.querySelector(".add-condition").setAttribute("aria-label", `Add a condition to group ${i + 1}`);
      [...group.querySelectorAll(".cond-row")].forEach((row, j) => {
        const where = `filters[${i}].conditions[${j}]`;
        const label = `group ${i + 1}, condition ${j + 1}`;
        for (const part of ["field", "operator", "values"]) {
          const cell = row.querySelector(`[data-part="${part}"]`);
          cell.dataset.field = `${where}.${part}`;
          cell.querySelector("label").textContent = `${part === "values" ? "Value" : part === "field" ? "Field" : "Operator"}, ${label}`;
        }
        row.querySelector(".remove-condition").setAttribute("aria-label", `Remove ${label}`);
      });
    });
    [...groupsBox.querySelectorAll(".or")].forEach((el) => el.remove());
    groups.slice(1).forEach((group) => group.before(h("div", { class: "or", "aria-hidden": "true" }, "or")));
  };
  const addGroup = (conditions, focus) => {
    const rows = h("div", { class: "rows" });
    const group = h(
      "div",
      { class: "cond-group", role: "group" },
      h(
        "div",
        { class: "cond-group-head" },
        h("h3", {}),
        button("Remove group", () => {
          group.remove();
          renumberGroups();
        }, { kind: "small ghost remove-group" }),
      ),
      h(
        "div",
        { class: "cond-columns", "aria-hidden": "true" },
        h("span", {}, "Field (path in the payload)"),
        h("span", {}, "Operator"),
        h("span", {}, "Value(s)"),
      ),
      rows,
      button("Add condition", () => addCondition(rows, { field: "", operator: "EQ", values: [""] }, true), {
        kind: "small add-condition",
      }),
      h("p", { class: "field-error", hidden: true }),
    );
    groupsBox.append(group);
    const titleId = uid("group");
    group.querySelector("h3").id = titleId;
    group.setAttribute("aria-labelledby", titleId);
    for (const condition of conditions) addCondition(rows, condition, false);
    renumberGroups();
    if (focus) rows.querySelector("input")?.focus();
  };
  const addCondition = (rows, condition, focus) => {
    const fieldInput = h("input", { type: "text", value: condition.field, list: datalistId, placeholder: "alert_name", spellcheck: "false", id: uid("cf") });
    const operator = h(
      "select",
      { id: uid("co") },
      OPERATORS.map(([op, label]) => h("option", { value: op, selected: condition.operator === op }, `${label} (${op})`)),
    );
    const valueInput = h("input", { type: "text", value: valuesText(condition), spellcheck: "false", id: uid("cv") });
    const exists = h(
      "select",
      { id: uid("ce") },
      h("option", { value: "present", selected: condition.values?.[0] !== false }, "present, not null"),
      h("option", { value: "absent", selected: condition.values?.[0] === false }, "absent or null"),
    );
    const valueCell = h("div", { class: "field", "data-part": "values" }, h("label", { class: "sr-only" }), valueInput, exists, h("p", { class: "field-error", hidden: true }));
    const sync = () => {
      const isExists = operator.value === "EXISTS";
      valueInput.hidden = isExists;
      exists.hidden = !isExists;
      valueCell.querySelector("label").htmlFor = isExists ? exists.id : valueInput.id;
      valueInput.placeholder = PLACEHOLDERS[operator.value] || "";
    };
    operator.addEventListener("change", sync);
    const row = h(
      "div",
      { class: "cond-row" },
      h("div", { class: "field", "data-part": "field" }, h("label", { class: "sr-only", for: fieldInput.id }), fieldInput, h("p", { class: "field-error", hidden: true })),
      h("div", { class: "field", "data-part": "operator" }, h("label", { class: "sr-only", for: operator.id }), operator, h("p", { class: "field-error", hidden: true })),
      valueCell,
      button("Remove", () => {
        row.remove();
        renumberGroups();
      }, { kind: "small ghost remove-condition" }),
    );
    rows.append(row);
    sync();
    renumberGroups();
    if (focus) fieldInput.focus();
  };
  const conditionsBox = h(
    "div",
    { class: "field", "data-field": "filters" },
    h(
      "p",
      { class: "hint" },
      "Deliver only the events that match: every condition of a group must hold (AND), and any one group is enough (OR). No group: every event of the chosen types.",
    ),
    groupsBox,
    button("Add a group of conditions", () => addGroup([{ field: "", operator: "EQ", values: [""] }], true), { kind: "small" }),
    h("p", { class: "field-error", hidden: true }),
    datalist,
  );

  // -- payload template
  const template = h("textarea", {
    rows: "12",
    class: "code",
    spellcheck: "false",
    value: start.payloadTemplate || "",
    placeholder: '{\n  "text": "{{alert_name}} on {{workspace_name}}"\n}',
  });
  const templateStatus = h("p", { class: "template-status", "aria-live": "polite" });
  const variablesBox = h("div", { class: "variables" });
  function checkTemplate() {
    const contentType = [...headerRows.children]
      .map((row) => [...row.querySelectorAll("input")].map((i) => i.value))
      .find(([n]) => n.trim().toLowerCase() === "content-type")?.[1];
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
    templateStatus.textContent = message;
    templateStatus.className = `template-status ${tone}`;
    template.toggleAttribute("aria-invalid", tone === "bad");
  }
  template.addEventListener("input", checkTemplate);
  const insert = (variable) => {
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
    checkTemplate();
  };
  const renderVariables = () => {
    const selected = selectedTypes();
    const payloadPaths = new Set();
    const sections = [
      h("h3", {}, "Every event"),
      h("div", { class: "var-list" }, ENVELOPE.map((v) => varButton(v))),
    ];
    for (const typeName of selected) {
      const spec = known.get(typeName);
      sections.push(h("h3", {}, h("code", {}, typeName)));
      if (!spec) {
        sections.push(h("p", { class: "small muted" }, "Not defined: any variable is accepted."));
        continue;
      }
      const own = spec.variables.filter((v) => !ENVELOPE.includes(v));
      own.forEach((v) => payloadPaths.add(v));
      sections.push(
        own.length
          ? h("div", { class: "var-list" }, own.map((v) => varButton(v)))
          : h("p", { class: "small muted" }, "No payload variables."),
      );
    }
    if (!selected.length) sections.push(h("p", { class: "small muted" }, "Choose event types to see their variables."));
    replace(variablesBox, h("h2", { class: "panel-title" }, "Variables"), h("p", { class: "small muted" }, "Click to insert at the cursor."), sections);
    replace(datalist, [...payloadPaths].map((p) => h("option", { value: p })));
  };
  const varButton = (variable) =>
    h("button", { type: "button", class: "var", onclick: () => insert(variable), title: `Insert {{${variable}}}` }, variable);
  typesFieldset.addEventListener("change", renderVariables);

  // -- options
  const rate = h("input", { type: "number", min: "1", step: "1", value: start.rateLimitPerSecond ?? "", inputmode: "numeric" });
  const ordered = h("input", { type: "checkbox", checked: start.ordered, id: uid("ordered") });
  const active = h("input", { type: "checkbox", checked: editing ? false : start.active !== false, id: uid("active") });

  // -- the form
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const conflict = h("section", { class: "conflict", role: "alert", tabindex: "-1", hidden: true });
  const submit = button(editing ? "Save changes" : "Create webhook", null, { kind: "primary", type: "submit" });
  const cancelHref = editing ? `#/webhooks/${base.id}` : "#/webhooks";
  const form = h(
    "form",
    { class: "webhook-form", novalidate: true, onsubmit: (e) => (e.preventDefault(), save()) },
    summary,
    conflict,
    section("Basics",
      field("Name", name, { name: "name", required: true }),
      field("Description", description, { name: "description", hint: "Optional: what this webhook is for." }),
    ),
    section("Events", typesFieldset),
    section("Destination",
      h("div", { class: "grid-2-1" },
        field("Target URL", target, { name: "targetUrl", required: true }),
        field("Method", method, { name: "method" }),
      ),
      field("Credential", credential, {
        name: "credentialId",
        hint: creds.length ? "Sent as the Authorization header (or the header it names)." : "No credential yet: create one on the Credentials page.",
      }),
      headersBox,
    ),
    section("Conditions", conditionsBox),
    section("Payload",
      h("div", { class: "template-editor" },
        h("div", {},
          field("Payload template", template, {
            name: "payloadTemplate",
            hint: "JSON with {{variable}} placeholders inside strings. A string that is only one placeholder takes the value's type.",
          }),
          templateStatus,
        ),
        h("aside", { "aria-label": "Template variables" }, variablesBox),
      ),
    ),
    section("Delivery options",
      h("div", { class: "grid-2" },
        field("Rate limit (requests per second)", rate, { name: "rateLimitPerSecond", hint: "Empty: no limit." }),
        h("div", { class: "checks" },
          h("div", { class: "check", "data-field": "ordered" }, ordered, h("label", { for: ordered.id }, "Ordered: one delivery at a time, in the order the events were recorded")),
          editing ? null : h("div", { class: "check", "data-field": "active" }, active, h("label", { for: active.id }, "Active: start delivering at once")),
        ),
      ),
    ),
    h("div", { class: "form-actions" }, submit, h("a", { class: "btn ghost", href: cancelHref }, "Cancel")),
  );

  for (const header of start.headers || []) addHeader(header, false);
  for (const group of start.filters || []) addGroup(group.conditions, false);
  renderVariables();
  checkTemplate();

  replace(
    body,
    h("p", { class: "crumbs" }, h("a", { href: "#/webhooks" }, "Webhooks"), " / ", editing ? h("a", { href: cancelHref }, base.name) : null),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit “${base.name}”` : "New webhook"), editing ? h("span", { class: "muted", "data-testid": "editing-version" }, `Editing version ${base.version}`) : null),
    form,
  );

  function readInput() {
    const problems = [];
    const groups = [...groupsBox.querySelectorAll(".cond-group")]
      .map((group) => ({
        conditions: [...group.querySelectorAll(".cond-row")]
          .map((row) => {
            const [fieldInput, valueInput] = row.querySelectorAll("input");
            const [operator, exists] = row.querySelectorAll("select");
            return readCondition(fieldInput.value, operator.value, valueInput.value, exists.value);
          })
          .filter(Boolean),
      }))
      .filter((g) => g.conditions.length);
    const headers = [...headerRows.children]
      .map((row) => [...row.querySelectorAll("input")].map((i) => i.value))
      .filter(([n, v]) => n.trim() || v.trim())
      .map(([n, v]) => ({ name: n.trim(), value: v }));
    let rateLimit = null;
    if (rate.value.trim()) {
      rateLimit = Number(rate.value);
      if (!Number.isInteger(rateLimit)) problems.push({ field: "rateLimitPerSecond", message: "must be a whole number" });
    } else if (rate.validity.badInput) {
      problems.push({ field: "rateLimitPerSecond", message: "must be a whole number" });
    }
    const input = {
      name: name.value.trim(),
      description: description.value.trim() || null,
      eventTypes: selectedTypes(),
      targetUrl: target.value.trim(),
      method: method.value,
      headers,
      credentialId: credential.value || null,
      payloadTemplate: template.value.trim() ? template.value : null,
      filters: groups,
      rateLimitPerSecond: rateLimit,
      ordered: ordered.checked,
    };
    if (!editing) input.active = active.checked;
    return { input, problems };
  }

  async function save() {
    const { input, problems } = readInput();
    conflict.hidden = true;
    if (problems.length) {
      showProblems(form, summary, problems, "The webhook was not saved");
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        const data = await gql(UPDATE, { id: base.id, input, expectedVersion: since.version });
        ctx.go(`#/webhooks/${base.id}`, `Saved “${data.updateWebhook.name}” (version ${data.updateWebhook.version}).`);
      } else {
        const data = await gql(CREATE, { input });
        ctx.go(`#/webhooks/${data.createWebhook.id}`, `Created “${data.createWebhook.name}”.`);
      }
    } catch (error) {
      if (error.code === "CONFLICT" && editing) {
        await explainConflict();
      } else {
        const fields = error.fields?.length ? error.fields : [{ field: "", message: error.message }];
        showProblems(form, summary, fields, "The webhook was not saved");
      }
    } finally {
      submit.disabled = false;
    }
  }

  async function explainConflict() {
    showProblems(form, summary, [], "");
    const current = (await gql(WEBHOOK, { id: base.id })).webhook;
    if (!current) {
      replace(conflict, h("h2", {}, "Not saved: this webhook has been deleted meanwhile"), h("p", {}, "There is nothing left to save your changes to."));
      conflict.hidden = false;
      conflict.focus();
      return;
    }
    const changed = Object.keys(LABELS).filter((k) => JSON.stringify(current[k]) !== JSON.stringify(since[k]));
    replace(
      conflict,
      h("h2", {}, "Not saved: this webhook changed while you were editing"),
      h(
        "p",
        {},
        `You started from version ${since.version}, but it is now at version ${current.version}: someone else (or you, in another tab) saved a change in between. `,
        "Saving yours now would silently undo theirs, so nothing was saved.",
      ),
      changed.length
        ? [
            h("p", {}, "Changed meanwhile:"),
            h(
              "ul",
              {},
              changed.map((k) => h("li", {}, h("strong", {}, LABELS[k]), ": ", h("code", { class: "clamp" }, shown(current[k])))),
            ),
          ]
        : h("p", {}, "Nothing you can see here changed: only its version moved on."),
      h("p", {}, "Your edits are still in this form. Either start again from the current version, or save your edits over it."),
      h(
        "div",
        { class: "actions" },
        button(`Load version ${current.version} (discard my edits)`, () => render(body, ctx, types, creds, current), { kind: "primary" }),
        button(`Save my edits over version ${current.version}`, () => {
          since = current;
          save();
        }),
      ),
    );
    conflict.hidden = false;
    conflict.focus();
  }
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function section(title, ...children) {
  const id = uid("section");
  return h("section", { class: "card form-section", "aria-labelledby": id }, h("h2", { id }, title), children);
}

function valuesText(condition) {
  const values = condition.values || [];
  if (condition.operator === "EXISTS") return "";
  const one = (v) => {
    if (typeof v !== "string") return JSON.stringify(v);
    let parsed;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    const ambiguous = parsed !== undefined || v.includes(",") || v !== v.trim();
    return ambiguous && condition.operator !== "MATCHES" ? JSON.stringify(v) : v;
  };
  return values.map(one).join(", ");
}

function parseValue(raw, operator) {
  const text = raw.trim();
  if (operator === "MATCHES") return raw;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function splitList(raw) {
  const parts = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw[i];
    if (c === "\\" && quoted) {
      current += c + (raw[i + 1] ?? "");
      i += 1;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

function readCondition(fieldValue, operator, rawValues, exists) {
  if (!fieldValue.trim() && !rawValues.trim() && operator !== "EXISTS") return null;
  const condition = { field: fieldValue.trim(), operator };
  if (operator === "EXISTS") condition.values = exists === "absent" ? [false] : null;
  else if (operator === "IN" || operator === "NOT_IN") condition.values = splitList(rawValues).map((v) => parseValue(v, operator));
  else condition.values = [parseValue(rawValues, operator)];
  return condition;
}
