// A button that asks before it acts: a modal dialog that says what will happen, with Cancel (focused)
// and the action; when the action fails, its error is shown there and the dialog stays open.

import { button, h, uid } from "./dom.js";

/** `content`: what the dialog says under its `title`; `run`: the action (a promise). */
export function confirmButton(body, { label, title, content, action, run, attrs = {} }) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const cancel = button("Cancel", () => dialog.close(), { autofocus: true });
  const confirm = button(
    action,
    async () => {
      confirm.disabled = true;
      try {
        await run();
        dialog.close();
      } catch (caught) {
        error.hidden = false;
        error.textContent = caught.message;
      } finally {
        confirm.disabled = false;
      }
    },
    { kind: "danger" },
  );
  const titleId = uid("confirm");
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    content,
    error,
    h("div", { class: "actions" }, cancel, confirm),
  );
  return button(
    label,
    () => {
      error.hidden = true;
      if (!dialog.isConnected) body.append(dialog); // (a page may be built before it is shown)
      dialog.showModal();
    },
    { kind: "danger-outline", ...attrs },
  );
}
