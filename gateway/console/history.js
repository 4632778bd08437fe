// One webhook's history: every audit record of it, who made each change, and the webhook as it stood.

import { ApiError, gql } from "./api.js";
import { button, h, replace, shortId, timeEl, when } from "./dom.js";
import { WEBHOOK_FIELDS, credentials, definitionEl } from "./shared.js";
import { loadWebhook, notFound, webhookHead } from "./webhook-head.js";

const AUDIT = `query($id: ID, $after: String) {
  auditLog(aggregateId: $id, first: 200, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { position version eventType recordedAt actor data } }
  }
}`;
const AS_OF = `query($id: ID!, $version: Int) { webhookAsOf(id: $id, version: $version) { ${WEBHOOK_FIELDS} } }`;
const SPEC_LABELS = {
  name: "name",
  description: "description",
  event_types: "event types",
  target_url: "target URL",
  method: "method",
  headers: "headers",
  credential_id: "credential",
  payload_template: "payload template",
  filters: "conditions",
  rate_limit_per_second: "rate limit",
  ordered: "ordering",
};
const MOST_RECORDS = 2000; // a page of the audit log is a request: a webhook's history stays bounded

export async function historyView(body, ctx) {
  const [id] = ctx.params;
  const records = await auditRecords(id);
  const [current, creds, actors] = await Promise.all([loadWebhook(id), credentials(), actorNames(records)]);
  if (!ctx.current()) return;
  if (!records.length) {
    notFound(body, ctx, id);
    return;
  }
  // A deleted webhook is shown as it last stood.
  const latest = current || (await gql(AS_OF, { id, version: records.at(-1).version })).webhookAsOf;
  if (!ctx.current() || !latest) return;
  const panel = h("section", { class: "card as-of", "aria-live": "polite", hidden: true });
  const show = async (record, trigger) => {
    for (const b of body.querySelectorAll("[data-version]")) b.setAttribute("aria-pressed", "false");
    trigger.setAttribute("aria-pressed", "true");
    const data = await gql(AS_OF, { id, version: record.version });
    showAsOf(panel, record, data.webhookAsOf, creds);
  };
  replace(
    body,
    webhookHead(ctx, latest, "history", { deleted: !current }),
    h(
      "p",
      { class: "muted" },
      "Every change to this webhook, oldest first, from the tamper-evident audit log. Pick a version to see the webhook as it stood then.",
    ),
    h("div", { class: "card table-card" }, recordsTable(records, actors, show)),
    panel,
  );
}

async function auditRecords(id) {
  const records = [];
  let after = null;
  do {
    const data = await gql(AUDIT, { id, after });
    records.push(...data.auditLog.edges.map((e) => e.node));
    after = data.auditLog.pageInfo.hasNextPage ? data.auditLog.pageInfo.endCursor : null;
  } while (after && records.length < MOST_RECORDS);
  return records;
}

function showAsOf(panel, record, asOf, creds) {
  panel.hidden = false;
  replace(
    panel,
    h("h2", { tabindex: "-1" }, `Version ${record.version}, as it stood on ${when(record.recordedAt)}`),
    asOf ? definitionEl(asOf, creds, { named: true }) : h("p", { class: "muted" }, "Nothing to show at this version."),
  );
  panel.querySelector("h2").focus();
}

function recordsTable(records, actors, show) {
  return h(
    "table",
    { class: "table history" },
    h("caption", { class: "sr-only" }, "Audit records of this webhook"),
    h("thead", {}, h("tr", {}, ["Version", "When", "Who", "What", ""].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      records.map((record) => {
        const view = button(`View version ${record.version}`, (e) => show(record, e.currentTarget), {
          kind: "small",
          "data-version": record.version,
          "aria-pressed": "false",
        });
        return h(
          "tr",
          { "data-record": record.position },
          h("td", { class: "num" }, String(record.version)),
          h("td", {}, timeEl(record.recordedAt)),
          h("td", {}, actors.get(record.actor) || record.actor || "—"),
          h("td", {}, whatChanged(record)),
          h("td", { class: "row-actions" }, record.eventType === "Webhook.Deleted" ? null : view),
        );
      }),
    ),
  );
}

async function actorNames(records) {
  const names = new Map([["system", "system"]]);
  const keys = [...new Set(records.map((r) => r.actor).filter((a) => a && a !== "system"))].slice(0, 25);
  if (!keys.length) return names;
  const params = keys.map((_, i) => `$k${i}: ID`).join(", ");
  const fields = keys
    .map((_, i) => `k${i}: auditLog(aggregateId: $k${i}, first: 1) { edges { node { eventType data } } }`)
    .join(" ");
  try {
    const data = await gql(
      `query(${params}) { ${fields} }`,
      Object.fromEntries(keys.map((key, i) => [`k${i}`, key])),
    );
    keys.forEach((key, i) => {
      const node = data[`k${i}`].edges[0]?.node;
      // an erased record has no data: the key is named without its role
      const role = node?.data ? `${node.data.role} ` : "";
      if (node?.eventType === "ApiKey.Issued") names.set(key, `${role}key ${shortId(key)}`);
    });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  return names;
}

function whatChanged(record) {
  const data = record.data || {};
  switch (record.eventType) {
    case "Webhook.Created":
      return h("span", {}, h("strong", {}, "Created"), ` “${data.spec?.name}”, ${data.active ? "active" : "inactive"}`);
    case "Webhook.Updated": {
      const changes = data.changes || {};
      return h(
        "div",
        {},
        h("strong", {}, "Changed "),
        Object.keys(changes)
          .map((k) => SPEC_LABELS[k] || k)
          .join(", "),
        h(
          "ul",
          { class: "changes" },
          Object.entries(changes).map(([k, v]) =>
            h("li", {}, h("span", { class: "muted" }, `${SPEC_LABELS[k] || k}: `), h("code", { class: "clamp" }, shown(v))),
          ),
        ),
      );
    }
    case "Webhook.Activated":
      return h("strong", {}, "Switched on");
    case "Webhook.Deactivated":
      return h("span", {}, h("strong", {}, "Switched off"), data.reason ? ` (${data.reason})` : "");
    case "Webhook.SigningSecretRotated":
      return h("strong", {}, "Signing secret rotated");
    case "Webhook.Deleted":
      return h("strong", {}, "Deleted");
    default:
      return h("code", {}, record.eventType);
  }
}

function shown(value) {
  if (value === null || value === undefined) return "none";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}
