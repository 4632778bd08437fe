// The webhook form: create, and edit with expectedVersion (a conflict is explained, nothing is lost).
// Each section is its own component (form-*.js) with an `el` to show and a `read()` of its input.

import { gql } from "./api.js";
import { button, h, replace, uid } from "./dom.js";
import { basicsSection } from "./form-basics.js";
import { conditionsSection } from "./form-conditions.js";
import { showConflict } from "./form-conflict.js";
import { destinationSection } from "./form-destination.js";
import { eventsSection } from "./form-events.js";
import { optionsSection } from "./form-options.js";
import { templateSection } from "./form-template.js";
import { showError, showProblems } from "./problems.js";
import { WEBHOOK, WEBHOOK_FIELDS, credentials, eventTypes } from "./shared.js";

const CREATE = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { ${WEBHOOK_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateWebhookInput!, $expectedVersion: Int) {
  updateWebhook(id: $id, input: $input, expectedVersion: $expectedVersion) { ${WEBHOOK_FIELDS} }
}`;
const NOT_SAVED = "The webhook was not saved";

export async function webhookFormView(body, ctx) {
  const [id] = ctx.params;
  const [types, creds, loaded] = await Promise.all([
    eventTypes(),
    credentials(),
    id ? gql(WEBHOOK, { id }).then((d) => d.webhook) : Promise.resolve(null),
  ]);
  if (!ctx.current()) return;
  if (id && !loaded) {
    replace(body, h("h1", {}, "No such webhook"), h("p", {}, h("a", { href: "#/webhooks" }, "Back to the webhooks")));
    return;
  }
  render(body, ctx, types, creds, loaded);
}

/** The form for `base` (null: a new webhook), in `body`. */
function render(body, ctx, types, creds, base) {
  const editing = Boolean(base);
  let since = base; // the version this form edits; a save names it as expectedVersion
  const sections = formSections(types, creds, base || {}, editing);
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const conflict = h("section", { class: "conflict", role: "alert", tabindex: "-1", hidden: true });
  const submit = button(editing ? "Save changes" : "Create webhook", null, { kind: "primary", type: "submit" });
  const cancelHref = editing ? `#/webhooks/${base.id}` : "#/webhooks";
  const form = h(
    "form",
    { class: "webhook-form", novalidate: true, onsubmit: (e) => (e.preventDefault(), save()) },
    summary,
    conflict,
    sections.el,
    h("div", { class: "form-actions" }, submit, h("a", { class: "btn ghost", href: cancelHref }, "Cancel")),
  );
  replace(
    body,
    h("p", { class: "crumbs" }, h("a", { href: "#/webhooks" }, "Webhooks"), " / ", editing ? h("a", { href: cancelHref }, base.name) : null),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit “${base.name}”` : "New webhook"), editing ? h("span", { class: "muted", "data-testid": "editing-version" }, `Editing version ${base.version}`) : null),
    form,
  );

  async function save() {
    const problems = [];
    const input = sections.read(problems);
    conflict.hidden = true;
    if (problems.length) {
      showProblems(form, summary, problems, NOT_SAVED);
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        const data = await gql(UPDATE, { id: base.id, input, expectedVersion: since.version });
        ctx.go(`#/webhooks/${base.id}`, `Saved “${data.updateWebhook.name}” (version ${data.updateWebhook.version}).`);
      } else {
        const data = await gql(CREATE, { input });
        ctx.go(`#/webhooks/${data.createWebhook.id}`, `Created “${data.createWebhook.name}”.`);
      }
    } catch (error) {
      if (error.code === "CONFLICT" && editing) await explainConflict();
      else showError(form, summary, error, NOT_SAVED);
    } finally {
      submit.disabled = false;
    }
  }

  async function explainConflict() {
    showProblems(form, summary, [], "");
    const current = (await gql(WEBHOOK, { id: base.id })).webhook;
    showConflict(conflict, since, current, {
      reload: () => render(body, ctx, types, creds, current),
      overwrite: () => {
        since = current;
        save();
      },
    });
  }
}

/** The form's sections, wired together: `el` to show them, `read(problems)` for the whole input. */
function formSections(types, creds, start, editing) {
  const basics = basicsSection(start);
  const events = eventsSection(types, start, () => showVariables());
  const destination = destinationSection(start, creds, () => template.check());
  const conditions = conditionsSection(start);
  const template = templateSection(types, start, () => destination.contentType());
  const options = optionsSection(start, editing);
  // The chosen event types' variables are listed by the template and offered as the conditions' fields.
  const showVariables = () => conditions.setPaths(template.showVariables(events.selected()));
  showVariables();
  template.check();
  return {
    el: [
      section("Basics", basics.el),
      section("Events", events.el),
      section("Destination", destination.el),
      section("Conditions", conditions.el),
      section("Payload", template.el),
      section("Delivery options", options.el),
    ],
    read: (problems) => ({
      ...basics.read(),
      ...events.read(),
      ...destination.read(),
      ...template.read(),
      ...conditions.read(),
      ...options.read(problems),
    }),
  };
}

function section(title, ...children) {
  const id = uid("section");
  return h("section", { class: "card form-section", "aria-labelledby": id }, h("h2", { id }, title), children);
}
