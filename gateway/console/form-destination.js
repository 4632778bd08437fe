// The webhook form's destination: target URL, method, credential and headers.

import { button, field, h } from "./dom.js";

const METHODS = ["POST", "PUT", "PATCH", "GET", "DELETE"];

/** `onHeadersChange` is called when a header is edited or removed (the template's check follows it). */
export function destinationSection(start, creds, onHeadersChange) {
  const target = h("input", { type: "url", value: start.targetUrl || "", placeholder: "https://example.com/hooks", spellcheck: "false" });
  const method = h("select", {}, METHODS.map((m) => h("option", { value: m, selected: (start.method || "POST") === m }, m)));
  const credential = h(
    "select",
    {},
    h("option", { value: "" }, "None"),
    creds.map((c) =>
      h("option", { value: c.id, selected: start.credentialId === c.id }, `${c.name} (${c.kind}, ${c.maskedSecret})`),
    ),
  );
  const headers = headerRows(start.headers || [], onHeadersChange);
  const el = [
    h(
      "div",
      { class: "grid-2-1" },
      field("Target URL", target, { name: "targetUrl", required: true }),
      field("Method", method, { name: "method" }),
    ),
    field("Credential", credential, {
      name: "credentialId",
      hint: creds.length ? "Sent as the Authorization header (or the header it names)." : "No credential yet: create one on the Credentials page.",
    }),
    headers.el,
  ];
  const read = () => ({
    targetUrl: target.value.trim(),
    method: method.value,
    headers: headers
      .pairs()
      .filter(([n, v]) => n.trim() || v.trim())
      .map(([n, v]) => ({ name: n.trim(), value: v })),
    credentialId: credential.value || null,
  });
  /** The Content-Type header as typed, if any. */
  const contentType = () => headers.pairs().find(([n]) => n.trim().toLowerCase() === "content-type")?.[1];
  return { el, read, contentType };
}

function headerRows(initial, onChange) {
  const rows = h("div", { class: "rows" });
  const renumber = () => {
    [...rows.children].forEach((row, i) => {
      const [n, v] = row.querySelectorAll("input");
      n.closest(".field").dataset.field = `headers[${i}].name`;
      v.closest(".field").dataset.field = `headers[${i}].value`;
      n.setAttribute("aria-label", `Header ${i + 1} name`);
      v.setAttribute("aria-label", `Header ${i + 1} value`);
      row.querySelector("button").setAttribute("aria-label", `Remove header ${i + 1}`);
    });
  };
  const add = (header, focus) => {
    const n = h("input", { type: "text", value: header.name, placeholder: "X-Team", spellcheck: "false", oninput: onChange });
    const v = h("input", { type: "text", value: header.value, placeholder: "value", spellcheck: "false", oninput: onChange });
    const row = h(
      "div",
      { class: "row header-row" },
      h("div", { class: "field" }, n, h("p", { class: "field-error", hidden: true })),
      h("div", { class: "field" }, v, h("p", { class: "field-error", hidden: true })),
      button("Remove", () => {
        row.remove();
        renumber();
        onChange();
      }, { kind: "small ghost" }),
    );
    rows.append(row);
    renumber();
    if (focus) n.focus();
  };
  const el = h(
    "fieldset",
    { class: "field", "data-field": "headers" },
    h("legend", {}, "Headers"),
    h("div", { class: "row-columns", "aria-hidden": "true" }, h("span", {}, "Name"), h("span", {}, "Value")),
    rows,
    button("Add header", () => add({ name: "", value: "" }, true), { kind: "small" }),
    h("p", { class: "field-error", hidden: true }),
  );
  for (const header of initial) add(header, false);
  /** Each row's [name, value] as typed. */
  const pairs = () => [...rows.children].map((row) => [...row.querySelectorAll("input")].map((i) => i.value));
  return { el, pairs };
}
