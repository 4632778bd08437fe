// Webhooks: the list, one webhook (overview, send test, delete), its deliveries (live) and its history.

import { ApiError, gql } from "./api.js";
import {
  STATUS_TONE,
  badge,
  button,
  field,
  h,
  pretty,
  relative,
  replace,
  shortId,
  timeEl,
  uid,
  when,
} from "./dom.js";
import {
  WEBHOOK,
  WEBHOOK_FIELDS,
  activeBadge,
  credentials,
  definitionEl,
  eventTypes,
  typeChips,
} from "./shared.js";

const WEBHOOKS = `query($first: Int, $after: String, $active: Boolean, $eventType: String) {
  webhooks(first: $first, after: $after, active: $active, eventType: $eventType) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${WEBHOOK_FIELDS} } }
  }
}`;
const SET_ACTIVE = `mutation($id: ID!, $active: Boolean!) {
  setWebhookActive(id: $id, active: $active) { id active disabledReason version }
}`;
const PAGE_SIZE = 10;

// Kept while signed in, so that coming back to the list keeps its filters and page.
const listState = {};
export function resetWebhookList() {
  Object.assign(listState, { active: "", eventType: "", cursors: [null], page: 0 });
}
resetWebhookList();

// -- the list ------------------------------------------------------------------------------------

export async function webhooksView(body, ctx) {
  const [types, creds] = await Promise.all([
    eventTypes(),
    ctx.can("readCredentials") ? credentials() : Promise.resolve(null),
  ]);
  if (!ctx.current()) return;
  const activeSelect = h(
    "select",
    {},
    [
      ["", "All"],
      ["true", "Active"],
      ["false", "Inactive"],
    ].map(([value, label]) => h("option", { value, selected: listState.active === value }, label)),
  );
  const typeSelect = h(
    "select",
    {},
    h("option", { value: "" }, "All event types"),
    types.map((t) => h("option", { value: t.name, selected: listState.eventType === t.name }, t.name)),
  );
  const onFilter = () => {
    listState.active = activeSelect.value;
    listState.eventType = typeSelect.value;
    listState.cursors = [null];
    listState.page = 0;
    load();
  };
  activeSelect.addEventListener("change", onFilter);
  typeSelect.addEventListener("change", onFilter);

  const table = h("div", { class: "card table-card", "aria-live": "polite", "aria-busy": "true" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of webhooks" });
  replace(
    body,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Webhooks"),
      ctx.can("manage") ? h("a", { class: "btn primary", href: "#/webhooks/new" }, "New webhook") : null,
    ),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter webhooks", onsubmit: (e) => e.preventDefault() },
      field("Status", activeSelect),
      field("Event type", typeSelect),
    ),
    table,
    pager,
  );

  let generation = 0; // filters changed quickly: only the answer to the latest request is shown
  async function load() {
    const mine = ++generation;
    table.setAttribute("aria-busy", "true");
    const data = await gql(WEBHOOKS, {
      first: PAGE_SIZE,
      after: listState.cursors[listState.page],
      active: listState.active === "" ? null : listState.active === "true",
      eventType: listState.eventType || null,
    });
    if (!ctx.current() || mine !== generation) return;
    const page = data.webhooks;
    table.removeAttribute("aria-busy");
    if (!page.edges.length) {
      const filtered = listState.active || listState.eventType;
      replace(
        table,
        h(
          "p",
          { class: "empty" },
          filtered
            ? "No webhook matches these filters."
            : "No webhooks yet. A webhook sends the events you choose to a URL of yours.",
        ),
      );
    } else {
      replace(table, listTable(ctx, page.edges.map((e) => e.node), creds));
    }
    const start = listState.page * PAGE_SIZE;
    listState.cursors[listState.page + 1] = page.pageInfo.endCursor;
    replace(
      pager,
      h(
        "p",
        { class: "muted" },
        page.totalCount
          ? `Showing ${start + 1}–${start + page.edges.length} of ${page.totalCount}`
          : "Showing 0 of 0",
      ),
      button(
        "Previous page",
        () => {
          listState.page -= 1;
          load();
        },
        { disabled: listState.page === 0 },
      ),
      button(
        "Next page",
        () => {
          listState.page += 1;
          load();
        },
        { disabled: !page.pageInfo.hasNextPage },
      ),
    );
  }
  await load();
}

