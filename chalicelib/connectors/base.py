"""What every connector receives and how it says a delivery failed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from chalicelib.template.model import Strict


class Outgoing(Strict):
    """One call to make to one connector: an action of a rule, for one event (or a completion
    notice). `key` is stable across retries: receivers use it to drop duplicates."""

    key: str = Field(description="idempotency key: the same for every attempt of this delivery")
    connector: str
    action: str
    campaign_id: str
    recipient_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="the rule action's params")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="what happened: {'event': …, 'recipient': stats} or a completion notice",
    )


class DeliveryFailed(Exception):
    """A connector could not deliver. `permanent`: retrying cannot help (a 4xx); `gone`: the
    endpoint says it is gone for good (HTTP 410: disable it); `retry_after`: seconds the other
    side asked us to wait (Retry-After)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent or status == 410

    @property
    def gone(self) -> bool:
        return self.status == 410


class Connector(Protocol):
    """Sends one Outgoing; returns on success, raises DeliveryFailed otherwise."""

    name: str

    def send(self, out: Outgoing) -> None: ...


class DeliveryStatus(StrEnum):
    pending = "pending"  # to be (re)tried at `next_at`
    delivered = "delivered"
    failed = "failed"  # dead-lettered: permanent error, or out of attempts
    disabled = "disabled"  # its connector's endpoint said 410 Gone


class Delivery(Strict):
    """An Outgoing and its delivery state (kept by a DeliveryStore)."""

    out: Outgoing
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: int = 0
    next_at: float
    last_error: str | None = None
    created_at: float
    updated_at: float

    @property
    def key(self) -> str:
        return self.out.key
