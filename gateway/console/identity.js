// Who a key belongs to: its role and organisation, found once per key while the page is open.
// The API has no `me` query yet, so the role is worked out from what the key may do; when `me`
// comes, only this module changes.

import { gql } from "./api.js";

const NIL_ID = "00000000-0000-0000-0000-000000000000";
const found = new Map(); // key -> Promise<{role, organization}>

/** `{role, organization}` of a key; rejects (and forgets) when the key is not accepted. */
export function identify(key) {
  if (!found.has(key)) {
    const identity = probe(key).catch((error) => {
      found.delete(key);
      throw error;
    });
    found.set(key, identity);
  }
  return found.get(key);
}

/** Forgets what was found for a key (on signing out). */
export function forgetIdentity(key) {
  found.delete(key);
}

async function probe(key) {
  const attempt = (query) =>
    gql(query, {}, key).then(
      (data) => ({ data }),
      (error) => ({ error }),
    );
  const [types, webhooks, audit] = await Promise.all([
    attempt("{ eventTypes { name } }"),
    attempt("{ webhooks(first: 1) { totalCount } }"),
    attempt("{ auditLog(first: 1) { edges { node { eventType data } } } }"),
  ]);
  if (types.error) throw types.error;
  const forbidden = (result) => result.error?.code === "FORBIDDEN";
  let role;
  if (forbidden(webhooks)) role = "publisher";
  else if (forbidden(audit)) role = "viewer";
  else role = await adminOrAuditor(attempt);
  const first = audit.data?.auditLog.edges[0]?.node;
  const organization = first?.eventType === "Organization.Created" ? first.data?.name ?? null : null;
  return { role, organization };
}

/**
 * Admins and auditors read the same things; only an admin may change a webhook. Switching off the nil
 * id changes nothing: an admin is told it does not exist, an auditor that it may not.
 */
async function adminOrAuditor(attempt) {
  const probe = await attempt(`mutation { setWebhookActive(id: "${NIL_ID}", active: false) { id } }`);
  return probe.error?.code === "NOT_FOUND" ? "admin" : "auditor";
}