function listTable(ctx, webhooks, creds) {
  const credentialName = (id) => {
    if (!id) return h("span", { class: "muted" }, "—");
    const found = creds?.find((c) => c.id === id);
    return found ? found.name : h("span", { class: "muted" }, "set");
  };
  return h(
    "table",
    { class: "table" },
    h("caption", { class: "sr-only" }, "Webhooks"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Event types", "Target", "Credential", "Active"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      webhooks.map((w) =>
        h(
          "tr",
          { "data-webhook": w.id },
          h(
            "td",
            {},
            h("a", { class: "strong", href: `#/webhooks/${w.id}` }, w.name),
            w.description ? h("div", { class: "muted small clamp" }, w.description) : null,
          ),
          h("td", {}, typeChips(w.eventTypes)),
          h(
            "td",
            { class: "target-cell" },
            h("span", { class: "method" }, w.method),
            " ",
            h("code", { title: w.targetUrl }, w.targetUrl),
          ),
          h("td", {}, credentialName(w.credentialId)),
          h("td", {}, ctx.can("manage") ? activeSwitch(w) : activeBadge(w)),
        ),
      ),
    ),
  );
}

function activeSwitch(webhook) {
  const state = h("span", { class: "switch-text" });
  const error = h("span", { class: "field-error inline", role: "alert", hidden: true });
  const toggle = h(
    "button",
    { type: "button", class: "switch", role: "switch", "aria-label": `Active: ${webhook.name}` },
    h("span", { class: "knob", "aria-hidden": "true" }),
  );
  const show = (w) => {
    toggle.setAttribute("aria-checked", String(w.active));
    state.textContent = w.active ? "On" : w.disabledReason ? `Off (${w.disabledReason})` : "Off";
  };
  show(webhook);
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    error.hidden = true;
    try {
      const data = await gql(SET_ACTIVE, { id: webhook.id, active: !webhook.active });
      Object.assign(webhook, data.setWebhookActive);
      show(webhook);
    } catch (caught) {
      error.hidden = false;
      error.textContent = caught.message;
    } finally {
      toggle.disabled = false;
    }
  });
  return h("div", { class: "switch-wrap" }, toggle, state, error);
}

// -- one webhook: header and tabs ----------------------------------------------------------------

async function loadWebhook(ctx, id) {
  const data = await gql(WEBHOOK, { id });
  return data.webhook;
}

function webhookHead(ctx, webhook, tab, { deleted = false } = {}) {
  const id = webhook.id;
  const tabs = [
    ["overview", "Overview", `#/webhooks/${id}`, !deleted],
    ["deliveries", "Deliveries", `#/webhooks/${id}/deliveries`, !deleted && ctx.can("readDeliveries")],
    ["history", "History", `#/webhooks/${id}/history`, ctx.can("readAudit")],
  ].filter(([, , , shown]) => shown);
  return h(
    "div",
    { class: "webhook-head" },
    h("p", { class: "crumbs" }, h("a", { href: "#/webhooks" }, "Webhooks"), " / "),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, webhook.name, " ", deleted ? badge("Deleted", "bad") : activeBadge(webhook)),
      h("div", { class: "actions", id: "webhook-actions" }),
    ),
    h(
      "nav",
      { class: "tabs", "aria-label": "Webhook" },
      h(
        "ul",
        {},
        tabs.map(([key, label, href]) =>
          h("li", {}, h("a", { href, "aria-current": key === tab ? "page" : null }, label)),
        ),
      ),
    ),
  );
}

function notFound(body, ctx, id) {
  replace(
    body,
    h("h1", {}, "No such webhook"),
    h(
      "p",
      {},
      "It does not exist in your organisation, or it has been deleted. ",
      ctx.can("readAudit") ? h("a", { href: `#/webhooks/${id}/history` }, "Its history") : null,
      ctx.can("readAudit") ? " stays readable. " : null,
      h("a", { href: "#/webhooks" }, "Back to the webhooks"),
    ),
  );
}

