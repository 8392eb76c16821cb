"""The Salesforce connector: update a Contact, log a Task, through simple-salesforce."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError, SalesforceRefusedRequest
from simple_salesforce.format import format_soql

from chalicelib.connectors import http
from chalicelib.connectors.base import DeliveryFailed, Outgoing

ACTIONS = ("update_contact", "create_task")
# How far back the duplicate check looks among a recipient's Tasks of the same subject: a
# retry comes within hours, so its first attempt is among the most recent ones.
DUPLICATE_WINDOW = 200


def marker(key: str) -> str:
    """The line ending a Task's Description that names the delivery that created it."""
    return f"[reel:{http.wire_id(key)}]"


class SalesforceConnector:
    """Calls Salesforce's REST API with an access token (session id) of a connected app.

    The recipient id is a Salesforce record id (a Contact, or for a Task a Contact or Lead).
    Actions and their params:

    - `update_contact`: `{"fields": {ApiName: value}}` → `Contact.update(recipient, fields)`.
    - `create_task`: `{"subject", "description"?, "owner_id"?, "status"? ("Not Started"),
      "priority"?, "activity_date"? (YYYY-MM-DD), "fields"?: {ApiName: value}}` → a Task whose
      WhoId is the recipient.

    Task creation is idempotent across retries. With `task_key_field` (the API name of a custom
    External ID text field on Activity, e.g. `Reel_Key__c`) the Task is upserted by that field
    = the delivery's key: atomic, and the recommended setup. Without it the Description ends
    with a marker line `[reel:<key>]`, and before creating, the connector queries the
    recipient's latest Tasks with the same subject (Description is a long text field: SOQL
    cannot filter on it, so the marker is matched here) and creates nothing if one carries the
    marker. That check covers retries, which the relay makes one at a time; two attempts of
    the same delivery running at once could still both create.
    """

    name = "salesforce"

    def __init__(
        self,
        instance_url: str,
        session_id: str,
        *,
        version: str = "59.0",
        session: requests.Session | None = None,
        timeout: float = http.DEFAULT_TIMEOUT,
        task_key_field: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not instance_url.startswith("https://"):
            raise ValueError(f"a Salesforce instance url is https://…: {instance_url!r}")
        if not session_id:
            raise ValueError("a Salesforce access token (session id) is needed")
        self.clock = clock
        self.task_key_field = task_key_field or None
        self._http = _Tap(session or requests.Session(), timeout)
        self.sf = Salesforce(
            instance_url=instance_url, session_id=session_id, version=version, session=self._http
        )

    def send(self, out: Outgoing) -> None:
        if not out.recipient_id:
            raise DeliveryFailed(f"salesforce {out.action}: no recipient id", permanent=True)
        if out.action == "update_contact":
            fields = out.params.get("fields")
            if not isinstance(fields, dict) or not fields:
                raise DeliveryFailed(
                    "salesforce update_contact: params.fields is missing or empty", permanent=True
                )
            self._do(
                "salesforce update_contact",
                self._sobject("Contact").update,
                out.recipient_id,
                fields,
            )
        elif out.action == "create_task":
            self._create_task(out, out.recipient_id)
        else:
            raise DeliveryFailed(
                f"salesforce: unknown action {out.action!r} (one of {', '.join(ACTIONS)})",
                permanent=True,
            )

    def _create_task(self, out: Outgoing, who: str) -> None:
        what = "salesforce create_task"
        p = out.params
        subject = p.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise DeliveryFailed(f"{what}: params.subject is missing", permanent=True)
        extra = p.get("fields", {})
        if not isinstance(extra, dict):
            raise DeliveryFailed(f"{what}: params.fields is not an object", permanent=True)
        task: dict[str, Any] = {
            "WhoId": who,
            "Subject": subject,
            "Status": p.get("status") or "Not Started",
        }
        for param, field in (
            ("owner_id", "OwnerId"),
            ("priority", "Priority"),
            ("activity_date", "ActivityDate"),
        ):
            if p.get(param):
                task[field] = p[param]
        description = str(p.get("description") or "")
        task.update(extra)

        if self.task_key_field:
            task["Description"] = description
            key = f"{self.task_key_field}/{http.wire_id(out.key)}"
            self._do(what, self._sobject("Task").upsert, key, task)
            return

        mark = marker(out.key)
        task["Description"] = f"{description}\n\n{mark}" if description else mark
        soql = (
            format_soql(
                "SELECT Id, Description FROM Task WHERE WhoId = {} AND Subject = {}", who, subject
            )
            + f" ORDER BY CreatedDate DESC LIMIT {DUPLICATE_WINDOW}"
        )
        found = self._do(f"{what} (duplicate check)", self.sf.query, soql)
        records = found.get("records", []) if isinstance(found, dict) else []
        if any(mark in str(r.get("Description") or "") for r in records):
            return  # an earlier attempt created it; its answer was lost
        result = self._do(what, self._sobject("Task").create, task)
        if not (isinstance(result, dict) and result.get("success") is True):
            raise DeliveryFailed(f"{what}: Salesforce answered {result!r}", permanent=True)

    def _sobject(self, name: str) -> SFType:
        sobject = getattr(self.sf, name)
        if not isinstance(sobject, SFType):  # `bulk`/`bulk2` are the only other attributes
            raise TypeError(f"{name} is not an SObject type")
        return sobject

    def _do(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call simple-salesforce; map its exceptions and requests' onto DeliveryFailed."""
        self._http.forget()
        try:
            return fn(*args)
        except SalesforceError as err:
            raise self._failure(err, what) from err
        except requests.RequestException as err:
            raise http.transport_failure(err, what) from err
        except ValueError as err:  # a 2xx whose body is not JSON (a proxy's page, a cut body)
            raise DeliveryFailed(f"{what}: unreadable answer: {err}") from err

    def _failure(self, err: SalesforceError, what: str) -> DeliveryFailed:
        status = int(err.status)
        last = self._http.last()
        retry_after = None
        if last is not None and last.status_code == status:
            retry_after = http.parse_retry_after(last.headers.get("Retry-After"), self.clock())
        detail = f" ({type(err).__name__}: {_content(err)})"
        if isinstance(err, SalesforceRefusedRequest) and "REQUEST_LIMIT_EXCEEDED" in detail:
            # The org's API limit: it frees up over the day, so this one is worth retrying.
            return DeliveryFailed(f"{what}: HTTP 403{detail}", status=403, retry_after=retry_after)
        failure = http.classify(status, what, retry_after=retry_after, detail=detail)
        return failure or DeliveryFailed(f"{what}: {detail}", status=status)


class _Tap(requests.Session):
    """A session that gives every call a timeout (simple-salesforce passes none) and keeps the
    last response of each thread, whose Retry-After simple-salesforce's exceptions drop."""

    def __init__(self, inner: requests.Session, timeout: float) -> None:
        super().__init__()
        self.inner = inner
        self.timeout = timeout
        self._local = threading.local()

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        resp: requests.Response = self.inner.request(method, url, *args, **kwargs)
        self._local.last = resp
        return resp

    def forget(self) -> None:
        self._local.last = None

    def last(self) -> requests.Response | None:
        resp: requests.Response | None = getattr(self._local, "last", None)
        return resp

    def close(self) -> None:
        self.inner.close()
        super().close()


def _content(err: SalesforceError) -> str:
    content = err.content
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    text = " ".join(text.split())
    return text[:300]
