// Publishing an event from the console, as a source system would (publisher and admin).

import { gql } from "./api.js";
import { button, field, h, jsonError, replace, uid } from "./dom.js";
import { showError, showProblems } from "./problems.js";

const PUBLISH = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }";

export function publishForm(types) {
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
  const publish = async () => {
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
      const input = { type: type.value.trim(), payload: data, idempotencyKey: key.value.trim() || null };
      const answer = await gql(PUBLISH, { input });
      showProblems(form, summary, [], "");
      replace(result, publishedEl(answer.publishEvent));
    } catch (error) {
      showError(form, summary, error, "Not published");
    } finally {
      submit.disabled = false;
    }
  };
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "publish-title", novalidate: true, onsubmit: (e) => (e.preventDefault(), publish()) },
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

function publishedEl({ eventId, duplicate }) {
  return h(
    "p",
    { class: "flash inline" },
    duplicate ? "Already published with this idempotency key: event " : "Published event ",
    h("code", {}, eventId),
    ".",
  );
}
