// The rows of one delivery in the deliveries table: a summary row, and its attempts shown on demand.

import { gql } from "./api.js";
import { STATUS_TONE, badge, button, h, relative, shortId, timeEl, when } from "./dom.js";

export const DELIVERY_FIELDS = `id webhookId eventId eventType status nextAttemptAt createdAt
  attempts { number startedAt durationMs statusCode error responseBody erased erasedAt }`;
const REDELIVER = `mutation($id: ID!) { redeliver(deliveryId: $id) { ${DELIVERY_FIELDS} } }`;

export function capitalised(status) {
  return status.charAt(0) + status.slice(1).toLowerCase();
}

/**
 * `[row, detail]` of a delivery; `open` shows its attempts at once (a row redrawn keeps them open), and
 * `onRedelivered` is given the delivery a redelivery returns (null: no Redeliver button).
 */
export function deliveryRows(delivery, open, onRedelivered) {
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
    h("td", {}, lastAnswer(delivery.attempts.at(-1))),
    h(
      "td",
      { "data-next": "", title: delivery.nextAttemptAt ? when(delivery.nextAttemptAt) : null },
      relative(delivery.nextAttemptAt),
    ),
    h(
      "td",
      { class: "row-actions" },
      toggle,
      onRedelivered ? redeliverButton(delivery, note, onRedelivered) : null,
      note,
    ),
  );
  return [row, detail];
}

function lastAnswer(last) {
  if (!last) return h("span", { class: "muted" }, "—");
  return last.statusCode ? `HTTP ${last.statusCode}` : h("span", { class: "bad-text" }, last.error || "no answer");
}

function redeliverButton(delivery, note, onRedelivered) {
  const redeliver = button(
    "Redeliver",
    async () => {
      redeliver.disabled = true;
      try {
        const data = await gql(REDELIVER, { id: delivery.id });
        onRedelivered(data.redeliver);
      } catch (caught) {
        note.textContent = caught.message;
        redeliver.disabled = false;
      }
    },
    { kind: "small", "aria-label": `Redeliver ${shortId(delivery.id)}` },
  );
  return redeliver;
}

function responseBody(attempt) {
  if (attempt.erased) {
    return h("span", { class: "muted", "data-erased": "" }, attempt.erasedAt ? `erased on ${when(attempt.erasedAt)}` : "erased");
  }
  return attempt.responseBody ? h("code", { class: "clamp" }, attempt.responseBody) : "—";
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
          h("td", {}, responseBody(a)),
        ),
      ),
    ),
  );
}
