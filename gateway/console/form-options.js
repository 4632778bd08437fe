// The webhook form's delivery options: rate limit, ordering, and (when creating) whether it starts active.

import { field, h, uid } from "./dom.js";

const NOT_WHOLE = "must be a whole number";

export function optionsSection(start, editing) {
  const rate = h("input", { type: "number", min: "1", step: "1", value: start.rateLimitPerSecond ?? "", inputmode: "numeric" });
  const ordered = h("input", { type: "checkbox", checked: start.ordered, id: uid("ordered") });
  const active = h("input", { type: "checkbox", checked: editing ? false : start.active !== false, id: uid("active") });
  const el = h(
    "div",
    { class: "grid-2" },
    field("Rate limit (requests per second)", rate, { name: "rateLimitPerSecond", hint: "Empty: no limit." }),
    h(
      "div",
      { class: "checks" },
      h("div", { class: "check", "data-field": "ordered" }, ordered, h("label", { for: ordered.id }, "Ordered: one delivery at a time, in the order the events were recorded")),
      editing ? null : h("div", { class: "check", "data-field": "active" }, active, h("label", { for: active.id }, "Active: start delivering at once")),
    ),
  );
  /** The options as input; what cannot be sent goes to `problems`. */
  const read = (problems) => {
    let rateLimit = null;
    if (rate.value.trim()) {
      rateLimit = Number(rate.value);
      if (!Number.isInteger(rateLimit)) problems.push({ field: "rateLimitPerSecond", message: NOT_WHOLE });
    } else if (rate.validity.badInput) {
      problems.push({ field: "rateLimitPerSecond", message: NOT_WHOLE });
    }
    const input = { rateLimitPerSecond: rateLimit, ordered: ordered.checked };
    if (!editing) input.active = active.checked; // an edit switches on and off elsewhere
    return input;
  };
  return { el, read };
}
