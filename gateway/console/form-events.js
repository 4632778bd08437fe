// The webhook form's event types: a box for each type of the catalogue, and for any undefined type the
// webhook already names.

import { h, uid } from "./dom.js";

/** `onChange` is called when the choice changes (the template's variables follow it). */
export function eventsSection(types, start, onChange) {
  const chosen = new Set(start.eventTypes || []);
  const known = new Map(types.map((t) => [t.name, t]));
  const names = [...types.map((t) => t.name), ...[...chosen].filter((n) => !known.has(n))];
  const boxes = names.map((name) => typeOption(name, known.get(name), chosen.has(name)));
  const fieldset = h(
    "fieldset",
    { class: "field types", "data-field": "eventTypes" },
    h("legend", {}, "Event types", h("span", { class: "req", "aria-hidden": "true" }, " *")),
    h("p", { class: "hint" }, "The events this webhook receives. Their variables are listed next to the payload template."),
    h("div", { class: "type-grid" }, boxes),
    h("p", { class: "field-error", hidden: true }),
  );
  fieldset.addEventListener("change", onChange);
  const selected = () =>
    boxes.map((b) => b.querySelector("input")).filter((b) => b.checked).map((b) => b.value);
  return { el: fieldset, selected, read: () => ({ eventTypes: selected() }) };
}

function typeOption(name, spec, checked) {
  const box = h("input", { type: "checkbox", value: name, checked, id: uid("type") });
  return h(
    "div",
    { class: "type-option" },
    box,
    h(
      "label",
      { for: box.id },
      h("code", {}, name),
      h("span", { class: "small muted" }, spec ? spec.description || "" : "not defined: any variable is accepted"),
    ),
  );
}
