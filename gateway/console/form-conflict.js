// What the webhook form says when a save is refused because the webhook changed meanwhile: what
// changed, and the two ways on (start again from the current version, or save over it).

import { button, h, replace } from "./dom.js";

const LABELS = {
  name: "Name",
  description: "Description",
  eventTypes: "Event types",
  targetUrl: "Target URL",
  method: "Method",
  headers: "Headers",
  credentialId: "Credential",
  payloadTemplate: "Payload template",
  filters: "Conditions",
  active: "Active",
  rateLimitPerSecond: "Rate limit",
  ordered: "Ordered delivery",
  signingSecret: "Signing secret",
};

/**
 * Fills and shows `box`: `since` is the version the form started from, `current` the webhook now (null:
 * deleted meanwhile); `reload()` starts again from `current`, `overwrite()` saves the edits over it.
 */
export function showConflict(box, since, current, { reload, overwrite }) {
  if (!current) {
    replace(box, h("h2", {}, "Not saved: this webhook has been deleted meanwhile"), h("p", {}, "There is nothing left to save your changes to."));
  } else {
    replace(
      box,
      h("h2", {}, "Not saved: this webhook changed while you were editing"),
      h(
        "p",
        {},
        `You started from version ${since.version}, but it is now at version ${current.version}: someone else (or you, in another tab) saved a change in between. `,
        "Saving yours now would silently undo theirs, so nothing was saved.",
      ),
      changes(since, current),
      h("p", {}, "Your edits are still in this form. Either start again from the current version, or save your edits over it."),
      h(
        "div",
        { class: "actions" },
        button(`Load version ${current.version} (discard my edits)`, reload, { kind: "primary" }),
        button(`Save my edits over version ${current.version}`, overwrite),
      ),
    );
  }
  box.hidden = false;
  box.focus();
}

function changes(since, current) {
  const changed = Object.keys(LABELS).filter((k) => JSON.stringify(current[k]) !== JSON.stringify(since[k]));
  if (!changed.length) return h("p", {}, "Nothing you can see here changed: only its version moved on.");
  return [
    h("p", {}, "Changed meanwhile:"),
    h(
      "ul",
      {},
      changed.map((k) => h("li", {}, h("strong", {}, LABELS[k]), ": ", h("code", { class: "clamp" }, shown(current[k])))),
    ),
  ];
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
