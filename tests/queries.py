"""GraphQL documents the tests send, written once."""

WEBHOOK_FIELDS = """
  id name description eventTypes targetUrl method headers { name value } credentialId
  payloadTemplate filters { conditions { field operator values } } active rateLimitPerSecond
  disabledReason signingSecret version createdAt updatedAt
"""

CREATE_WEBHOOK = f"""
mutation($input: CreateWebhookInput!) {{ createWebhook(input: $input) {{ {WEBHOOK_FIELDS} }} }}
"""
UPDATE_WEBHOOK = f"""
mutation($id: ID!, $input: UpdateWebhookInput!, $expectedVersion: Int) {{
  updateWebhook(id: $id, input: $input, expectedVersion: $expectedVersion) {{ {WEBHOOK_FIELDS} }}
}}
"""
SET_ACTIVE = f"""
mutation($id: ID!, $active: Boolean!) {{ setWebhookActive(id: $id, active: $active) {{ {WEBHOOK_FIELDS} }} }}
"""
DELETE_WEBHOOK = "mutation($id: ID!) { deleteWebhook(id: $id) }"
ROTATE = f"mutation($id: ID!) {{ rotateSigningSecret(id: $id) {{ {WEBHOOK_FIELDS} }} }}"
WEBHOOK = f"query($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK_FIELDS} }} }}"
WEBHOOKS = f"""
query($first: Int, $after: String, $active: Boolean, $eventType: String) {{
  webhooks(first: $first, after: $after, active: $active, eventType: $eventType) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {WEBHOOK_FIELDS} }} }}
  }}
}}
"""
PUBLISH = """
mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }
"""
DELIVERY_FIELDS = """
  id webhookId eventId eventType status nextAttemptAt createdAt
  attempts { number startedAt durationMs statusCode error responseBody }
"""
DELIVERY = f"query($id: ID!) {{ delivery(id: $id) {{ {DELIVERY_FIELDS} }} }}"
DELIVERIES = f"""
query($webhookId: ID, $eventId: ID, $status: DeliveryStatus, $first: Int, $after: String) {{
  deliveries(webhookId: $webhookId, eventId: $eventId, status: $status, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {DELIVERY_FIELDS} }} }}
  }}
}}
"""


def webhook_input(target: str, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "Incidents to ServiceNow",
        "eventTypes": ["alert.activated"],
        "targetUrl": target,
    }
    values.update(overrides)
    return values
