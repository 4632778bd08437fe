// Who a key belongs to (`me`): its role and organisation, asked once per key while the page is open.

import { gql } from "./api.js";

const ME = "{ me { keyId role organizationId organizationName } }";
const found = new Map(); // key -> Promise<{keyId, role, organization}>

/** `{keyId, role, organization}` of a key; rejects (and forgets) when the key is not accepted. */
export function identify(key) {
  if (!found.has(key)) {
    const identity = ask(key).catch((error) => {
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

async function ask(key) {
  const { me } = await gql(ME, {}, key);
  return { keyId: me.keyId, role: me.role.toLowerCase(), organization: me.organizationName };
}
