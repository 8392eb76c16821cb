"""The HubSpot connector: contact properties, timeline events and list memberships over REST."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from chalicelib.connectors import http
from chalicelib.connectors.base import DeliveryFailed, Outgoing

ACTIONS = ("set_property", "timeline_event", "add_to_list")


class HubSpotConnector:
    """Calls HubSpot's CRM API with a private-app (or OAuth) access token.

    The recipient id is either a contact's record id or its email (then `idProperty=email`).
    Actions and their params:

    - `set_property`: `{"properties": {name: value}}` → PATCH the contact.
    - `timeline_event`: `{"event_template_id", "tokens": {…}, "extra_data"?: {…}}` → one timeline
      event whose `id` is the Outgoing's key, so HubSpot keeps one event however many times it
      is sent; `extraData` defaults to the Outgoing's data (event and recipient stats).
    - `add_to_list`: `{"list_id"}` → add the contact to a MANUAL or SNAPSHOT list (adding a
      member twice is a no-op on HubSpot's side).
    """

    name = "hubspot"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.hubapi.com",
        timeout: float = http.DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise ValueError("a HubSpot access token is needed")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self._auth = {"Authorization": f"Bearer {token}"}

    def send(self, out: Outgoing) -> None:
        recipient = out.recipient_id
        if not recipient:
            raise DeliveryFailed(f"hubspot {out.action}: no recipient id", permanent=True)
        if out.action == "set_property":
            self._set_property(out, recipient)
        elif out.action == "timeline_event":
            self._timeline_event(out, recipient)
        elif out.action == "add_to_list":
            self._add_to_list(out, recipient)
        else:
            raise DeliveryFailed(
                f"hubspot: unknown action {out.action!r} (one of {', '.join(ACTIONS)})",
                permanent=True,
            )

    # ── actions ─────────────────────────────────────────────────────────────────────────

    def _set_property(self, out: Outgoing, recipient: str) -> None:
        properties = _param(out, "properties", dict)
        if not properties:
            raise DeliveryFailed("hubspot set_property: params.properties is empty", permanent=True)
        self._call(
            "PATCH",
            f"/crm/v3/objects/contacts/{_seg(recipient)}",
            "hubspot set_property",
            params=_id_property(recipient),
            json={"properties": properties},
        )

    def _timeline_event(self, out: Outgoing, recipient: str) -> None:
        template_id = str(_param(out, "event_template_id", (str, int)))
        tokens = out.params.get("tokens", {})
        if not isinstance(tokens, dict):
            raise DeliveryFailed(
                "hubspot timeline_event: params.tokens is not an object", permanent=True
            )
        event_id = http.wire_id(out.key)
        target = "email" if http.looks_like_email(recipient) else "objectId"
        body: dict[str, Any] = {
            "eventTemplateId": template_id,
            target: recipient,
            "tokens": tokens,
            "id": event_id,
        }
        data = out.model_dump(mode="json")["data"]
        extra = out.params.get("extra_data", data)
        if extra:
            body["extraData"] = extra
        if (occurred := http.occurred_at(data)) is not None:
            body["timestamp"] = http.iso_utc(occurred)  # a retry must not move the event in time
        what = "hubspot timeline_event"
        resp = self._raw("POST", "/integrators/timeline/v3/events", what, json=body)
        conflict = resp.status_code == 409 or (resp.status_code == 400 and "already" in resp.text)
        # Sent before (a retry after a lost answer): done if that event is ours.
        if conflict and self._event_exists(template_id, event_id, target, recipient):
            return
        http.check(resp, what, clock=self.clock)

    def _add_to_list(self, out: Outgoing, recipient: str) -> None:
        list_id = str(_param(out, "list_id", (str, int)))
        what = "hubspot add_to_list"
        record_id = recipient
        if http.looks_like_email(recipient):
            resp = self._call(
                "GET",
                f"/crm/v3/objects/contacts/{_seg(recipient)}",
                f"{what} (contact lookup)",
                params={"idProperty": "email"},
            )
            found = http.json_body(resp, what)
            record_id = str(found.get("id", "")) if isinstance(found, dict) else ""
            if not record_id:
                raise DeliveryFailed(f"{what}: the contact lookup gave no id", status=200)
        resp = self._call(
            "PUT", f"/crm/v3/lists/{_seg(list_id)}/memberships/add", what, json=[record_id]
        )
        result = http.json_body(resp, what)
        missing = result.get("recordIdsMissing", []) if isinstance(result, dict) else []
        if record_id in [str(m) for m in missing]:
            raise DeliveryFailed(f"{what}: contact {record_id} does not exist", permanent=True)

    # ── plumbing ────────────────────────────────────────────────────────────────────────

    def _event_exists(self, template_id: str, event_id: str, target: str, recipient: str) -> bool:
        path = f"/integrators/timeline/v3/events/{_seg(template_id)}/{_seg(event_id)}"
        resp = self._raw("GET", path, "hubspot timeline_event (lookup)")
        if resp.status_code != 200:
            return False
        try:
            event = resp.json()
        except ValueError:
            return False
        value = str(event.get(target, "")) if isinstance(event, dict) else ""
        return value.lower() == recipient.lower() if target == "email" else value == recipient

    def _raw(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(
                method,
                self.base_url + path,
                headers=http.headers({**self._auth, "Accept": "application/json"}),
                timeout=self.timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as err:
            raise http.transport_failure(err, what) from err

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        resp = self._raw(method, path, what, **kwargs)
        http.check(resp, what, clock=self.clock)
        return resp


def _param(out: Outgoing, name: str, kind: type | tuple[type, ...]) -> Any:
    value = out.params.get(name)
    if value is None or value == "" or not isinstance(value, kind) or isinstance(value, bool):
        raise DeliveryFailed(
            f"hubspot {out.action}: params.{name} is missing or invalid", permanent=True
        )
    return value


def _id_property(recipient: str) -> dict[str, str]:
    return {"idProperty": "email"} if http.looks_like_email(recipient) else {}


def _seg(value: str) -> str:
    """One URL path segment: an email's `+` or `/` must not change the path."""
    return quote(value, safe="@")
