// One webhook's deliveries, live: a subscription names each delivery that changed, and its row is read
// again and redrawn in place, without reloading the page.

import { gql } from "./api.js";
import { DELIVERY_FIELDS, capitalised, deliveryRows } from "./delivery-rows.js";
import { button, field, h, relative, replace } from "./dom.js";
import { PERMISSION as P } from "./roles.js";
import { loadWebhook, notFound, webhookHead } from "./webhook-head.js";

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
const PAGE_SIZE = 25;
const STATUSES = ["PENDING", "RETRYING", "SUCCEEDED", "FAILED"];
const COLUMNS = ["Created", "Event", "Status", "Attempts", "Last answer", "Next attempt", ""];

export async function deliveriesView(body, ctx) {
  const [id] = ctx.params;
  const webhook = await loadWebhook(id);
  if (!ctx.current()) return undefined;
  if (!webhook) {
    notFound(body, ctx, id);
    return undefined;
  }
  const list = new DeliveryList(ctx, id);
  const liveDot = h("span", { class: "live", role: "status" });
  replace(
    body,
    webhookHead(ctx, webhook, "deliveries"),
    h("div", { class: "toolbar" }, list.filters, liveDot),
    list.card,
    list.pager,
  );
  // Once live, what changed before the subscription started is read once more.
  const stops = [
    showLiveStatus(ctx.live, liveDot, () => list.catchUp()),
    followUpdates(ctx, id, list),
    list.tickEverySecond(),
  ];
  await list.load(true);
  return () => stops.forEach((stop) => stop());
}

/** The deliveries table with its status filter and "Load more": rows are added or redrawn in place. */
class DeliveryList {
  constructor(ctx, webhookId) {
    this.ctx = ctx;
    this.webhookId = webhookId;
    this.rows = new Map(); // delivery id -> {delivery, row, detail}
    this.after = null; // the list's cursor
    this.statusFilter = "";
    this.total = 0;
    this.tbody = h("tbody", {});
    this.count = h("p", { class: "muted" });
    this.more = button("Load more", () => this.load(false));
    this.empty = h("p", { class: "empty", hidden: true }, "No deliveries yet. They appear here as events arrive.");
    const status = h(
      "select",
      { onchange: () => ((this.statusFilter = status.value), this.load(true)) },
      h("option", { value: "" }, "All statuses"),
      STATUSES.map((s) => h("option", { value: s }, capitalised(s))),
    );
    this.filters = h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, field("Status", status));
    this.card = h("div", { class: "card table-card" }, table(this.tbody), this.empty);
    this.pager = h("div", { class: "pager" }, this.count, this.more);
  }

  /** Shows a delivery: redrawn where it is, or added (on top when it is `live` news, else below). */
  upsert(delivery, live) {
    if (this.statusFilter && delivery.status !== this.statusFilter && !this.rows.has(delivery.id)) return;
    const existing = this.rows.get(delivery.id);
    const open = existing ? !existing.detail.hidden : false;
    const redelivered = this.ctx.can(P.MANAGE_DELIVERIES) ? (d) => this.upsert(d, true) : null;
    const [row, detail] = deliveryRows(delivery, open, redelivered);
    if (existing) {
      existing.row.replaceWith(row);
      existing.detail.replaceWith(detail);
    } else if (live) {
      this.tbody.prepend(row, detail);
    } else {
      this.tbody.append(row, detail);
    }
    if (live) row.classList.add("changed");
    if (!existing && live) this.total += 1;
    this.rows.set(delivery.id, { delivery, row, detail });
    this.showCount();
  }

  showCount() {
    this.count.textContent = `${this.total} ${this.total === 1 ? "delivery" : "deliveries"}`;
    this.empty.hidden = this.rows.size > 0;
  }

  async catchUp() {
    const data = await gql(DELIVERIES, { webhookId: this.webhookId, status: this.statusFilter || null, first: PAGE_SIZE });
    if (!this.ctx.current()) return;
    for (const edge of [...data.deliveries.edges].reverse()) {
      const known = this.rows.get(edge.node.id);
      if (!known || JSON.stringify(known.delivery) !== JSON.stringify(edge.node)) this.upsert(edge.node, true);
    }
  }

  async load(reset) {
    if (reset) {
      this.rows.clear();
      this.tbody.replaceChildren();
      this.after = null;
    }
    const data = await gql(DELIVERIES, {
      webhookId: this.webhookId,
      status: this.statusFilter || null,
      first: PAGE_SIZE,
      after: this.after,
    });
    if (!this.ctx.current()) return;
    const page = data.deliveries;
    for (const edge of page.edges) if (!this.rows.has(edge.node.id)) this.upsert(edge.node, false);
    this.after = page.pageInfo.endCursor;
    this.more.hidden = !page.pageInfo.hasNextPage;
    this.total = page.totalCount;
    this.showCount();
  }

  /** Keeps "next attempt in 12 s" true; returns the stop. */
  tickEverySecond() {
    const ticker = setInterval(() => {
      for (const entry of this.rows.values()) {
        const cell = entry.row.querySelector("[data-next]");
        if (cell && entry.delivery.nextAttemptAt) cell.textContent = relative(entry.delivery.nextAttemptAt);
      }
    }, 1000);
    return () => clearInterval(ticker);
  }
}

function table(tbody) {
  return h(
    "table",
    { class: "table deliveries" },
    h("caption", { class: "sr-only" }, "Deliveries, newest first"),
    h("thead", {}, h("tr", {}, COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
}

/** Shows the connection's state in `dot`; returns the stop. */
function showLiveStatus(live, dot, onLive) {
  return live.onStatus((state) => {
    const [text, tone] = LIVE_TEXT[state];
    replace(dot, h("span", { class: `dot ${tone}`, "aria-hidden": "true" }), text);
    dot.dataset.state = state;
    if (state === "live") onLive();
  });
}

/** Redraws each delivery the subscription names; returns the unsubscribe. */
function followUpdates(ctx, webhookId, list) {
  let cursor = null; // resumes after a reconnect with nothing lost
  const refresh = oneAtATime(async (deliveryId) => {
    const data = await gql(DELIVERY, { id: deliveryId });
    if (data.delivery && ctx.current()) list.upsert(data.delivery, true);
  });
  return ctx.live.subscribe(
    UPDATES,
    () => ({ webhookId, after: cursor }),
    (data) => {
      cursor = data.deliveryUpdates.cursor;
      refresh(data.deliveryUpdates.deliveryId);
    },
  );
}

/**
 * `load(id)` run once at a time per id: asked again while it runs, it runs once more when it ends, so
 * that the last answer shown is never older than the last change announced.
 */
function oneAtATime(load) {
  const askedAgain = new Map(); // id -> asked again meanwhile
  return async (id) => {
    if (askedAgain.has(id)) {
      askedAgain.set(id, true);
      return;
    }
    try {
      do {
        askedAgain.set(id, false);
        await load(id);
      } while (askedAgain.get(id));
    } finally {
      askedAgain.delete(id);
    }
  };
}