// -- overview, test, delete ------------------------------------------------------------------------

const SEND_TEST = `mutation($id: ID!, $sample: Boolean) {
  sendTest(webhookId: $id, useSampleData: $sample) {
    success statusCode durationMs responseBody errors requestBody
  }
}`;

export async function webhookView(body, ctx) {
  const [id] = ctx.params;
  const [webhook, creds] = await Promise.all([
    loadWebhook(ctx, id),
    ctx.can("readCredentials") ? credentials() : Promise.resolve(null),
  ]);
  if (!ctx.current()) return;
  if (!webhook) {
    notFound(body, ctx, id);
    return;
  }
  replace(
    body,
    webhookHead(ctx, webhook, "overview"),
    h(
      "section",
      { class: "card", "aria-labelledby": "definition-title" },
      h("h2", { id: "definition-title" }, "Definition"),
      definitionEl(webhook, creds, { secret: ctx.can("secrets") }),
    ),
    ctx.can("manage") ? testCard(webhook) : null,
  );
  if (ctx.can("manage")) {
    replace(
      body.querySelector("#webhook-actions"),
      h("a", { class: "btn", href: `#/webhooks/${id}/edit` }, "Edit"),
      deleteButton(ctx, webhook, body),
    );
  }
}

function testCard(webhook) {
  const sample = h("input", { type: "checkbox", id: uid("sample") });
  const result = h("div", { class: "test-result", "aria-live": "polite" });
  const send = button(
    "Send test",
    async () => {
      send.disabled = true;
      send.textContent = "Sending…";
      try {
        const data = await gql(SEND_TEST, { id: webhook.id, sample: sample.checked });
        replace(result, testResultEl(data.sendTest));
      } catch (caught) {
        replace(result, h("p", { class: "form-error", role: "alert" }, caught.message));
      } finally {
        send.disabled = false;
        send.textContent = "Send test";
      }
    },
    { kind: "primary" },
  );
  return h(
    "section",
    { class: "card", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Send a test"),
    h(
      "p",
      { class: "muted" },
      "Sends now what a delivery would send, signed, to the target. Without sample data the placeholders go out as written.",
    ),
    h(
      "div",
      { class: "inline-form" },
      h(
        "div",
        { class: "check" },
        sample,
        h("label", { for: sample.id }, "Render the template with the sample payload of the first defined event type"),
      ),
      send,
    ),
    result,
  );
}

function testResultEl(test) {
  const outcome = test.success
    ? badge("Succeeded", "ok")
    : badge(test.statusCode ? "Failed" : "Not sent", "bad");
  return h(
    "div",
    { class: "result", "data-testid": "test-result" },
    h(
      "p",
      { class: "result-line" },
      outcome,
      h("span", {}, "Status ", h("strong", {}, test.statusCode ?? "none")),
      h("span", {}, "Duration ", h("strong", {}, test.durationMs == null ? "—" : `${test.durationMs.toFixed(1)} ms`)),
    ),
    test.errors.length
      ? h("ul", { class: "errors" }, test.errors.map((e) => h("li", {}, e)))
      : null,
    h(
      "div",
      { class: "bodies" },
      h(
        "div",
        {},
        h("h3", {}, "Request body"),
        h("pre", { class: "code" }, pretty(test.requestBody) || h("span", { class: "muted" }, "(none)")),
      ),
      h(
        "div",
        {},
        h("h3", {}, "Response body"),
        h("pre", { class: "code" }, pretty(test.responseBody) || h("span", { class: "muted" }, "(empty)")),
      ),
    ),
  );
}

function deleteButton(ctx, webhook, body) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const cancel = button("Cancel", () => dialog.close(), { autofocus: true });
  const confirm = button(
    "Delete webhook",
    async () => {
      confirm.disabled = true;
      try {
        await gql("mutation($id: ID!) { deleteWebhook(id: $id) }", { id: webhook.id });
        dialog.close();
        ctx.go("#/webhooks", `Deleted “${webhook.name}”. Its history stays readable in the audit log.`);
      } catch (caught) {
        error.hidden = false;
        error.textContent = caught.message;
        confirm.disabled = false;
      }
    },
    { kind: "danger" },
  );
  const titleId = uid("delete");
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId },
    h("h2", { id: titleId }, `Delete “${webhook.name}”?`),
    h(
      "p",
      {},
      "This cannot be undone. No more events will be delivered to ",
      h("code", {}, webhook.targetUrl),
      ", and deliveries waiting for a retry stop.",
    ),
    h("p", { class: "muted" }, "Its history (the audit records and past versions) stays readable."),
    error,
    h("div", { class: "actions" }, cancel, confirm),
  );
  body.append(dialog);
  return button("Delete…", () => {
    error.hidden = true;
    dialog.showModal();
  }, { kind: "danger-outline" });
}

