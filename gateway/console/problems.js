// Server problems (`extensions.fields`) shown next to the field each one names, and in a summary.

import { button, h, replace } from "./dom.js";

/** The element a field path names: exactly, or its nearest named parent (`headers[0].name` → `headers`). */
function target(form, path) {
  let name = path;
  while (name) {
    const found = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (found) return found;
    const shorter = name.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
    if (shorter === name) break;
    name = shorter;
  }
  return null;
}

function labelOf(el, path) {
  const label = el.querySelector(":scope > label, :scope > legend, :scope > .cond-group-head h3");
  return (label?.textContent || path).replace(/\s*\*$/, "");
}

/** A field's message goes as soon as the field is edited; the summary stays until the next try. */
function clearOnInput(form) {
  if (form.dataset.clears) return;
  form.dataset.clears = "true";
  const clear = (event) => {
    const wrapper = event.target.closest("[data-field]");
    const slot = wrapper?.querySelector(":scope > .field-error");
    if (slot) slot.hidden = true;
    if (!event.target.matches("textarea.code")) event.target.removeAttribute("aria-invalid");
  };
  form.addEventListener("input", clear);
  form.addEventListener("change", clear);
}

export function showProblems(form, summary, problems, title) {
  clearOnInput(form);
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.hidden = true;
    slot.replaceChildren();
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    if (!control.matches("textarea.code")) control.removeAttribute("aria-invalid");
  }
  if (!problems.length) {
    summary.hidden = true;
    return;
  }
  const items = [];
  for (const problem of problems) {
    const el = problem.field ? target(form, problem.field) : null;
    const slot = el?.querySelector(":scope > .field-error");
    if (!el || !slot) {
      items.push(h("li", {}, problem.field ? `${problem.field}: ${problem.message}` : problem.message));
      continue;
    }
    slot.hidden = false;
    slot.append(h("span", {}, problem.message));
    const control = el.matches("input, select, textarea")
      ? el
      : el.querySelector(":scope > input:not([hidden]), :scope > select:not([hidden]), :scope > textarea, input:not([hidden])");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      const described = new Set((control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
      if (!slot.id) slot.id = `${control.id || Math.random().toString(36).slice(2)}-error`;
      described.add(slot.id);
      control.setAttribute("aria-describedby", [...described].join(" "));
    }
    const label = labelOf(el, problem.field);
    items.push(
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "link", onclick: () => (control || el).focus() },
          `${label}: ${problem.message}`,
        ),
      ),
    );
  }
  replace(
    summary,
    h("h2", {}, `${title}: ${problems.length === 1 ? "one problem" : `${problems.length} problems`}`),
    h("ul", {}, items),
  );
  summary.hidden = false;
  summary.focus();
}

/** What the server refused: next to each field it named, or its one message in the summary. */
export function showError(form, summary, error, title) {
  showProblems(form, summary, error.fields?.length ? error.fields : [{ field: "", message: error.message }], title);
}

/** A form's problem summary and submit button, and its submit handler: `run` with the button disabled;
 * what the server refuses is shown by field, under `title`. */
export function submission(label, title, run) {
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const submit = button(label, null, { kind: "primary", type: "submit" });
  const onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      await run();
    } catch (error) {
      showError(event.target, summary, error, title);
    } finally {
      submit.disabled = false;
    }
  };
  return { summary, submit, onsubmit };
}
