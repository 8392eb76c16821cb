"""Completion notices: queued for the relay, which sends them as signed webhooks."""

from __future__ import annotations

from typing import Any

from chalicelib.backends import Backends


def notify_completion(
    b: Backends,
    kind: str,
    job_id: str,
    campaign_id: str,
    status: str,
    recipient: str | None = None,
    **details: Any,
) -> None:
    """Queue the completion notice of a render or a batch (the relay sends it as a signed
    webhook when one is configured)."""
    message: dict[str, Any] = {"type": "completion", "kind": kind, "id": job_id}
    message |= {"campaign_id": campaign_id, "status": status, "recipient_id": recipient}
    b.queue.put([message | details])
