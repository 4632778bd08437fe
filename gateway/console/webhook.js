// One webhook's overview: its definition, sending a test, and deleting it.

import { gql } from "./api.js";
import { confirmButton } from "./confirm.js";
import { badge, button, h, pretty, replace, uid } from "./dom.js";
import { PERMISSION as P } from "./roles.js";
import { credentials, definitionEl } from "./shared.js";
import { loadWebhook, notFound, webhookHead } from "./webhook-head.js";

const SEND_TEST = `mutation($id: ID!, $sample: Boolean) {
  sendTest(webhookId: $id, useSampleData: $sample) {
    success statusCode durationMs responseBody errors requestBody
  }
}`;

export async function webhookView(body, ctx) {
  const [id] = ctx.params;
  const [webhook, creds] = await Promise.all([
    loadWebhook(id),
    ctx.can(P.READ_CREDENTIALS) ? credentials() : Promise.resolve(null),
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
      definitionEl(webhook, creds, { secret: ctx.can(P.READ_SIGNING_SECRETS) }),
    ),
    ctx.can(P.MANAGE_WEBHOOKS) ? testCard(webhook) : null,
  );
  if (ctx.can(P.MANAGE_WEBHOOKS)) {
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
  return confirmButton(body, {
    label: "Delete…",
    title: `Delete “${webhook.name}”?`,
    content: [
      h(
        "p",
        {},
        "This cannot be undone. No more events will be delivered to ",
        h("code", {}, webhook.targetUrl),
        ", and deliveries waiting for a retry stop.",
      ),
      h("p", { class: "muted" }, "Its history (the audit records and past versions) stays readable."),
    ],
    action: "Delete webhook",
    run: async () => {
      await gql("mutation($id: ID!) { deleteWebhook(id: $id) }", { id: webhook.id });
      ctx.go("#/webhooks", `Deleted “${webhook.name}”. Its history stays readable in the audit log.`);
    },
  });
}