// -- deliveries, live ------------------------------------------------------------------------------

const DELIVERY_FIELDS = `id webhookId eventId eventType status nextAttemptAt createdAt
  attempts { number startedAt durationMs statusCode error responseBody }`;
const DELIVERIES = `query($webhookId: ID, $status: DeliveryStatus, $first: Int, $after: String) {
  deliveries(webhookId: $webhookId, status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${DELIVERY_FIELDS} } }
  }
}`;
const DELIVERY = `query($id: ID!) { delivery(id: $id) { ${DELIVERY_FIELDS} } }`;
const UPDATES = `subscription($webhookId: ID, $after: String) {
  deliveryUpdates(webhookId: $webhookId, after: $after) { cursor deliveryId status attempt statusCode at }
}`;
const LIVE_TEXT = {
  idle: ["Not live", "neutral"],
  connecting: ["Connecting…", "neutral"],
  reconnecting: ["Reconnecting…", "warn"],
  live: ["Live", "ok"],
  refused: ["Live updates refused", "bad"],
};

export async function deliveriesView(body, ctx) {
  const [id] = ctx.params;
  const webhook = await loadWebhook(ctx, id);
  if (!ctx.current()) return undefined;
  if (!webhook) {
    notFound(body, ctx, id);
    return undefined;
  }
  const rows = new Map(); // delivery id -> {delivery, row, detail}
  let cursor = null; // of the subscription: resumes after a reconnect with nothing lost
  let after = null; // of the list
  let statusFilter = "";
  let total = 0;
  const tbody = h("tbody", {});
  const liveDot = h("span", { class: "live", role: "status" });
  const count = h("p", { class: "muted" });
  const more = button("Load more", () => load(false));
  const empty = h("p", { class: "empty", hidden: true }, "No deliveries yet. They appear here as events arrive.");
  const status = h(
    "select",
    { onchange: () => ((statusFilter = status.value), load(true)) },
    h("option", { value: "" }, "All statuses"),
    ["PENDING", "RETRYING", "SUCCEEDED", "FAILED"].map((s) => h("option", { value: s }, capitalised(s))),
  );
  replace(
    body,
    webhookHead(ctx, webhook, "deliveries"),
    h(
      "div",
      { class: "toolbar" },
      h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, field("Status", status)),
      liveDot,
    ),
    h(
      "div",
      { class: "card table-card" },
      h(
        "table",
        { class: "table deliveries" },
        h("caption", { class: "sr-only" }, "Deliveries, newest first"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Created", "Event", "Status", "Attempts", "Last answer", "Next attempt", ""].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        tbody,
      ),
      empty,
    ),
    h("div", { class: "pager" }, count, more),
  );

  const stopStatus = ctx.live.onStatus((s) => {
    const [text, tone] = LIVE_TEXT[s];
    replace(liveDot, h("span", { class: `dot ${tone}`, "aria-hidden": "true" }), text);
    liveDot.dataset.state = s;
    if (s === "live") catchUp(); // what changed before the subscription started is read once more
  });
  const refreshing = new Map();
  const refresh = async (deliveryId) => {
    if (refreshing.has(deliveryId)) {
      refreshing.set(deliveryId, true); // asked again meanwhile: fetch once more when this one ends
      return;
    }
    refreshing.set(deliveryId, false);
    try {
      do {
        refreshing.set(deliveryId, false);
        const data = await gql(DELIVERY, { id: deliveryId });
        if (data.delivery && ctx.current()) upsert(data.delivery, true);
      } while (refreshing.get(deliveryId));
    } finally {
      refreshing.delete(deliveryId);
    }
  };
  const unsubscribe = ctx.live.subscribe(
    UPDATES,
    () => ({ webhookId: id, after: cursor }),
    (data) => {
      cursor = data.deliveryUpdates.cursor;
      refresh(data.deliveryUpdates.deliveryId);
    },
  );
  const ticker = setInterval(() => {
    for (const entry of rows.values()) {
      const cell = entry.row.querySelector("[data-next]");
      if (cell && entry.delivery.nextAttemptAt) cell.textContent = relative(entry.delivery.nextAttemptAt);
    }
  }, 1000);

  function upsert(delivery, live) {
    if (statusFilter && delivery.status !== statusFilter && !rows.has(delivery.id)) return;
    const existing = rows.get(delivery.id);
    const open = existing ? !existing.detail.hidden : false;
    const [row, detail] = deliveryRows(ctx, delivery, open, upsert);
    if (existing) {
      existing.row.replaceWith(row);
      existing.detail.replaceWith(detail);
    } else if (live) {
      tbody.prepend(row, detail);
    } else {
      tbody.append(row, detail);
    }
    if (live) row.classList.add("changed");
    if (!existing && live) total += 1;
    rows.set(delivery.id, { delivery, row, detail });
    count.textContent = `${total} ${total === 1 ? "delivery" : "deliveries"}`;
    empty.hidden = rows.size > 0;
  }

  async function catchUp() {
    const data = await gql(DELIVERIES, { webhookId: id, status: statusFilter || null, first: 25 });
    if (!ctx.current()) return;
    for (const edge of [...data.deliveries.edges].reverse()) {
      const known = rows.get(edge.node.id);
      if (!known || JSON.stringify(known.delivery) !== JSON.stringify(edge.node)) upsert(edge.node, true);
    }
  }

  async function load(reset) {
    if (reset) {
      rows.clear();
      tbody.replaceChildren();
      after = null;
    }
    const data = await gql(DELIVERIES, { webhookId: id, status: statusFilter || null, first: 25, after });
    if (!ctx.current()) return;
    const page = data.deliveries;
    for (const edge of page.edges) if (!rows.has(edge.node.id)) upsert(edge.node, false);
    after = page.pageInfo.endCursor;
    more.hidden = !page.pageInfo.hasNextPage;
    total = page.totalCount;
    count.textContent = `${total} ${total === 1 ? "delivery" : "deliveries"}`;
    empty.hidden = rows.size > 0;
  }
  await load(true);
  return () => {
    unsubscribe();
    stopStatus();
    clearInterval(ticker);
  };
}

