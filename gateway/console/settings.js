// Organisation settings: the retention policy, which admins edit (each refused duration shown next to its
// field) and auditors read.

import { gql } from "./api.js";
import { field, h, replace } from "./dom.js";
import { submission } from "./problems.js";
import { PERMISSION as P } from "./roles.js";

const FIELDS = "payloads deliveries";
const READ = `{ retentionPolicy { ${FIELDS} } }`;
const SET = `mutation($input: RetentionPolicyInput!) { setRetentionPolicy(input: $input) { ${FIELDS} } }`;
const WINDOWS = [
  ["payloads", "Payloads", "Older event payloads, request and response bodies are erased; statuses and times stay."],
  ["deliveries", "Deliveries", "Older deliveries and their events are removed. At least as long as payloads."],
];
const DURATIONS = "ISO 8601 durations in weeks, days, hours, minutes or seconds: “P30D”, “P2W”, “PT6H”. Empty keeps forever.";

export async function settingsView(body, ctx) {
  const render = async (saved) => {
    const { retentionPolicy } = await gql(READ);
    if (!ctx.current()) return;
    replace(
      body,
      h("div", { class: "page-head" }, h("h1", {}, "Organisation settings")),
      h("p", { class: "muted" }, `Settings of ${ctx.organization}. Every change is recorded in the audit log with its key.`),
      ctx.can(P.SET_RETENTION_POLICY) ? policyForm(retentionPolicy, saved, render) : policyCard(retentionPolicy),
    );
  };
  await render();
}

function notYetApplied() {
  return h("p", { class: "hint" }, "The policy is recorded; the sweep that applies it is not running yet, so nothing is erased or removed.");
}

function policyCard(policy) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "retention-title", "data-retention": "read-only" },
    h("h2", { id: "retention-title" }, "Retention"),
    h(
      "dl",
      { class: "definition" },
      WINDOWS.flatMap(([name, label, what]) => [
        h("dt", {}, label),
        h("dd", { "data-window": name }, policy[name] ? h("code", {}, policy[name]) : "Kept forever", h("p", { class: "hint" }, what)),
      ]),
    ),
    h("p", { class: "muted small" }, "Only an admin changes the retention policy."),
    notYetApplied(),
  );
}

function policyForm(policy, saved, render) {
  const inputs = Object.fromEntries(
    WINDOWS.map(([name]) => [name, h("input", { type: "text", autocomplete: "off", spellcheck: "false", value: policy[name] || "", placeholder: "forever" })]),
  );
  const status = h("p", { class: "small muted", role: "status" }, saved ? "Saved." : "");
  const { summary, submit, onsubmit } = submission("Save retention policy", "The policy was not saved", async () => {
    status.textContent = "";
    const input = Object.fromEntries(WINDOWS.map(([name]) => [name, inputs[name].value.trim() || null]));
    await gql(SET, { input });
    await render(true);
  });
  return h(
    "form",
    { class: "card", "aria-labelledby": "retention-title", novalidate: true, onsubmit },
    h("h2", { id: "retention-title" }, "Retention"),
    h("p", { class: "muted" }, DURATIONS),
    summary,
    h("div", { class: "grid-2" }, WINDOWS.map(([name, label, what]) => field(label, inputs[name], { name, hint: what }))),
    notYetApplied(),
    h("div", { class: "form-actions" }, submit, status),
  );
}
