// The webhook form's basics: name and description.

import { field, h } from "./dom.js";

export function basicsSection(start) {
  const name = h("input", { type: "text", value: start.name || "", autocomplete: "off" });
  const description = h("input", { type: "text", value: start.description || "" });
  return {
    el: [
      field("Name", name, { name: "name", required: true }),
      field("Description", description, { name: "description", hint: "Optional: what this webhook is for." }),
    ],
    read: () => ({ name: name.value.trim(), description: description.value.trim() || null }),
  };
}