function deliveryRows(ctx, delivery, open, upsert) {
  const last = delivery.attempts[delivery.attempts.length - 1];
  const detailId = `attempts-${delivery.id}`;
  const detail = h(
    "tr",
    { class: "detail", id: detailId, hidden: !open },
    h("td", { colspan: "7" }, attemptsTable(delivery)),
  );
  const toggle = button(
    "Attempts",
    () => {
      detail.hidden = !detail.hidden;
      toggle.setAttribute("aria-expanded", String(!detail.hidden));
    },
    { kind: "small", "aria-expanded": String(open), "aria-controls": detailId },
  );
  const note = h("span", { class: "small muted", role: "status" });
  const redeliver = ctx.can("manage")
    ? button(
        "Redeliver",
        async () => {
          redeliver.disabled = true;
          try {
            const data = await gql(
              `mutation($id: ID!) { redeliver(deliveryId: $id) { ${DELIVERY_FIELDS} } }`,
              { id: delivery.id },
            );
            upsert(data.redeliver, true);
          } catch (caught) {
            note.textContent = caught.message;
            redeliver.disabled = false;
          }
        },
        { kind: "small", "aria-label": `Redeliver ${shortId(delivery.id)}` },
      )
    : null;
  const row = h(
    "tr",
    { "data-delivery": delivery.id, "data-status": delivery.status },
    h("td", {}, timeEl(delivery.createdAt)),
    h(
      "td",
      {},
      h("code", {}, delivery.eventType),
      h("div", { class: "small muted", title: delivery.eventId }, `event ${shortId(delivery.eventId)}`),
    ),
    h("td", {}, badge(capitalised(delivery.status), STATUS_TONE[delivery.status])),
    h("td", { class: "num" }, String(delivery.attempts.length)),
    h(
      "td",
      {},
      last
        ? last.statusCode
          ? `HTTP ${last.statusCode}`
          : h("span", { class: "bad-text" }, last.error || "no answer")
        : h("span", { class: "muted" }, "—"),
    ),
    h(
      "td",
      { "data-next": "", title: delivery.nextAttemptAt ? when(delivery.nextAttemptAt) : null },
      relative(delivery.nextAttemptAt),
    ),
    h("td", { class: "row-actions" }, toggle, redeliver, note),
  );
  return [row, detail];
}

