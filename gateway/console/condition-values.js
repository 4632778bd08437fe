// A condition's values as the one text box shows them, and back: `critical, major` for IN, JSON where
// a bare word would be read as something else (`"42"` is the string, `42` the number).

/** The text a condition's values are shown as. */
export function valuesText(condition) {
  const values = condition.values || [];
  if (condition.operator === "EXISTS") return "";
  const one = (v) => {
    if (typeof v !== "string") return JSON.stringify(v);
    let parsed;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    const ambiguous = parsed !== undefined || v.includes(",") || v !== v.trim();
    return ambiguous && condition.operator !== "MATCHES" ? JSON.stringify(v) : v;
  };
  return values.map(one).join(", ");
}

/** The condition a row of the form says, or null for a row left empty. */
export function readCondition(fieldValue, operator, rawValues, exists) {
  if (!fieldValue.trim() && !rawValues.trim() && operator !== "EXISTS") return null;
  const condition = { field: fieldValue.trim(), operator };
  if (operator === "EXISTS") condition.values = exists === "absent" ? [false] : null;
  else if (operator === "IN" || operator === "NOT_IN") condition.values = splitList(rawValues).map((v) => parseValue(v, operator));
  else condition.values = [parseValue(rawValues, operator)];
  return condition;
}

function parseValue(raw, operator) {
  const text = raw.trim();
  if (operator === "MATCHES") return raw;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Splits on the commas outside double quotes. */
function splitList(raw) {
  const parts = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw[i];
    if (c === "\\" && quoted) {
      current += c + (raw[i + 1] ?? "");
      i += 1;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}
