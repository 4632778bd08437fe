// Small DOM helpers: elements are built with h(), never from HTML strings, so that names, URLs and
// payloads typed by users are always text.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "for") {
      el.htmlFor = value;
    } else if (name === "value") {
      el.value = value;
    } else if (name === "checked" || name === "selected") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let counter = 0;
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: label, control, optional hint, and a slot for the server's message. */
export function field(label, control, { hint, name, required, className } = {}) {
  const id = control.id || uid("in");
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  if (required) control.setAttribute("aria-required", "true");
  return h(
    "div",
    { class: `field ${className || ""}`.trim(), "data-field": name },
    h("label", { for: id }, label),
    required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null,
    control,
    hintEl,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );
}

export function button(label, onClick, { kind = "", type = "button", ...attrs } = {}) {
  return h("button", { type, class: `btn ${kind}`.trim(), onclick: onClick, ...attrs }, label);
}

export function badge(text, tone = "neutral") {
  return h("span", { class: `badge ${tone}` }, text);
}

export const STATUS_TONE = { SUCCEEDED: "ok", FAILED: "bad", RETRYING: "warn", PENDING: "neutral" };

const DATE = new Intl.DateTimeFormat("en-GB", {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : DATE.format(date);
}

export function timeEl(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "—";
}

export function relative(iso) {
  if (!iso) return "—";
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const text =
    abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

export function pretty(text) {
  if (text === null || text === undefined || text === "") return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

/** The JSON.parse error of a text, or null when it is valid JSON. */
export function jsonError(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    return error.message.replace(/^JSON\.parse: /, "");
  }
}
