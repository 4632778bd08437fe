"""The built-in event types, from the products Hookline replaces and Hookline's own operator events,
each with a realistic sample payload (the rules for defining a type are in `domain.catalogue`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from domain.catalogue import EventTypeSpec
from domain.operations import DELIVERY_FAILED, WEBHOOK_DISABLED, WEBHOOK_FAILING


def _built_in() -> dict[str, EventTypeSpec]:
    """The built-in types with their sample payloads (parts that several types share written once)."""
    workspace = {
        "workspace_id": "3f1c2a9e-7b4d-4e8a-9c61-2d5f8e0b7a13",
        "workspace_name": "LT-PAR-0412",
        "workspace_last_user": "CORP\\jdupont",
        "workspace_reporting_group_id": 42,
        "workspace_reporting_group_name": "Paris - Finance",
    }
    ticket = {
        "id": 48213,
        "number": "INC-48213",
        "type": "Incident",
        "title": "Laptop does not connect to the VPN",
        "priority": "2 - High",
        "status": "New",
        "category": "Network",
        "subcategory": "VPN",
        "requester": {"id": 2291, "name": "Julie Dupont", "email": "julie.dupont@example.com"},
        "assigned_group": "Service Desk L1",
        "configuration_items": [{"id": 18342, "name": "LT-PAR-0412", "type": "Laptop"}],
        "created_at": "2025-06-03T08:12:45Z",
        "due_at": "2025-06-03T16:12:45Z",
    }
    item = {
        "id": 18342,
        "type": "ConfigurationItem",
        "class": "Server",
        "name": "srv-sql-prod-03",
        "attributes": dict(environment="production", location="Frankfurt DC2", owner_group="Database Team"),
    }
    admin = {"id": 117, "name": "Maria Keller", "email": "maria.keller@example.com"}
    operation = {
        "id": "9d4e1f72-3c5b-4a8e-b0d6-7f2a1c9e5b38",
        "name": "Restart print spooler",
        "type": "remote_action",
        "started_at": "2025-06-03T10:02:11Z",
        "finished_at": "2025-06-03T10:02:19Z",
    }
    aws = {"account_id": "123456789012", "region": "us-east-1"}
    servicenow = {
        "webhook_id": "6a2f9c14-83e1-4d7b-b5a0-1c9e4f7d2b63",
        "webhook_name": "ServiceNow incidents",
    }
    return {
        spec.name: spec
        for spec in (
            EventTypeSpec.of(
                "alert.activated",
                "A monitoring alert started on a device of the digital workspace.",
                {
                    "alert_name": "High CPU usage",
                    "alert_information": "CPU usage above 90% for more than 15 minutes",
                    "alert_start": "2025-06-03T09:26:53Z",
                    "alert_element": "LT-PAR-0412",
                    **workspace,
                },
            ),
            EventTypeSpec.of(
                "microservice.executed",
                "A remote action finished running on a device.",
                {
                    "operation_id": "5b7e2d19-8a4c-4f3e-9d61-0c2b7a8e4f15",
                    "microservice_id": "c2a8f4e1-6d3b-4b9a-8e57-1f0d9c3a6b24",
                    "microservice_name": "Clear browser cache",
                    "operation_startdate": "2025-06-03T09:31:02Z",
                    "operation_enddate": "2025-06-03T09:31:40Z",
                    "operation_result": "success",
                    **workspace,
                },
            ),
            EventTypeSpec.of(
                "object.created",
                "A configuration item was added to the CMDB.",
                {"object": item, "created_by": admin, "created_at": "2025-06-03T07:45:00Z"},
            ),
            EventTypeSpec.of(
                "object.modified",
                "A configuration item in the CMDB was changed.",
                {
                    "object": item,
                    "changes": [{"field": "status", "old_value": "In Service", "new_value": "Maintenance"}],
                    "modified_by": admin,
                    "modified_at": "2025-06-03T11:20:37Z",
                },
            ),
            EventTypeSpec.of(
                "object.deleted",
                "A configuration item was removed from the CMDB.",
                {
                    "object": {key: item[key] for key in ("id", "type", "class", "name")},
                    "deleted_by": admin,
                    "deleted_at": "2025-06-03T17:05:12Z",
                },
            ),
            EventTypeSpec.of(
                "operation.executed",
                "An operation ran across a set of devices and finished.",
                {
                    "operation": {**operation, "status": "completed", "duration_ms": 8214},
                    "initiated_by": admin,
                    "targets": {"requested": 25, "succeeded": 23, "failed": 2},
                },
            ),
            EventTypeSpec.of(
                "operation.executed_in_workspace",
                "An operation finished on one device of the digital workspace.",
                {
                    "operation": operation,
                    "workspace": {
                        "id": "3f1c2a9e-7b4d-4e8a-9c61-2d5f8e0b7a13",
                        "name": "LT-PAR-0412",
                        "platform": "windows",
                        "os_version": "Windows 11 23H2",
                        "last_user": "CORP\\jdupont",
                    },
                    "result": {"status": "success", "exit_code": 0, "output": "Spooler service restarted"},
                },
            ),
            EventTypeSpec.of(
                "ticket.created",
                "A service-desk ticket was opened.",
                {"ticket": ticket, "created_by": ticket["requester"]},
            ),
            EventTypeSpec.of(
                "ticket.updated",
                "A service-desk ticket was changed.",
                {
                    "ticket": {**ticket, "status": "In Progress", "assignee": admin},
                    "changes": [
                        {"field": "status", "old_value": "New", "new_value": "In Progress"},
                        {"field": "assignee", "old_value": None, "new_value": "Maria Keller"},
                    ],
                    "updated_by": admin,
                    "updated_at": "2025-06-03T08:30:02Z",
                },
            ),
            EventTypeSpec.of(
                "ticket.deleted",
                "A service-desk ticket was deleted.",
                {
                    "ticket": {key: ticket[key] for key in ("id", "number", "type", "title")},
                    "deleted_by": admin,
                    "deleted_at": "2025-06-04T09:00:00Z",
                },
            ),
            EventTypeSpec.of(
                "rule.violation",
                "A cloud resource broke a governance or well-architected rule.",
                {
                    "time": "2025-06-03T06:00:00Z",
                    "name": "S3 bucket allows public read access",
                    "description": "Bucket acme-invoices-archive grants s3:GetObject to everyone.",
                    "rule_id": "SEC-S3-001",
                    "severity": "high",
                    "pillar": "security",
                    **aws,
                    "resource": {
                        "id": "acme-invoices-archive",
                        "type": "AWS::S3::Bucket",
                        "arn": "arn:aws:s3:::acme-invoices-archive",
                    },
                },
            ),
            EventTypeSpec.of(
                "reserved_instance.surplus",
                "More instances are reserved than are running, so reserved capacity goes unused.",
                {
                    "time": "2025-06-03T00:00:00Z",
                    "name": "Reserved instance surplus: m5.xlarge",
                    "description": "3 of 10 reserved m5.xlarge (Linux/UNIX) in us-east-1 are unused.",
                    **aws,
                    "instance_type": "m5.xlarge",
                    "platform": "Linux/UNIX",
                    "reserved_count": 10,
                    "running_count": 7,
                    "surplus_count": 3,
                    "monthly_waste_usd": 264.99,
                },
            ),
            EventTypeSpec.of(
                "reserved_instance.deficit",
                "More instances are running than are reserved, so some run at on-demand prices.",
                {
                    "time": "2025-06-03T00:00:00Z",
                    "name": "Reserved instance deficit: c6i.2xlarge",
                    "description": "12 of 20 running c6i.2xlarge (Linux/UNIX) in eu-west-1 are not reserved.",
                    "account_id": "123456789012",
                    "region": "eu-west-1",
                    "instance_type": "c6i.2xlarge",
                    "platform": "Linux/UNIX",
                    "reserved_count": 8,
                    "running_count": 20,
                    "deficit_count": 12,
                    "monthly_on_demand_extra_usd": 1103.76,
                },
            ),
            EventTypeSpec.of(
                "alert.sent",
                "An emergency notification was sent to its recipients.",
                {
                    "alertId": 730215,
                    "metadata": {
                        "TenantId": "b3c1e7a2-5f4d-4c8b-a9e6-2d7f0b1c8e39",
                        "OwnerId": "7d2e9b4a-1c6f-4e3d-8b5a-0f9c2e7d4a16",
                        "attributes": {
                            "priority": "High",
                            "incidentName": "Tornado warning - Dallas County",
                            "category": "Severe Weather",
                        },
                        "tags": {
                            "facilities": ["Dallas HQ", "Plano Warehouse"],
                            "departments": ["Operations"],
                        },
                    },
                    "message": {
                        "subject": "Tornado warning: shelter in place",
                        "body": "Tornado warning in effect until 15:45 CDT. Go to your shelter area now.",
                    },
                    "channels": ["sms", "email", "voice", "push"],
                    "recipients": {"total": 1284, "delivered": 1279, "failed": 5},
                    "sentAt": "2025-06-03T19:58:04Z",
                },
            ),
            EventTypeSpec.of(
                WEBHOOK_FAILING,
                "Published by Hookline: a webhook's consecutive failed attempts reached one of the "
                "thresholds (5, 20 and 100 by default), once each per failing streak.",
                {
                    **servicenow,
                    "consecutive_failures": 5,
                    "failing_since": "2025-06-03T09:14:07Z",
                    "last_status_code": 503,
                    "last_error": None,
                },
            ),
            EventTypeSpec.of(
                WEBHOOK_DISABLED,
                "Published by Hookline: a webhook was switched off, because its target answered "
                "410 Gone (reason gone) or its deliveries failed for too long (reason failing).",
                {**servicenow, "reason": "gone"},
            ),
            EventTypeSpec.of(
                DELIVERY_FAILED,
                "Published by Hookline: a delivery failed for good, its last attempt made.",
                {
                    "delivery_id": "b81e4c7a-2f5d-4a93-8c06-7d3e9a1f5b24",
                    **servicenow,
                    "event_id": "e4d7a2c9-5b1f-4e86-a3c0-9f2b7d6e1a58",
                    "event_type": "ticket.created",
                    "attempts": 8,
                    "last_status_code": None,
                    "last_error": "timed out after 15 s",
                },
            ),
        )
    }


BUILT_IN: Mapping[str, EventTypeSpec] = MappingProxyType(_built_in())
