// What every page of one webhook shares: loading it, its header with the tabs, and "no such webhook".

import { gql } from "./api.js";
import { badge, h, replace } from "./dom.js";
import { PERMISSION as P } from "./roles.js";
import { WEBHOOK, activeBadge } from "./shared.js";

/** The webhook, or null when it does not exist (or not in the caller's organisation). */
export async function loadWebhook(id) {
  const data = await gql(WEBHOOK, { id });
  return data.webhook;
}

export function webhookHead(ctx, webhook, tab, { deleted = false } = {}) {
  const id = webhook.id;
  const tabs = [
    ["overview", "Overview", `#/webhooks/${id}`, !deleted],
    ["deliveries", "Deliveries", `#/webhooks/${id}/deliveries`, !deleted && ctx.can(P.READ_DELIVERIES)],
    ["history", "History", `#/webhooks/${id}/history`, ctx.can(P.READ_AUDIT_LOG)],
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

export function notFound(body, ctx, id) {
  replace(
    body,
    h("h1", {}, "No such webhook"),
    h(
      "p",
      {},
      "It does not exist in your organisation, or it has been deleted. ",
      ctx.can(P.READ_AUDIT_LOG) ? h("a", { href: `#/webhooks/${id}/history` }, "Its history") : null,
      ctx.can(P.READ_AUDIT_LOG) ? " stays readable. " : null,
      h("a", { href: "#/webhooks" }, "Back to the webhooks"),
    ),
  );
}
