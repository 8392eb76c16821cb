"""The webhook connector: a JSON POST signed per the Standard Webhooks spec."""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from chalicelib.connectors import http
from chalicelib.connectors.base import DeliveryFailed, Outgoing

_ACTION = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


def sign(
    secrets: Sequence[str], msg_id: str, timestamp: float, body: bytes | str
) -> dict[str, str]:
    """The Standard Webhooks headers of one message: webhook-id, webhook-timestamp (whole epoch
    seconds) and webhook-signature, one `v1,…` per secret (several during a key rotation)."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    data = body.decode("utf-8") if isinstance(body, bytes) else body
    when = datetime.fromtimestamp(int(timestamp), UTC)
    signatures = [Webhook(secret).sign(msg_id, when, data) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(signatures),
    }


def payload(out: Outgoing, timestamp: float) -> dict[str, Any]:
    """The body of one delivery: {"type": "reel.<action>", "timestamp", "data"}."""
    dumped = out.model_dump(mode="json")
    return {
        "type": f"reel.{out.action}",
        "timestamp": http.iso_utc(timestamp),
        "data": {
            **dumped["data"],
            "campaign_id": out.campaign_id,
            "recipient_id": out.recipient_id,
            "params": dumped["params"],
        },
    }


class WebhookConnector:
    """POSTs each Outgoing to one URL, signed with every configured secret.

    `webhook-id` is the Outgoing's key (a digest of it if it is not a plain short token), so a
    receiver drops retried duplicates. The body's `timestamp` is when the event was received
    (`data.event.received_at`), so that retries carry the same body, else the attempt's time;
    the `webhook-timestamp` header is always the attempt's own time, as the spec wants."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secrets: list[str],
        *,
        timeout: float = http.DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"webhook url must be http(s): {url!r}")
        if not secrets:
            raise ValueError("a webhook needs at least one secret (whsec_…)")
        for i, secret in enumerate(secrets):
            try:
                Webhook(secret)
            except (EmptyWebhookSecretError, binascii.Error, ValueError) as err:
                raise ValueError(f"webhook secret #{i} is not a whsec_ base64 key") from err
        self.url = url
        self.secrets = list(secrets)
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock

    def send(self, out: Outgoing) -> None:
        if not _ACTION.match(out.action):
            raise DeliveryFailed(
                f"webhook: action {out.action!r} is not a dotted name (e.g. render.completed)",
                permanent=True,
            )
        now = self.clock()
        body = json.dumps(
            payload(out, http.occurred_at(out.model_dump(mode="json")["data"]) or now),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        signed = sign(self.secrets, http.wire_id(out.key), now, body)
        http.call(
            self.session,
            "POST",
            self.url,
            "webhook POST",
            timeout=self.timeout,
            clock=self.clock,
            data=body,
            headers=http.headers({"Content-Type": "application/json", **signed}),
        )