function capitalised(status) {
  return status.charAt(0) + status.slice(1).toLowerCase();
}

function attemptsTable(delivery) {
  if (!delivery.attempts.length) return h("p", { class: "muted" }, "No attempt yet.");
  return h(
    "table",
    { class: "table inner" },
    h(
      "thead",
      {},
      h("tr", {}, ["#", "Started", "Duration", "Status", "Error", "Response body"].map((t) => h("th", { scope: "col" }, t))),
    ),
    h(
      "tbody",
      {},
      delivery.attempts.map((a) =>
        h(
          "tr",
          {},
          h("td", {}, String(a.number)),
          h("td", {}, timeEl(a.startedAt)),
          h("td", {}, `${a.durationMs.toFixed(1)} ms`),
          h("td", {}, a.statusCode ? String(a.statusCode) : "—"),
          h("td", {}, a.error || "—"),
          h("td", {}, a.responseBody ? h("code", { class: "clamp" }, a.responseBody) : "—"),
        ),
      ),
    ),
  );
}

// -- history ---------------------------------------------------------------------------------------

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

export async function historyView(body, ctx) {
  const [id] = ctx.params;
  const records = [];
  let after = null;
  do {
    const data = await gql(AUDIT, { id, after });
    records.push(...data.auditLog.edges.map((e) => e.node));
    after = data.auditLog.pageInfo.hasNextPage ? data.auditLog.pageInfo.endCursor : null;
  } while (after && records.length < 2000);
  const [current, creds, actors] = await Promise.all([
    loadWebhook(ctx, id),
    credentials(),
    actorNames(records),
  ]);
  if (!ctx.current()) return;
  if (!records.length) {
    notFound(body, ctx, id);
    return;
  }
  const latest = current || (await gql(AS_OF, { id, version: records.at(-1).version })).webhookAsOf;
  if (!ctx.current() || !latest) return;
  const panel = h("section", { class: "card as-of", "aria-live": "polite", hidden: true });
  const show = async (record, trigger) => {
    for (const b of body.querySelectorAll("[data-version]")) b.setAttribute("aria-pressed", "false");
    trigger.setAttribute("aria-pressed", "true");
    const data = await gql(AS_OF, { id, version: record.version });
    const asOf = data.webhookAsOf;
    panel.hidden = false;
    replace(
      panel,
      h("h2", { tabindex: "-1" }, `Version ${record.version}, as it stood on ${when(record.recordedAt)}`),
      asOf ? definitionEl(asOf, creds, { named: true }) : h("p", { class: "muted" }, "Nothing to show at this version."),
    );
    panel.querySelector("h2").focus();
  };
  replace(
    body,
    webhookHead(ctx, latest, "history", { deleted: !current }),
    h(
      "p",
      { class: "muted" },
      "Every change to this webhook, oldest first, from the tamper-evident audit log. Pick a version to see the webhook as it stood then.",
    ),
    h(
      "div",
      { class: "card table-card" },
      h(
        "table",
        { class: "table history" },
        h("caption", { class: "sr-only" }, "Audit records of this webhook"),
        h(
          "thead",
          {},
          h("tr", {}, ["Version", "When", "Who", "What", ""].map((t) => h("th", { scope: "col" }, t))),
        ),
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
      ),
    ),
    panel,
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
      if (node?.eventType === "ApiKey.Issued") names.set(key, `${node.data.role} key ${shortId(key)}`);
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
