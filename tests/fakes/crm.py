"""Fake CRMs for the connector tests: a Standard Webhooks receiver, HubSpot and Salesforce, each
a real HTTP server that checks requests the way the real API does and keeps the state it would."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.fakes.server import FakeServer, Reply, Request

_SCALAR = (str, int, float, bool)

# Credentials the fixtures' fakes accept.
WEBHOOK_SECRETS = (
    # Two keys of a rotation: base64 keys in the whsec_ form that dashboards show.
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_c2Vjb25kLXJvdGF0aW9uLXNlY3JldC0yNA==",
)
HUBSPOT_TOKEN = "pat-na1-00000000-1111-2222-3333-444444444444"
SALESFORCE_SESSION = "00D000000000001!AQ0AQFakeSessionIdForTests"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_json(req: Request) -> bool:
    return req.headers.get("content-type", "").split(";")[0].strip() == "application/json"


# ── Standard Webhooks ───────────────────────────────────────────────────────────────────────


class FakeWebhookReceiver(FakeServer):
    """A receiver that verifies each POST with `standardwebhooks` against its secrets (401 if
    none matches: as a receiver that knows only one key of a rotation would) and keeps each
    `webhook-id` once, answering 200 to a duplicate without recording it again."""

    def __init__(self, secrets: Iterable[str], path: str = "/hooks/reel") -> None:
        super().__init__()
        self.secrets = list(secrets)
        self.path = path
        self.delivered: dict[str, Any] = {}  # webhook-id → payload, first arrival only
        self.seen: Counter[str] = Counter()  # webhook-id → verified attempts

    @property
    def endpoint(self) -> str:
        return self.url + self.path

    @property
    def payloads(self) -> list[Any]:
        with self.lock:
            return list(self.delivered.values())

    def handle(self, req: Request) -> Reply:
        if req.path != self.path:
            return Reply(404, {"error": "not found"})
        if req.method != "POST":
            return Reply(405, {"error": "method not allowed"})
        if not _is_json(req):
            return Reply(415, {"error": "content-type must be application/json"})
        payload = None
        for secret in self.secrets:
            try:
                payload = Webhook(secret).verify(req.body, req.headers)
                break
            except WebhookVerificationError:
                continue
        if payload is None:
            return Reply(401, {"error": "invalid signature"})
        msg_id = req.headers["webhook-id"]
        self.seen[msg_id] += 1
        self.delivered.setdefault(msg_id, payload)
        return Reply(200)


# ── HubSpot ─────────────────────────────────────────────────────────────────────────────────

HUBSPOT_PROPERTIES = frozenset(
    {"email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage"}
)
_TIMELINE_KEYS = frozenset(
    {
        "eventTemplateId",
        "id",
        "email",
        "objectId",
        "utk",
        "domain",
        "tokens",
        "extraData",
        "timelineIFrame",
        "timestamp",
        "customObjectTypeId",
    }
)


class FakeHubSpot(FakeServer):
    """HubSpot's CRM v3 contacts, timeline v3 events and v3 list memberships.

    Seed it with `add_contact`, `add_list`, `add_event_template` (and `add_property` for a
    custom property). Property values are stored as strings, as HubSpot does."""

    def __init__(self, token: str, *, properties: Iterable[str] = HUBSPOT_PROPERTIES) -> None:
        super().__init__()
        self.token = token
        self.properties = set(properties)
        self.contacts: dict[str, dict[str, str]] = {}  # record id → properties
        self.lists: dict[str, str] = {}  # list id → processingType
        self.memberships: dict[str, list[str]] = {}  # list id → record ids, in order added
        self.templates: dict[str, set[str]] = {}  # event template id → token names
        self.events: dict[str, dict[str, Any]] = {}  # event id → the event
        self._next_id = 1001

    # ── seeding and reading ──

    def add_contact(self, email: str, **properties: str) -> str:
        with self.lock:
            record_id = str(self._next_id)
            self._next_id += 1
            self.contacts[record_id] = {"email": email, **properties}
            return record_id

    def add_list(self, list_id: str, processing_type: str = "MANUAL") -> None:
        with self.lock:
            self.lists[list_id] = processing_type
            self.memberships.setdefault(list_id, [])

    def add_event_template(self, template_id: str, tokens: Iterable[str]) -> None:
        with self.lock:
            self.templates[template_id] = set(tokens)

    def add_property(self, name: str) -> None:
        with self.lock:
            self.properties.add(name)

    def contact(self, id_or_email: str) -> dict[str, str] | None:
        with self.lock:
            record_id = self._find(id_or_email, by_email="@" in id_or_email)
            return dict(self.contacts[record_id]) if record_id else None

    # ── the API ──

    def error_body(self, status: int, message: str) -> Any:
        category = {
            400: "VALIDATION_ERROR",
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
            409: "CONFLICT",
            415: "VALIDATION_ERROR",
            429: "RATE_LIMITS",
        }.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
        return {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }

    def _error(self, status: int, message: str) -> Reply:
        return Reply(status, self.error_body(status, message))

    def handle(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            )
        body: Any = None
        if req.method in ("POST", "PUT", "PATCH"):
            if not _is_json(req):
                ctype = req.headers.get("content-type", "")
                return self._error(415, f"Content type '{ctype}' not supported")
            try:
                body = json.loads(req.body)
            except ValueError as err:
                return self._error(400, f"Invalid input JSON: {err}")
        route = (req.method, *req.path.strip("/").split("/"))
        match route:
            case ("PATCH", "crm", "v3", "objects", "contacts", contact):
                return self._patch_contact(req, contact, body)
            case ("GET", "crm", "v3", "objects", "contacts", contact):
                return self._get_contact(req, contact)
            case ("POST", "integrators", "timeline", "v3", "events"):
                return self._create_event(body)
            case ("GET", "integrators", "timeline", "v3", "events", template_id, event_id):
                event = self.events.get(event_id)
                if event is None or event["eventTemplateId"] != template_id:
                    return self._error(404, f"Event {event_id} not found")
                return Reply(200, event)
            case ("PUT", "crm", "v3", "lists", list_id, "memberships", "add"):
                return self._add_members(list_id, body)
        return self._error(404, f"No route for {req.method} {req.path}")

    def _find(self, contact: str, *, by_email: bool) -> str | None:
        if not by_email:
            return contact if contact in self.contacts else None
        for record_id, props in self.contacts.items():
            if props.get("email", "").lower() == contact.lower():
                return record_id
        return None

    def _object(self, record_id: str) -> dict[str, Any]:
        now = _now_iso()
        props = self.contacts[record_id]
        return {
            "id": record_id,
            "properties": {**props, "hs_object_id": record_id},
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }

    def _lookup(self, req: Request, contact: str) -> str | Reply:
        id_property = req.param("idProperty")
        if id_property not in (None, "email"):
            return self._error(400, f"Unsupported idProperty {id_property}")
        if id_property is None and not contact.isdigit():
            return self._error(404, "Object not found. objectId are usually numeric.")
        record_id = self._find(contact, by_email=id_property == "email")
        if record_id is None:
            return self._error(404, "resource not found")
        return record_id

    def _get_contact(self, req: Request, contact: str) -> Reply:
        found = self._lookup(req, contact)
        return found if isinstance(found, Reply) else Reply(200, self._object(found))

    def _patch_contact(self, req: Request, contact: str, body: Any) -> Reply:
        if not isinstance(body, dict) or set(body) != {"properties"}:
            return self._error(400, 'Invalid input JSON: expected {"properties": {...}}')
        props = body["properties"]
        if not isinstance(props, dict) or not props:
            return self._error(400, "properties must be a non-empty object")
        problems = [
            {"isValid": False, "message": f'Property "{k}" does not exist', "name": k}
            for k in props
            if k not in self.properties
        ] + [
            {"isValid": False, "message": f'"{v}" is not a valid value', "name": k}
            for k, v in props.items()
            if v is not None and not isinstance(v, _SCALAR)
        ]
        if problems:
            return self._error(400, f"Property values were not valid: {json.dumps(problems)}")
        found = self._lookup(req, contact)
        if isinstance(found, Reply):
            return found
        stored = self.contacts[found]
        for k, v in props.items():
            stored[k] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        return Reply(200, self._object(found))

    def _create_event(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return self._error(400, "Invalid input JSON: expected an object")
        if unknown := set(body) - _TIMELINE_KEYS:
            return self._error(
                400, f'Invalid input JSON: Unrecognized field "{sorted(unknown)[0]}"'
            )
        template_id = body.get("eventTemplateId")
        if not isinstance(template_id, str) or template_id not in self.templates:
            return self._error(400, f"Event template {template_id!r} does not exist")
        tokens = body.get("tokens")
        if not isinstance(tokens, dict):
            return self._error(400, "tokens is required: an object of token values")
        bad = [k for k, v in tokens.items() if k not in self.templates[template_id]] + [
            k for k, v in tokens.items() if not isinstance(v, _SCALAR)
        ]
        if bad:
            return self._error(400, f"Invalid tokens for template {template_id}: {bad}")
        if "extraData" in body and not isinstance(body["extraData"], dict):
            return self._error(400, "extraData must be an object")
        email, object_id = body.get("email"), body.get("objectId")
        if bool(email) == bool(object_id):
            return self._error(400, "exactly one of email and objectId identifies the contact")
        if object_id is not None:
            if str(object_id) not in self.contacts:
                return self._error(404, f"Contact {object_id} not found")
            record_id = str(object_id)
        else:
            record_id = self._find(str(email), by_email=True) or self.add_contact(str(email))
        event_id = str(body.get("id") or uuid.uuid4())
        if (old := self.events.get(event_id)) is not None:
            if old["eventTemplateId"] == template_id and old["objectId"] == record_id:
                return self._error(409, f"Event {event_id} already exists")
            return self._error(400, "Event ID already in use, please choose a new unique ID")
        event = {
            "objectType": "contacts",
            "id": event_id,
            "eventTemplateId": template_id,
            "email": self.contacts[record_id].get("email"),
            "objectId": record_id,
            "timestamp": body.get("timestamp") or _now_iso(),
            "tokens": {k: str(v) for k, v in tokens.items()},
            "extraData": body.get("extraData"),
        }
        self.events[event_id] = event
        return Reply(200, event)

    def _add_members(self, list_id: str, body: Any) -> Reply:
        if not isinstance(body, list) or not all(isinstance(x, str | int) for x in body):
            return self._error(400, "Invalid input JSON: expected an array of record ids")
        if list_id not in self.lists:
            return self._error(404, f"List {list_id} does not exist")
        if self.lists[list_id] not in ("MANUAL", "SNAPSHOT"):
            return self._error(400, f"List {list_id} is not MANUAL or SNAPSHOT")
        added, missing = [], []
        members = self.memberships[list_id]
        for raw in body:
            record_id = str(raw)
            if record_id not in self.contacts:
                missing.append(record_id)
            elif record_id not in members:
                members.append(record_id)
                added.append(record_id)
        return Reply(200, {"recordIdsAdded": added, "recordIdsMissing": missing})


# ── Salesforce ──────────────────────────────────────────────────────────────────────────────

CONTACT_FIELDS = frozenset(
    {"FirstName", "LastName", "Email", "Phone", "Title", "Description", "LeadSource"}
)
TASK_FIELDS = frozenset(
    {
        "WhoId",
        "WhatId",
        "Subject",
        "Description",
        "Status",
        "Priority",
        "OwnerId",
        "ActivityDate",
        "Type",
    }
)
_SF_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")
_STRING = r"'((?:[^'\\]|\\.)*)'"
_DUPLICATE_QUERY = re.compile(
    r"^SELECT Id, Description FROM Task WHERE WhoId = "
    + _STRING
    + r" AND Subject = "
    + _STRING
    + r" ORDER BY CreatedDate DESC LIMIT (\d+)$"
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _soql_string(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), text)


class FakeSalesforce(FakeServer):
    """Salesforce's REST API (HTTPS, as simple-salesforce only speaks it) at one version:
    Contact update, Task create and upsert by an external id field, and the one SOQL query the
    connector's duplicate check makes. Give clients `verify=fake.tls_files.ca` (see
    `client_session`)."""

    tls = True

    def __init__(
        self,
        session_id: str,
        *,
        version: str = "59.0",
        task_external_ids: Iterable[str] = (),
        contact_fields: Iterable[str] = CONTACT_FIELDS,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.version = version
        self.contact_fields = set(contact_fields)
        self.task_external_ids = set(task_external_ids)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}  # in creation order
        self._serial = 0

    def _new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:012d}AAA"

    def add_contact(self, **fields: Any) -> str:
        with self.lock:
            contact_id = self._new_id("003")
            self.contacts[contact_id] = {"LastName": "Doe", **fields}
            return contact_id

    def tasks_of(self, who: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(t) for t in self.tasks.values() if t.get("WhoId") == who]

    def error_body(self, status: int, message: str) -> Any:
        code = {
            400: "MALFORMED_QUERY",
            401: "INVALID_SESSION_ID",
            404: "NOT_FOUND",
            503: "SERVER_UNAVAILABLE",
        }.get(status, "UNKNOWN_EXCEPTION")
        return [{"message": message, "errorCode": code}]

    def _error(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> Reply:
        return Reply(status, [{"message": message, "errorCode": code, "fields": fields or []}])

    def handle(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.session_id}":
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        prefix = f"/services/data/v{self.version}/"
        if not req.path.startswith(prefix):
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        body: Any = None
        if req.method in ("POST", "PATCH"):
            if not _is_json(req):
                return self._error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type not supported")
            try:
                body = json.loads(req.body)
            except ValueError as err:
                return self._error(400, "JSON_PARSER_ERROR", f"Unexpected JSON: {err}")
            if not isinstance(body, dict):
                return self._error(400, "JSON_PARSER_ERROR", "Expected an object")
        route = (req.method, *req.path[len(prefix) :].strip("/").split("/"))
        match route:
            case ("PATCH", "sobjects", "Contact", contact_id):
                return self._update_contact(contact_id, body)
            case ("POST", "sobjects", "Task"):
                return self._create_task(body)
            case ("PATCH", "sobjects", "Task", field, value):
                return self._upsert_task(field, value, body)
            case ("GET", "query"):
                return self._query(req.param("q") or "")
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    def _unknown(
        self, body: dict[str, Any], fields: AbstractSet[str], sobject: str
    ) -> Reply | None:
        for name in body:
            if name not in fields:
                return self._error(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {sobject}",
                    [name],
                )
        return None

    def _update_contact(self, contact_id: str, body: dict[str, Any]) -> Reply:
        if (bad := self._unknown(body, self.contact_fields, "Contact")) is not None:
            return bad
        if contact_id not in self.contacts:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        self.contacts[contact_id].update(body)
        return Reply(204)

    def _check_task(self, body: dict[str, Any]) -> Reply | None:
        if (bad := self._unknown(body, TASK_FIELDS | self.task_external_ids, "Task")) is not None:
            return bad
        who = body.get("WhoId")
        if who is not None and (not isinstance(who, str) or not _SF_ID.match(who)):
            return self._error(400, "MALFORMED_ID", f"Name ID: id value of incorrect type: {who}")
        if who is not None and who not in self.contacts:
            return self._error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Name ID: id value of incorrect type",
                ["WhoId"],
            )
        return None

    def _create_task(self, body: dict[str, Any]) -> Reply:
        if (bad := self._check_task(body)) is not None:
            return bad
        task_id = self._new_id("00T")
        self.tasks[task_id] = {"Id": task_id, "Status": "Not Started", **body}
        return Reply(201, {"id": task_id, "success": True, "errors": []})

    def _upsert_task(self, field: str, value: str, body: dict[str, Any]) -> Reply:
        if field not in self.task_external_ids:
            return self._error(
                404, "NOT_FOUND", f"Provided external ID field does not exist: {field}"
            )
        if field in body:
            return self._error(400, "INVALID_FIELD", f"{field} is the upsert key", [field])
        if (bad := self._check_task(body)) is not None:
            return bad
        for task_id, task in self.tasks.items():
            if task.get(field) == value:
                task.update(body)
                return Reply(200, {"id": task_id, "success": True, "errors": [], "created": False})
        task_id = self._new_id("00T")
        self.tasks[task_id] = {"Id": task_id, "Status": "Not Started", **body, field: value}
        return Reply(201, {"id": task_id, "success": True, "errors": [], "created": True})

    def _query(self, soql: str) -> Reply:
        m = _DUPLICATE_QUERY.match(soql.strip())
        if m is None:
            return self._error(400, "MALFORMED_QUERY", f"unsupported query (fake): {soql}")
        who, subject, limit = _soql_string(m.group(1)), _soql_string(m.group(2)), int(m.group(3))
        matches = [
            t
            for t in reversed(self.tasks.values())
            if t.get("WhoId") == who and t.get("Subject") == subject
        ][:limit]
        records = [
            {
                "attributes": {
                    "type": "Task",
                    "url": f"/services/data/v{self.version}/sobjects/Task/{t['Id']}",
                },
                "Id": t["Id"],
                "Description": t.get("Description"),
            }
            for t in matches
        ]
        return Reply(200, {"totalSize": len(records), "done": True, "records": records})
