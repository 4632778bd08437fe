// The webhook form's conditions: groups of conditions, all of a group must hold (AND), any one group is
// enough (OR).

import { valuesText, readCondition } from "./condition-values.js";
import { button, h, replace, uid } from "./dom.js";
import { OPERATORS } from "./shared.js";

const PLACEHOLDERS = {
  EQ: "Disk full, 42 or true",
  NEQ: "resolved",
  IN: "critical, major",
  NOT_IN: "test, staging",
  CONTAINS: "CPU",
  GT: "90 or 2025-01-01T00:00:00Z",
  GTE: "90",
  LT: "10",
  LTE: "10",
  MATCHES: "^LT-PAR-",
};
const PART_LABELS = { field: "Field", operator: "Operator", values: "Value" };
const BLANK = () => ({ field: "", operator: "EQ", values: [""] });

export function conditionsSection(start) {
  const datalist = h("datalist", { id: uid("paths") });
  const groups = h("div", { class: "groups" });
  const addGroup = (conditions, focus) => {
    const group = conditionGroup(conditions, datalist.id, () => renumber(groups));
    groups.append(group);
    renumber(groups);
    if (focus) group.querySelector("input")?.focus();
  };
  const el = h(
    "div",
    { class: "field", "data-field": "filters" },
    h(
      "p",
      { class: "hint" },
      "Deliver only the events that match: every condition of a group must hold (AND), and any one group is enough (OR). No group: every event of the chosen types.",
    ),
    groups,
    button("Add a group of conditions", () => addGroup([BLANK()], true), { kind: "small" }),
    h("p", { class: "field-error", hidden: true }),
    datalist,
  );
  for (const group of start.filters || []) addGroup(group.conditions, false);
  /** The payload paths offered while typing a field. */
  const setPaths = (paths) => replace(datalist, [...paths].map((p) => h("option", { value: p })));
  const read = () => ({
    filters: [...groups.querySelectorAll(".cond-group")]
      .map((group) => ({ conditions: [...group.querySelectorAll(".cond-row")].map(readRow).filter(Boolean) }))
      .filter((g) => g.conditions.length),
  });
  return { el, setPaths, read };
}

function readRow(row) {
  const [fieldInput, valueInput] = row.querySelectorAll("input");
  const [operator, exists] = row.querySelectorAll("select");
  return readCondition(fieldInput.value, operator.value, valueInput.value, exists.value);
}

/** Names every group and condition after its place (`filters[0].conditions[1].values`), as the server does. */
function renumber(groupsBox) {
  const groups = [...groupsBox.querySelectorAll(".cond-group")];
  groups.forEach((group, i) => {
    group.dataset.field = `filters[${i}].conditions`;
    group.querySelector("h3").textContent = `Group ${i + 1}: all of these`;
    group.querySelector(".remove-group").setAttribute("aria-label", `Remove group ${i + 1}`);
    group.querySelector(".add-condition").setAttribute("aria-label", `Add a condition to group ${i + 1}`);
    [...group.querySelectorAll(".cond-row")].forEach((row, j) => {
      const where = `filters[${i}].conditions[${j}]`;
      const label = `group ${i + 1}, condition ${j + 1}`;
      for (const part of ["field", "operator", "values"]) {
        const cell = row.querySelector(`[data-part="${part}"]`);
        cell.dataset.field = `${where}.${part}`;
        cell.querySelector("label").textContent = `${PART_LABELS[part]}, ${label}`;
      }
      row.querySelector(".remove-condition").setAttribute("aria-label", `Remove ${label}`);
    });
  });
  [...groupsBox.querySelectorAll(".or")].forEach((el) => el.remove());
  groups.slice(1).forEach((group) => group.before(h("div", { class: "or", "aria-hidden": "true" }, "or")));
}

/** `changed` is called when a condition or the group itself comes or goes. */
function conditionGroup(conditions, datalistId, changed) {
  const rows = h("div", { class: "rows" });
  const titleId = uid("group");
  const add = (condition, focus) => {
    rows.append(conditionRow(condition, datalistId, changed));
    changed();
    if (focus) rows.lastElementChild.querySelector("input").focus();
  };
  const group = h(
    "div",
    { class: "cond-group", role: "group", "aria-labelledby": titleId },
    h(
      "div",
      { class: "cond-group-head" },
      h("h3", { id: titleId }),
      button("Remove group", () => {
        group.remove();
        changed();
      }, { kind: "small ghost remove-group" }),
    ),
    h(
      "div",
      { class: "cond-columns", "aria-hidden": "true" },
      h("span", {}, "Field (path in the payload)"),
      h("span", {}, "Operator"),
      h("span", {}, "Value(s)"),
    ),
    rows,
    button("Add condition", () => add(BLANK(), true), { kind: "small add-condition" }),
    h("p", { class: "field-error", hidden: true }),
  );
  for (const condition of conditions) rows.append(conditionRow(condition, datalistId, changed));
  return group;
}

function conditionRow(condition, datalistId, changed) {
  const fieldInput = h("input", { type: "text", value: condition.field, list: datalistId, placeholder: "alert_name", spellcheck: "false", id: uid("cf") });
  const operator = h(
    "select",
    { id: uid("co") },
    OPERATORS.map(([op, label]) => h("option", { value: op, selected: condition.operator === op }, `${label} (${op})`)),
  );
  const [valueCell, sync] = valuesCell(condition, operator);
  operator.addEventListener("change", sync);
  const row = h(
    "div",
    { class: "cond-row" },
    cell("field", fieldInput),
    cell("operator", operator),
    valueCell,
    button("Remove", () => {
      row.remove();
      changed();
    }, { kind: "small ghost remove-condition" }),
  );
  sync();
  return row;
}

function cell(part, control) {
  return h(
    "div",
    { class: "field", "data-part": part },
    h("label", { class: "sr-only", for: control.id }),
    control,
    h("p", { class: "field-error", hidden: true }),
  );
}

/** The values cell: a text box, or present/absent for EXISTS; `sync` shows the one the operator takes. */
function valuesCell(condition, operator) {
  const valueInput = h("input", { type: "text", value: valuesText(condition), spellcheck: "false", id: uid("cv") });
  const exists = h(
    "select",
    { id: uid("ce") },
    h("option", { value: "present", selected: condition.values?.[0] !== false }, "present, not null"),
    h("option", { value: "absent", selected: condition.values?.[0] === false }, "absent or null"),
  );
  const valueCell = h(
    "div",
    { class: "field", "data-part": "values" },
    h("label", { class: "sr-only" }),
    valueInput,
    exists,
    h("p", { class: "field-error", hidden: true }),
  );
  const sync = () => {
    const isExists = operator.value === "EXISTS";
    valueInput.hidden = isExists;
    exists.hidden = !isExists;
    valueCell.querySelector("label").htmlFor = isExists ? exists.id : valueInput.id;
    valueInput.placeholder = PLACEHOLDERS[operator.value] || "";
  };
  return [valueCell, sync];
}
