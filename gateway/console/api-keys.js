// API keys (admins): the organisation's keys, a new one (shown once, with a copy button), and revoking
// one after a confirmation. The command line still makes an organisation's first key.

import { gql } from "./api.js";
import { confirmButton } from "./confirm.js";
import { badge, button, field, h, replace, shortId, timeEl } from "./dom.js";
import { submission } from "./problems.js";

const FIELDS = "id name role createdAt lastUsedAt revoked";
const LIST = `{ apiKeys { ${FIELDS} } }`;
const CREATE = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { ${FIELDS} } } }`;
const REVOKE = `mutation($id: ID!) { revokeApiKey(id: $id) { ${FIELDS} } }`;
const ROLES = [
  ["PUBLISHER", "Publisher", "publishes events"],
  ["VIEWER", "Viewer", "reads webhooks and deliveries"],
  ["AUDITOR", "Auditor", "reads everything but secrets, changes nothing"],
  ["ADMIN", "Admin", "everything in the organisation, keys included"],
];
const roleName = (role) => ROLES.find(([value]) => value === role)?.[1] || role;

export async function apiKeysView(body, ctx) {
  const render = async (created) => {
    const { apiKeys } = await gql(LIST);
    if (!ctx.current()) return;
    replace(
      body,
      h("div", { class: "page-head" }, h("h1", {}, "API keys")),
      h(
        "p",
        { class: "muted" },
        `The keys of ${ctx.organization}. A key is shown once, when it is created: only its hash is kept. `,
        "A revoked key is refused everywhere within seconds, open connections included.",
      ),
      created ? createdPanel(created, () => render()) : null,
      h("div", { class: "card table-card" }, keysTable(apiKeys, ctx, body, render)),
      keyForm(render),
    );
    if (created) body.querySelector("[data-new-key] input").select();
  };
  await render();
}

function keysTable(keys, ctx, body, render) {
  if (!keys.length) return h("p", { class: "empty" }, "No keys yet.");
  return h(
    "table",
    { class: "table" },
    h("caption", { class: "sr-only" }, "API keys"),
    h(
      "thead",
      {},
      h("tr", {}, ["Name", "Role", "Created", "Last used", "Status", "Id", ""].map((t) => h("th", { scope: "col" }, t))),
    ),
    h(
      "tbody",
      {},
      keys.map((key) =>
        h(
          "tr",
          { "data-api-key": key.id },
          h(
            "td",
            { class: "strong" },
            key.name || h("span", { class: "muted" }, "(no name)"),
            key.id === ctx.keyId ? h("span", { class: "small muted" }, " — this session's key") : null,
          ),
          h("td", {}, roleName(key.role)),
          h("td", {}, timeEl(key.createdAt)),
          h("td", {}, key.lastUsedAt ? timeEl(key.lastUsedAt) : h("span", { class: "muted" }, "Never")),
          h("td", {}, key.revoked ? badge("Revoked", "bad") : badge("Active", "ok")),
          h("td", {}, h("code", { title: key.id }, shortId(key.id))),
          h("td", { class: "row-actions" }, key.revoked ? null : revokeButton(key, ctx, body, render)),
        ),
      ),
    ),
  );
}

/** The new key, this once, with a button that copies it. */
function createdPanel({ key, apiKey }, done) {
  const value = h("input", { type: "text", readonly: true, value: key, spellcheck: "false", class: "code" });
  const status = h("span", { class: "small muted", role: "status" });
  const copy = button(
    "Copy",
    async () => {
      status.textContent = (await copied(key, value)) ? "Copied to the clipboard." : "Select the key and copy it.";
    },
    { kind: "primary" },
  );
  return h(
    "section",
    { class: "card new-key", "data-new-key": apiKey.id, "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, `New ${roleName(apiKey.role).toLowerCase()} key${apiKey.name ? ` “${apiKey.name}”` : ""}`),
    h("p", {}, "Copy it now: it is not shown again. Whoever holds it acts for your organisation with its role."),
    h("div", { class: "new-key-row" }, field("Key", value), copy),
    status,
    h("div", { class: "form-actions" }, button("Done", done, { kind: "ghost" })),
  );
}

async function copied(key, input) {
  try {
    await navigator.clipboard.writeText(key);
    return true;
  } catch {
    input.select(); // no clipboard access (an insecure origin, or refused): the user copies it
    return false;
  }
}

function revokeButton(key, ctx, body, render) {
  return confirmButton(body, {
    label: "Revoke…",
    attrs: { kind: "danger-outline small", "aria-label": `Revoke ${key.name || shortId(key.id)}` },
    title: `Revoke ${key.name ? `“${key.name}”` : `key ${shortId(key.id)}`}?`,
    content: [
      h("p", {}, "This cannot be undone. Requests with this key are refused within seconds, open connections included."),
      key.id === ctx.keyId ? h("p", { class: "form-error" }, "This is the key you are signed in with: you will be signed out.") : null,
    ],
    action: "Revoke key",
    run: async () => {
      await gql(REVOKE, { id: key.id });
      await render();
    },
  });
}

function keyForm(render) {
  const name = h("input", { type: "text", autocomplete: "off" });
  const role = h("select", {}, ROLES.map(([value, label, what]) => h("option", { value }, `${label} — ${what}`)));
  const { summary, submit, onsubmit } = submission("Create API key", "The key was not created", async () => {
    const input = { name: name.value.trim() || null, role: role.value };
    await render((await gql(CREATE, { input })).createApiKey);
  });
  return h(
    "form",
    { class: "card", "aria-labelledby": "new-api-key", novalidate: true, onsubmit },
    h("h2", { id: "new-api-key" }, "New API key"),
    summary,
    h(
      "div",
      { class: "grid-2" },
      field("Name", name, { name: "name", hint: "What uses it, e.g. “ServiceNow publisher”." }),
      field("Role", role, { name: "role" }),
    ),
    h("div", { class: "form-actions" }, submit),
  );
}
