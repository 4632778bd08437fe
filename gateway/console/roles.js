// Who may do what: a copy of domain/roles.py (Permission and GRANTS), which tests/test_console.py keeps
// equal to it. The console only hides what a role may not do; the server still refuses it.

export const PERMISSION = Object.freeze({
  MANAGE_WEBHOOKS: "manage webhooks",
  READ_WEBHOOKS: "read webhooks",
  READ_SIGNING_SECRETS: "read signing secrets",
  READ_WEBHOOK_SECRETS: "read secret header values and target URLs as set",
  READ_DELIVERIES: "read deliveries",
  MANAGE_DELIVERIES: "manage deliveries",
  MANAGE_CREDENTIALS: "manage credentials",
  READ_CREDENTIALS: "read credentials",
  READ_EVENT_TYPES: "read event types",
  DEFINE_EVENT_TYPES: "define event types",
  PUBLISH_EVENTS: "publish events",
  READ_AUDIT_LOG: "read audit log",
  MANAGE_API_KEYS: "manage API keys",
  READ_RETENTION_POLICY: "read the retention policy",
  SET_RETENTION_POLICY: "set the retention policy",
  ERASE_EVENTS: "erase events' payloads and bodies",
});

const P = PERMISSION;
const READ_ALL = [
  P.READ_WEBHOOKS,
  P.READ_DELIVERIES,
  P.READ_CREDENTIALS,
  P.READ_EVENT_TYPES,
  P.READ_AUDIT_LOG,
  P.READ_RETENTION_POLICY,
];

export const GRANTS = Object.freeze({
  admin: Object.values(P),
  publisher: [P.PUBLISH_EVENTS, P.READ_EVENT_TYPES],
  auditor: READ_ALL,
  viewer: [P.READ_WEBHOOKS, P.READ_DELIVERIES, P.READ_EVENT_TYPES],
});

/** Whether a role may do something (a PERMISSION value). */
export function may(role, permission) {
  return GRANTS[role]?.includes(permission) ?? false;
}
