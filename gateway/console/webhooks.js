// The webhooks list: filtered by status and event type, a page at a time, each switched on or off in place.

import { gql } from "./api.js";
import { badge, button, field, h, replace } from "./dom.js";
import { PERMISSION as P } from "./roles.js";
import { WEBHOOK_FIELDS, activeBadge, credentials, eventTypes, typeChips } from "./shared.js";

const WEBHOOKS = `query($first: Int, $after: String, $active: Boolean, $eventType: String) {
  webhooks(first: $first, after: $after, active: $active, eventType: $eventType) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { ${WEBHOOK_FIELDS} health { attempts successRate consecutiveFailures } } }
  }
}`;
const SET_ACTIVE = `mutation($id: ID!, $active: Boolean!) {
  setWebhookActive(id: $id, active: $active) { id active disabledReason version }
}`;
const PAGE_SIZE = 10;
const STATUSES = [
  ["", "All"],
  ["true", "Active"],
  ["false", "Inactive"],
];

// Kept while signed in, so that coming back to the list keeps its filters and page.
const listState = {};
export function resetWebhookList() {
  Object.assign(listState, { active: "", eventType: "", cursors: [null], page: 0 });
}
resetWebhookList();

export async function webhooksView(body, ctx) {
  const [types, creds] = await Promise.all([
    eventTypes(),
    ctx.can(P.READ_CREDENTIALS) ? credentials() : Promise.resolve(null),
  ]);
  if (!ctx.current()) return;
  const table = h("div", { class: "card table-card", "aria-live": "polite", "aria-busy": "true" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of webhooks" });
  replace(
    body,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Webhooks"),
      ctx.can(P.MANAGE_WEBHOOKS) ? h("a", { class: "btn primary", href: "#/webhooks/new" }, "New webhook") : null,
    ),
    filtersForm(types, () => load()),
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
    replace(table, page.edges.length ? listTable(ctx, page.edges.map((e) => e.node), creds) : emptyText());
    listState.cursors[listState.page + 1] = page.pageInfo.endCursor;
    replace(pager, pagerParts(page, load));
  }
  await load();
}

/** The status and event type filters; a change starts again from the first page. */
function filtersForm(types, reload) {
  const activeSelect = h(
    "select",
    {},
    STATUSES.map(([value, label]) => h("option", { value, selected: listState.active === value }, label)),
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
    reload();
  };
  activeSelect.addEventListener("change", onFilter);
  typeSelect.addEventListener("change", onFilter);
  return h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter webhooks", onsubmit: (e) => e.preventDefault() },
    field("Status", activeSelect),
    field("Event type", typeSelect),
  );
}

function emptyText() {
  const filtered = listState.active || listState.eventType;
  return h(
    "p",
    { class: "empty" },
    filtered ? "No webhook matches these filters." : "No webhooks yet. A webhook sends the events you choose to a URL of yours.",
  );
}

function pagerParts(page, reload) {
  const start = listState.page * PAGE_SIZE;
  const turn = (by) => () => {
    listState.page += by;
    reload();
  };
  return [
    h(
      "p",
      { class: "muted" },
      page.totalCount ? `Showing ${start + 1}–${start + page.edges.length} of ${page.totalCount}` : "Showing 0 of 0",
    ),
    button("Previous page", turn(-1), { disabled: listState.page === 0 }),
    button("Next page", turn(1), { disabled: !page.pageInfo.hasNextPage }),
  ];
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
        ["Name", "Event types", "Target", "Credential", "Health (24 h)", "Active"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
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
          h("td", { class: "health-cell" }, healthCell(w.health)),
          h("td", {}, ctx.can(P.MANAGE_WEBHOOKS) ? activeSwitch(w) : activeBadge(w)),
        ),
      ),
    ),
  );
}

/** The success rate of the last day's attempts, and a "failing" badge while the latest ones failed. */
function healthCell(health) {
  if (!health.attempts) return h("span", { class: "muted", title: "No attempt in the last 24 hours" }, "—");
  const rate = h(
    "span",
    { title: `${health.attempts} attempts in the last 24 hours` },
    `${Math.round(health.successRate * 100)}% succeeded`,
  );
  const failing = health.consecutiveFailures
    ? badge(`Failing: ${health.consecutiveFailures} in a row`, "bad")
    : null;
  return h("span", { class: "health" }, rate, failing ? " " : null, failing);
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
