"""Inbound hooks (pure): verify a CRM's signed request and read the records its body carries.

Each `verify_*` raises AuthError (401: a header is missing or malformed) or ForbiddenError
(403: the signature does not match, or the timestamp is out of the 5-minute window) naming the
header, and returns the message's replay key: the caller claims it once (JobStore.claim), so a
replayed request starts nothing. Signatures are compared in constant time.

- HubSpot v3: base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), the
  timestamp in milliseconds (X-HubSpot-Request-Timestamp). HubSpot signs the full URL it called,
  query string included, with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded.
- Salesforce (an Apex callout with a shared secret): X-Reel-Signature = hex(HMAC-SHA256(secret,
  f"{X-Reel-Timestamp}.{body}")), the timestamp in seconds.
- Generic: Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature; whsec_ secrets,
  any of several during a key rotation), checked by the `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from chalicelib.errors import AuthError, ForbiddenError, ReelError

TOLERANCE = 300.0  # seconds a signed request stays valid (each scheme's documented window)

HUBSPOT_SIGNATURE = "x-hubspot-signature-v3"
HUBSPOT_TIMESTAMP = "x-hubspot-request-timestamp"
SALESFORCE_SIGNATURE = "x-reel-signature"
SALESFORCE_TIMESTAMP = "x-reel-timestamp"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"

# The header naming a hook's replay key (the `field` of its 409).
REPLAY_FIELDS = {
    "hubspot": HUBSPOT_SIGNATURE,
    "salesforce": SALESFORCE_SIGNATURE,
    "generic": WEBHOOK_ID,
}

# The characters HubSpot decodes in the URI before signing (its request-validation table).
_HUBSPOT_DECODED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)
_DIGITS = re.compile(r"^[0-9]{1,16}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class ReplayedError(ReelError):
    """A signed message already seen: nothing is started the second time."""

    code = "replayed"
    status = 409


class HookConfigError(ReelError):
    """A hook's secret, as configured on this server, is unusable."""

    code = "hook_misconfigured"
    status = 500


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-encoded characters decoded."""
    return _HUBSPOT_DECODED.sub(lambda m: bytes.fromhex(m.group(1)).decode("ascii"), uri)


def _required(value: str | None, header: str) -> str:
    if value is None or not value.strip():
        raise AuthError(f"the {header} header is missing", field=header)
    return value.strip()


def _timestamp(value: str | None, header: str, unit: float, now: float) -> str:
    """The header's timestamp (as sent), refused when over TOLERANCE away from `now`."""
    text = _required(value, header)
    if not _DIGITS.match(text):
        raise AuthError(f"the {header} header is not a whole number", field=header)
    seconds = int(text) / unit
    if abs(now - seconds) > TOLERANCE:
        when = "old" if seconds < now else "far in the future"
        raise ForbiddenError(
            f"the {header} header is too {when} (over {TOLERANCE / 60:g} minutes from now): "
            "the request is refused",
            field=header,
        )
    return text


def verify_hubspot_v3(
    secret: str,
    method: str,
    uri: str | Sequence[str],
    body: bytes,
    timestamp_ms: str | None,
    signature: str | None,
    now: float,
) -> str:
    """Check X-HubSpot-Signature-v3; returns the replay key (the signature).

    `uri` is the full URL HubSpot called (scheme, host, path, query), or several candidates
    when the public URL is ambiguous (behind a proxy): any one signed by the secret passes.
    """
    signature = _required(signature, HUBSPOT_SIGNATURE)
    stamp = _timestamp(timestamp_ms, HUBSPOT_TIMESTAMP, 1000.0, now).encode()
    given = signature.encode()
    uris = [uri] if isinstance(uri, str) else list(uri)
    key = secret.encode("utf-8")
    matched = False
    for candidate in uris:
        source = method.upper().encode() + hubspot_uri(candidate).encode("utf-8") + body + stamp
        expected = base64.b64encode(hmac.new(key, source, hashlib.sha256).digest())
        matched |= hmac.compare_digest(expected, given)  # every candidate, in constant time
    if not matched:
        raise ForbiddenError(
            "the X-HubSpot-Signature-v3 does not match this request (client secret, URL, body "
            "and timestamp)",
            field=HUBSPOT_SIGNATURE,
        )
    return signature


