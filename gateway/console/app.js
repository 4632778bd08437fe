// The console's shell: sign-in, the top bar, the navigation and a small hash router.

import { ApiError, LiveClient, forgetKey, storeKey, storedKey, whenUnauthenticated } from "./api.js";
import { apiKeysView } from "./api-keys.js";
import { credentialsView } from "./credentials.js";
import { deliveriesView } from "./deliveries.js";
import { button, field, h, replace } from "./dom.js";
import { eventTypesView } from "./event-types.js";
import { webhookFormView } from "./form.js";
import { historyView } from "./history.js";
import { forgetIdentity, identify } from "./identity.js";
import { PERMISSION as P, may } from "./roles.js";
import { settingsView } from "./settings.js";
import { webhookView } from "./webhook.js";
import { resetWebhookList, webhooksView } from "./webhooks.js";

const ROUTES = [
  [/^\/webhooks$/, webhooksView, P.READ_WEBHOOKS],
  [/^\/webhooks\/new$/, webhookFormView, P.MANAGE_WEBHOOKS],
  [/^\/webhooks\/([^/]+)$/, webhookView, P.READ_WEBHOOKS],
  [/^\/webhooks\/([^/]+)\/edit$/, webhookFormView, P.MANAGE_WEBHOOKS],
  [/^\/webhooks\/([^/]+)\/deliveries$/, deliveriesView, P.READ_DELIVERIES],
  [/^\/webhooks\/([^/]+)\/history$/, historyView, P.READ_AUDIT_LOG],
  [/^\/credentials$/, credentialsView, P.READ_CREDENTIALS],
  [/^\/event-types$/, eventTypesView, P.READ_EVENT_TYPES],
  [/^\/api-keys$/, apiKeysView, P.MANAGE_API_KEYS],
  [/^\/settings$/, settingsView, P.READ_RETENTION_POLICY],
];

const root = document.getElementById("app");
let session = null; // {key, role, organization, can(), live, flash()}
let cleanup = null;
let navigation = 0;
let pendingFlash = null;

function signInView(message) {
  const key = h("input", { type: "password", name: "key", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "form-error", role: "alert", hidden: !message }, message || "");
  const submit = button("Sign in", null, { kind: "primary", type: "submit" });
  const form = h(
    "form",
    {
      class: "signin card",
      "aria-labelledby": "signin-title",
      onsubmit: async (event) => {
        event.preventDefault();
        const value = key.value.trim();
        if (!value) {
          error.hidden = false;
          error.textContent = "Enter an API key.";
          key.focus();
          return;
        }
        submit.disabled = true;
        submit.textContent = "Signing in…";
        try {
          await start(value, await identify(value));
        } catch (caught) {
          error.hidden = false;
          error.textContent =
            caught instanceof ApiError && caught.code === "UNAUTHENTICATED"
              ? "This key is not accepted: it is unknown, revoked or mistyped."
              : caught.message;
          submit.disabled = false;
          submit.textContent = "Sign in";
          key.select();
        }
      },
    },
    h("h1", { id: "signin-title" }, h("span", { class: "logo", "aria-hidden": "true" }, "⤳"), " Hookline"),
    h("p", { class: "muted" }, "Sign in to the admin console with an API key of your organisation."),
    error,
    field("API key", key, {
      hint: "Kept in this browser tab only (session storage) and sent only to this server. Closing the tab signs you out.",
    }),
    submit,
  );
  replace(root, h("main", { class: "signin-page", id: "main" }, form));
  key.focus();
}

async function start(key, identity) {
  storeKey(key);
  resetWebhookList();
  session = {
    key,
    ...identity,
    can: (permission) => may(identity.role, permission),
    live: new LiveClient(key),
    flash: (message) => {
      pendingFlash = message;
    },
  };
  shell();
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = home();
  else route();
}

function home() {
  return session.can(P.READ_WEBHOOKS) ? "#/webhooks" : "#/event-types";
}

function signOut(message) {
  if (cleanup) cleanup();
  cleanup = null;
  session?.live.close();
  if (session) forgetIdentity(session.key);
  session = null;
  forgetKey();
  history.replaceState(null, "", location.pathname);
  signInView(message);
}

