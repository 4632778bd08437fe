// Credentials: the list (secrets masked, never shown again) and, for an admin, a new one.

import { gql } from "./api.js";
import { button, field, h, replace, shortId, uid } from "./dom.js";
import { showError } from "./problems.js";
import { PERMISSION as P } from "./roles.js";
import { credentials, forget } from "./shared.js";

const KINDS = [
  ["BEARER", "Bearer token", "Authorization: Bearer <token>"],
  ["BASIC", "Basic", "Authorization: Basic <username:password>"],
  ["HEADER", "Header", "a header of your choice"],
  ["OAUTH2_CLIENT_CREDENTIALS", "OAuth2 client credentials", "a token from your identity provider, sent as Bearer"],
  ["MTLS", "Mutual TLS", "a client certificate presented to the target"],
];
const CREATE = "mutation($input: CreateCredentialInput!) { createCredential(input: $input) { id name maskedSecret } }";

export async function credentialsView(body, ctx) {
  const list = await credentials();
  if (!ctx.current()) return;
  replace(
    body,
    h("div", { class: "page-head" }, h("h1", {}, "Credentials")),
    h(
      "p",
      { class: "muted" },
      "Secrets sent with deliveries to targets that need them. They are stored encrypted and never shown again: only masked.",
    ),
    h("div", { class: "card table-card" }, list.length ? credentialsTable(list) : h("p", { class: "empty" }, "No credentials yet.")),
    ctx.can(P.MANAGE_CREDENTIALS) ? credentialForm(ctx) : null,
  );
}

function credentialsTable(list) {
  return h(
    "table",
    { class: "table" },
    h("caption", { class: "sr-only" }, "Credentials"),
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Secret", "Id"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      list.map((c) =>
        h(
          "tr",
          { "data-credential": c.id },
          h("td", { class: "strong" }, c.name),
          h("td", {}, KINDS.find(([k]) => k === c.kind)?.[1] || c.kind),
          h("td", {}, h("code", {}, c.maskedSecret)),
          h("td", {}, h("code", { title: c.id }, shortId(c.id))),
        ),
      ),
    ),
  );
}

function credentialForm(ctx) {
  const name = h("input", { type: "text", autocomplete: "off" });
  const kinds = kindChoice();
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button("Create credential", null, { kind: "primary", type: "submit" });
  const create = async () => {
    submit.disabled = true;
    try {
      const data = await gql(CREATE, { input: { name: name.value.trim(), ...kinds.read() } });
      forget("credentials");
      const made = data.createCredential;
      ctx.go("#/credentials", `Created credential “${made.name}” (${made.maskedSecret}).`);
    } catch (error) {
      showError(form, summary, error, "The credential was not created");
    } finally {
      submit.disabled = false;
    }
  };
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-credential", novalidate: true, onsubmit: (e) => (e.preventDefault(), create()) },
    h("h2", { id: "new-credential" }, "New credential"),
    summary,
    field("Name", name, { name: "name", required: true }),
    kinds.el,
    h("div", { class: "form-actions" }, submit),
  );
  return form;
}

/** The kind of credential, and the secret's parts that kind takes. */
function kindChoice() {
  const kindName = uid("kind");
  const radios = KINDS.map(([value, label, hint], i) => {
    const radio = h("input", { type: "radio", name: kindName, value, id: uid("kind"), checked: i === 0 });
    return h("div", { class: "check" }, radio, h("label", { for: radio.id }, label, h("span", { class: "small muted" }, ` — ${hint}`)));
  });
  const secret = (label, type = "password") =>
    field(label[0], h("input", { type, autocomplete: "off", spellcheck: "false" }), { name: label[1] });
  const pem = (label, name, placeholder) =>
    field(label, h("textarea", { rows: "5", class: "code", spellcheck: "false", autocomplete: "off", placeholder }), { name });
  const parts = {
    BEARER: [secret(["Token", "token"])],
    BASIC: [secret(["Username", "username"], "text"), secret(["Password", "password"])],
    HEADER: [secret(["Header name", "headerName"], "text"), secret(["Header value", "headerValue"])],
    OAUTH2_CLIENT_CREDENTIALS: [
      secret(["Token URL", "tokenUrl"], "url"),
      secret(["Client id", "clientId"], "text"),
      secret(["Client secret", "clientSecret"]),
      secret(["Scope (optional)", "scope"], "text"),
      secret(["Audience (optional)", "audience"], "text"),
    ],
    MTLS: [
      pem("Client certificate (PEM)", "certificatePem", "-----BEGIN CERTIFICATE-----"),
      pem("Private key (PEM, unencrypted)", "privateKeyPem", "-----BEGIN PRIVATE KEY-----"),
    ],
  };
  // Any kind: a private CA the credential's targets (and token endpoint) are trusted by.
  const caBundle = pem("Private CA bundle (PEM, optional)", "caBundlePem", "-----BEGIN CERTIFICATE-----");
  const partsBox = h("div", { class: "grid-2" });
  const kind = () => radios.map((r) => r.querySelector("input")).find((r) => r.checked).value;
  const showParts = () => replace(partsBox, [...parts[kind()], caBundle]);
  const kinds = h(
    "fieldset",
    { class: "field", "data-field": "kind", onchange: showParts },
    h("legend", {}, "Kind"),
    h("div", { class: "radios" }, radios),
    h("p", { class: "field-error", hidden: true }),
  );
  showParts();
  /** The kind and its parts as input (a part left empty is null). */
  const read = () => {
    const input = { kind: kind() };
    for (const el of [...parts[kind()], caBundle]) input[el.dataset.field] = el.querySelector("input, textarea").value || null;
    return input;
  };
  return { el: [kinds, partsBox], read };
}
