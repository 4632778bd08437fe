// What several screens share: queries, the catalogue and credentials (cached per key), and the
// read-only rendering of a webhook's definition.

import { gql, storedKey } from "./api.js";
import { badge, button, h, when } from "./dom.js";

export const WEBHOOK_FIELDS = `
  id name description eventTypes targetUrl method headers { name value } credentialId payloadTemplate
  filters { conditions { field operator values } } active rateLimitPerSecond ordered disabledReason
  signingSecret version createdAt updatedAt`;

export const WEBHOOK = `query($id: ID!) { webhook(id: $id) { ${WEBHOOK_FIELDS} } }`;

const cache = new Map();
function cached(name, load) {
  const key = `${storedKey()}:${name}`;
  if (!cache.has(key)) cache.set(key, load().catch((error) => (cache.delete(key), Promise.reject(error))));
  return cache.get(key);
}
export function forget(name) {
  cache.delete(`${storedKey()}:${name}`);
}

/** The catalogue: built-in types first, then the organisation's own; `builtIn` is set on each. */
export const eventTypes = () =>
  cached("eventTypes", async () => {
    const data = await gql("{ eventTypes { name description variables samplePayload builtIn } }");
    return data.eventTypes;
  });

/**
 * The envelope variables (event_id, event_type, …): the server lists them first in every event type's
 * variables, so they are the start that all the types' lists share.
 */
export function envelopeOf(types) {
  const [first, ...others] = types.map((t) => t.variables);
  if (!first) return [];
  const length = first.findIndex((name, i) => others.some((variables) => variables[i] !== name));
  return length === -1 ? first : first.slice(0, length);
}

export const credentials = () =>
  cached("credentials", async () => (await gql("{ credentials { id name kind maskedSecret } }")).credentials);

export const OPERATORS = [
  ["EQ", "equals", "="],
  ["NEQ", "does not equal", "≠"],
  ["IN", "is one of", "in"],
  ["NOT_IN", "is none of", "not in"],
  ["CONTAINS", "contains", "contains"],
  ["EXISTS", "exists", "exists"],
  ["GT", "greater than", ">"],
  ["GTE", "at least", "≥"],
  ["LT", "less than", "<"],
  ["LTE", "at most", "≤"],
  ["MATCHES", "matches (RE2)", "matches"],
];
const SYMBOL = Object.fromEntries(OPERATORS.map(([op, , symbol]) => [op, symbol]));

export function conditionText(condition) {
  const values = condition.values || [];
  if (condition.operator === "EXISTS") {
    return `${condition.field} ${values[0] === false ? "is absent" : "exists"}`;
  }
  const shown = values.map((v) => JSON.stringify(v)).join(", ");
  const list = condition.operator === "IN" || condition.operator === "NOT_IN" ? `[${shown}]` : shown;
  return `${condition.field} ${SYMBOL[condition.operator] || condition.operator} ${list}`;
}

export function conditionsEl(filters) {
  if (!filters || !filters.length) return h("span", { class: "muted" }, "None: every event of these types");
  const groups = [];
  filters.forEach((group, i) => {
    if (i) groups.push(h("span", { class: "or" }, "or"));
    const parts = [];
    group.conditions.forEach((condition, j) => {
      if (j) parts.push(h("span", { class: "and" }, "and"));
      parts.push(h("code", {}, conditionText(condition)));
    });
    groups.push(h("div", { class: "cond-summary" }, parts));
  });
  return h("div", { class: "cond-summaries" }, groups);
}

export function typeChips(names) {
  return h(
    "ul",
    { class: "chips" },
    names.map((name) => h("li", {}, h("code", {}, name))),
  );
}

export function activeBadge(webhook) {
  if (webhook.active) return badge("Active", "ok");
  const reason = { gone: "target answered 410 Gone", failing: "deliveries kept failing" }[webhook.disabledReason];
  return badge(reason ? `Inactive: ${reason}` : "Inactive", reason ? "bad" : "neutral");
}

/** The definition list of a webhook, as it is (overview) or as it stood (history). */
export function definitionEl(webhook, credentialList, { secret = false, named = false } = {}) {
  const credential = credentialList?.find((c) => c.id === webhook.credentialId);
  const rows = [
    ...(named ? [["Name", h("strong", {}, webhook.name)], ["Status", activeBadge(webhook)]] : []),
    ["Description", webhook.description || h("span", { class: "muted" }, "—")],
    ["Event types", typeChips(webhook.eventTypes)],
    [
      "Target",
      h("span", { class: "target" }, h("span", { class: "method" }, webhook.method), " ", h("code", {}, webhook.targetUrl)),
    ],
    [
      "Headers",
      webhook.headers.length
        ? h(
            "ul",
            { class: "plain" },
            webhook.headers.map((x) => h("li", {}, h("code", {}, `${x.name}: ${x.value}`))),
          )
        : h("span", { class: "muted" }, "None"),
    ],
    [
      "Credential",
      webhook.credentialId
        ? credential
          ? `${credential.name} (${credential.kind}, ${credential.maskedSecret})`
          : h("code", {}, webhook.credentialId)
        : h("span", { class: "muted" }, "None"),
    ],
    ["Conditions", conditionsEl(webhook.filters)],
    [
      "Payload template",
      webhook.payloadTemplate
        ? h("pre", { class: "code" }, webhook.payloadTemplate)
        : h("span", { class: "muted" }, "None: the whole event is sent as JSON"),
    ],
    [
      "Delivery",
      `${webhook.rateLimitPerSecond ? `At most ${webhook.rateLimitPerSecond} per second` : "No rate limit"}; ${
        webhook.ordered ? "in order, one at a time" : "in parallel"
      }`,
    ],
    ["Version", `${webhook.version} · created ${when(webhook.createdAt)} · updated ${when(webhook.updatedAt)}`],
  ];
  if (secret && webhook.signingSecret) rows.push(["Signing secret", secretEl(webhook.signingSecret)]);
  return h(
    "dl",
    { class: "definition" },
    rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

function secretEl(value) {
  const masked = "whsec_••••••••••••";
  const code = h("code", { class: "secret" }, masked);
  const toggle = button(
    "Show secret",
    () => {
      const shown = toggle.getAttribute("aria-pressed") !== "true";
      code.textContent = shown ? value : masked;
      toggle.setAttribute("aria-pressed", String(shown));
    },
    { kind: "small", "aria-pressed": "false" },
  );
  return h("span", { class: "secret-row" }, code, " ", toggle);
}