function shell() {
  const links = [
    ["#/webhooks", "Webhooks", P.READ_WEBHOOKS],
    ["#/credentials", "Credentials", P.READ_CREDENTIALS],
    ["#/event-types", "Event types", P.READ_EVENT_TYPES],
    ["#/api-keys", "API keys", P.MANAGE_API_KEYS],
    ["#/settings", "Settings", P.READ_RETENTION_POLICY],
  ].filter(([, , need]) => session.can(need));
  replace(
    root,
    h("a", { class: "skip", href: "#main", onclick: skipToMain }, "Skip to content"),
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: home() }, h("span", { class: "logo", "aria-hidden": "true" }, "⤳"), "Hookline"),
      h(
        "nav",
        { "aria-label": "Main" },
        h("ul", {}, links.map(([href, label]) => h("li", {}, h("a", { href, "data-nav": href }, label)))),
      ),
      h(
        "div",
        { class: "who" },
        h(
          "span",
          { class: "identity", "data-testid": "identity" },
          session.organization ? h("span", { class: "org" }, session.organization) : null,
          h("span", { class: `role role-${session.role}` }, session.role),
        ),
        button("Sign out", () => signOut("You have signed out."), { kind: "ghost" }),
      ),
    ),
    h("main", { id: "main", class: "container", tabindex: "-1" }),
  );
}

function skipToMain(event) {
  event.preventDefault();
  document.getElementById("main").focus();
}

let moved = false; // focus moves to the new heading after a navigation, not on the first screen

async function route() {
  if (!session) return;
  const path = (location.hash.slice(1) || "/").split("?")[0];
  markCurrentLink(path);
  if (cleanup) cleanup();
  cleanup = null;
  const token = ++navigation;
  const match = ROUTES.map(([pattern, view, need]) => [path.match(pattern), view, need]).find(([m]) => m);
  const body = pageBody();
  if (!match) {
    location.hash = home();
    return;
  }
  const [found, view, need] = match;
  if (!session.can(need)) {
    replace(body, h("h1", {}, "Not available"), h("p", {}, `The ${session.role} role cannot open this page.`));
    return;
  }
  await show(view, body, viewContext(token, found.slice(1).map(decodeURIComponent)));
  if (token === navigation) focusHeading(body);
}

function markCurrentLink(path) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = path.startsWith(link.dataset.nav.slice(1));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** An empty page in <main>, under the message the last change left (if any). */
function pageBody() {
  const flash = pendingFlash;
  pendingFlash = null;
  const flashEl = h("div", { class: "flash", role: "status", hidden: !flash }, flash || "");
  const body = h("div", { class: "page" });
  replace(document.getElementById("main"), flashEl, body);
  return body;
}

/** What a view is given: the session, the route's parameters, and whether it is still the page shown. */
function viewContext(token, params) {
  return {
    ...session,
    params,
    current: () => token === navigation,
    go: (hash, message) => {
      if (message) pendingFlash = message;
      if (location.hash === hash) route();
      else location.hash = hash;
    },
  };
}

/** Runs a view; the function it may return is called when the page is left (live updates stop). */
async function show(view, body, context) {
  try {
    const result = await view(body, context);
    if (typeof result === "function") {
      if (context.current()) cleanup = result;
      else result();
    }
  } catch (error) {
    if (!context.current()) return;
    replace(
      body,
      h("h1", {}, "Something went wrong"),
      h("p", { class: "form-error", role: "alert" }, error.message || String(error)),
    );
    if (!(error instanceof ApiError)) throw error;
  }
}

function focusHeading(body) {
  const heading = body.querySelector("h1");
  if (heading && moved && (document.activeElement === document.body || document.activeElement?.matches("[data-nav]"))) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

whenUnauthenticated(() => signOut("Your key is no longer accepted. Sign in again."));
window.addEventListener("hashchange", () => {
  moved = true;
  route();
});

const saved = storedKey();
if (saved) {
  identify(saved).then(
    (identity) => start(saved, identity),
    () => signOut("Your session has ended. Sign in again."),
  );
} else {
  signInView();
}
