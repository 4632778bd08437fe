// The console's shell: sign-in, the top bar, the navigation and a small hash router.

import { ApiError, LiveClient, forgetKey, identify, storeKey, storedKey, whenUnauthenticated } from "./api.js";
import { credentialsView, eventTypesView } from "./catalogue.js";
import { button, field, h, replace } from "./dom.js";
import { webhookFormView } from "./form.js";
import { deliveriesView, historyView, resetWebhookList, webhookView, webhooksView } from "./webhooks.js";

const ROLES = {
  admin: ["manage", "readWebhooks", "readDeliveries", "readAudit", "readCredentials", "publish", "secrets"],
  auditor: ["readWebhooks", "readDeliveries", "readAudit", "readCredentials"],
  viewer: ["readWebhooks", "readDeliveries"],
  publisher: ["publish"],
};

const ROUTES = [
  [/^\/webhooks$/, webhooksView, "readWebhooks"],
  [/^\/webhooks\/new$/, webhookFormView, "manage"],
  [/^\/webhooks\/([^/]+)$/, webhookView, "readWebhooks"],
  [/^\/webhooks\/([^/]+)\/edit$/, webhookFormView, "manage"],
  [/^\/webhooks\/([^/]+)\/deliveries$/, deliveriesView, "readDeliveries"],
  [/^\/webhooks\/([^/]+)\/history$/, historyView, "readAudit"],
  [/^\/credentials$/, credentialsView, "readCredentials"],
  [/^\/event-types$/, eventTypesView, null],
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
  const can = (what) => ROLES[identity.role].includes(what);
  session = {
    key,
    ...identity,
    can,
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
  return session.can("readWebhooks") ? "#/webhooks" : "#/event-types";
}

function signOut(message) {
  if (cleanup) cleanup();
  cleanup = null;
  session?.live.close();
  session = null;
  forgetKey();
  history.replaceState(null, "", location.pathname);
  signInView(message);
}

function shell() {
  const links = [
    ["#/webhooks", "Webhooks", "readWebhooks"],
    ["#/credentials", "Credentials", "readCredentials"],
    ["#/event-types", "Event types", null],
  ].filter(([, , need]) => !need || session.can(need));
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
  const main = document.getElementById("main");
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = path.startsWith(link.dataset.nav.slice(1));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (cleanup) cleanup();
  cleanup = null;
  const token = ++navigation;
  const match = ROUTES.map(([pattern, view, need]) => [path.match(pattern), view, need]).find(([m]) => m);
  const flash = pendingFlash;
  pendingFlash = null;
  const flashEl = h("div", { class: "flash", role: "status", hidden: !flash }, flash || "");
  const body = h("div", { class: "page" });
  replace(main, flashEl, body);
  if (!match) {
    location.hash = home();
    return;
  }
  const [found, view, need] = match;
  if (need && !session.can(need)) {
    replace(body, h("h1", {}, "Not available"), h("p", {}, `The ${session.role} role cannot open this page.`));
    return;
  }
  const context = {
    ...session,
    params: found.slice(1).map(decodeURIComponent),
    current: () => token === navigation,
    go: (hash, message) => {
      if (message) pendingFlash = message;
      if (location.hash === hash) route();
      else location.hash = hash;
    },
  };
  try {
    const result = await view(body, context);
    if (typeof result === "function") {
      if (token === navigation) cleanup = result;
      else result();
    }
  } catch (error) {
    if (token !== navigation) return;
    replace(
      body,
      h("h1", {}, "Something went wrong"),
      h("p", { class: "form-error", role: "alert" }, error.message || String(error)),
    );
    if (!(error instanceof ApiError)) throw error;
  }
  const heading = body.querySelector("h1");
  if (token === navigation && heading && moved && (document.activeElement === document.body || document.activeElement?.matches("[data-nav]"))) {
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