def verify_salesforce(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> str:
    """Check X-Reel-Signature = hex HMAC-SHA256(secret, f"{timestamp}.{body}"); returns the
    replay key (the signature, lower case)."""
    signature = _required(signature, SALESFORCE_SIGNATURE).lower()
    stamp = _timestamp(timestamp, SALESFORCE_TIMESTAMP, 1.0, now).encode()
    if not _HEX64.match(signature):
        raise AuthError(
            "the X-Reel-Signature header is not a hex HMAC-SHA256 (64 hex digits)",
            field=SALESFORCE_SIGNATURE,
        )
    source = stamp + b"." + body
    expected = hmac.new(secret.encode("utf-8"), source, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise ForbiddenError(
            "the X-Reel-Signature does not match this request (secret, timestamp and body)",
            field=SALESFORCE_SIGNATURE,
        )
    return signature


def webhook_secrets(raw: str) -> list[Webhook]:
    """The Standard Webhooks verifiers of a comma-separated list of whsec_ secrets."""
    out = []
    for number, secret in enumerate((s.strip() for s in raw.split(",") if s.strip()), 1):
        try:
            out.append(Webhook(secret))
        except (ValueError, EmptyWebhookSecretError) as exc:  # binascii.Error is a ValueError
            raise HookConfigError(
                f"secret #{number} of REEL_INBOUND_WEBHOOK_SECRETS is not a whsec_ (base64) "
                f"secret: {exc}",
                field="inbound_webhook_secrets",
            ) from None
    return out


def verify_standard(
    secrets: Sequence[Webhook], body: bytes, headers: Mapping[str, str], now: float
) -> str:
    """Check a Standard Webhooks request against any of `secrets`; returns the replay key (the
    webhook-id). The window is checked at `now` here, then by the package (at its own clock)."""
    msg_id = _required(headers.get(WEBHOOK_ID), WEBHOOK_ID)
    signed = {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: _timestamp(headers.get(WEBHOOK_TIMESTAMP), WEBHOOK_TIMESTAMP, 1.0, now),
        WEBHOOK_SIGNATURE: _required(headers.get(WEBHOOK_SIGNATURE), WEBHOOK_SIGNATURE),
    }
    for webhook in secrets:
        try:
            webhook.verify(body, signed, json_parse=False)
        except WebhookVerificationError:
            continue  # another secret of the rotation may match
        except ValueError:  # a signature that is not "v1,<base64>", or a body that is not UTF-8
            raise ForbiddenError(
                "the webhook-signature header is malformed (expected 'v1,<base64>' items)",
                field=WEBHOOK_SIGNATURE,
            ) from None
        return msg_id
    raise ForbiddenError(
        "no webhook-signature matches this request (secret, webhook-id, timestamp and body)",
        field=WEBHOOK_SIGNATURE,
    )


# ── bodies ────────────────────────────────────────────────────────────────────────────────


def _value(prop: Any) -> Any:
    """A HubSpot property: `{"value": …, "versions": […]}` → its value; anything else as is."""
    if isinstance(prop, dict) and "value" in prop:
        return prop["value"]
    return prop


def hubspot_record(obj: dict[str, Any]) -> dict[str, Any]:
    """A HubSpot object as one flat record.

    `{"objectId": 51, "properties": {"firstname": {"value": "Ada"}, "plan": "pro"}}` →
    `{"objectId": 51, "firstname": "Ada", "plan": "pro", "hs_object_id": 51}`: the other
    top-level scalars are kept, the properties win over them, `{"value": …}` objects are
    flattened, and the object's id (objectId, or the legacy vid) is also `hs_object_id`.
    An object without `properties` is itself the record (flattened the same way).
    """
    props = obj.get("properties")
    if not isinstance(props, dict):
        return {k: _value(v) for k, v in obj.items()}
    record: dict[str, Any] = {
        k: v for k, v in obj.items() if k != "properties" and not isinstance(v, dict | list)
    }
    record.update({k: _value(v) for k, v in props.items()})
    object_id = obj.get("objectId", obj.get("vid"))
    if record.get("hs_object_id") in (None, "") and object_id is not None:
        record["hs_object_id"] = object_id
    return record


def salesforce_record(obj: dict[str, Any]) -> dict[str, Any]:
    """A serialized sObject as a record: its `attributes` (type, url) dropped."""
    attributes = obj.get("attributes")
    if isinstance(attributes, dict) and "type" in attributes:
        return {k: v for k, v in obj.items() if k != "attributes"}
    return obj


def is_hubspot_event(obj: Any) -> bool:
    """A webhooks-API subscription event (contact.propertyChange…): it carries no record."""
    return isinstance(obj, dict) and "subscriptionType" in obj and "properties" not in obj
