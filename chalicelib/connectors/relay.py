"""The relay: queued messages (player events, completion notices) become deliveries to the
connectors, by the campaign's rules, and are delivered at least once.

- Planning is deterministic: a delivery's key is a hash of the event (or the job) and the rule
  action, so a message relayed twice makes the same deliveries, stored once, and a receiver
  sees one idempotency key however many attempts it takes.
- A failed attempt is retried with exponential backoff and full jitter (the delay is drawn in
  [0, min(cap, base·2^attempt)]), never sooner than the other side's Retry-After. A 410 Gone
  disables the connector; a permanent error, or the last attempt, dead-letters the delivery
  (status `failed`), where `reel deliveries` and `GET /deliveries` show it until redelivered.
- Time comes from an injectable clock: tests replay an outage without sleeping.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.backends import Backends
from chalicelib.connectors.base import Connector, Delivery, DeliveryFailed, DeliveryStatus, Outgoing
from chalicelib.connectors.rules import CampaignRules, find_rules, matching
from chalicelib.errors import NotFoundError
from chalicelib.services import templates
from chalicelib.template.experiments import assigned
from chalicelib.tracking.analytics import recipient_stats
from chalicelib.tracking.consent import consenting
from chalicelib.tracking.events import Event

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = 2.0  # seconds
BACKOFF_CAP = 3600.0


def backoff(attempt: int, rng: random.Random, base: float = BACKOFF_BASE) -> float:
    """Full jitter: a delay drawn in [0, min(cap, base·2^attempt)] (attempt counts from 0)."""
    return rng.uniform(0, min(BACKOFF_CAP, base * 2**attempt))


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class Relay:
    b: Backends
    connectors: Mapping[str, Connector]
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    max_attempts: int = MAX_ATTEMPTS
    _rules: dict[tuple[str, str], CampaignRules] = field(default_factory=dict)

    # ── planning ───────────────────────────────────────────────────────────────────────

    def plan(self, message: Mapping[str, Any]) -> list[Outgoing]:
        """The deliveries a queued message asks for (none when no rule matches)."""
        kind = message.get("type")
        if kind == "event":
            return self._for_event(Event.model_validate(message["event"]))
        if kind == "completion":
            return self._for_completion(message)
        if kind == "redeliver":  # an operator put a stored delivery back in line
            return []
        raise ValueError(f"unknown relay message type {kind!r}")

    def rules(self, campaign_id: str) -> CampaignRules:
        """The campaign's rules: rules.yaml in its latest registered bundle."""
        try:
            template = templates.get_template(self.b, campaign_id)
        except NotFoundError:
            return CampaignRules()
        cached = self._rules.get((template.id, template.version))
        if cached is None:
            root = templates.materialize(self.b, template).root
            cached = self._rules[(template.id, template.version)] = find_rules(root)
        return cached

    def _for_event(self, event: Event) -> list[Outgoing]:
        if event.anonymous:
            return []  # nobody's: ingest never queues one, and none may reach a CRM
        # Whose behaviour may leave: a recipient we hold a record of (an erased one is gone, and
        # an event of theirs still in flight is dropped, not stored again), who consents now.
        known = self.b.recipients.get_recipient(event.campaign_id, event.recipient_id)
        if known is None or not self._consents(event.campaign_id, known.consent):
            return []
        self.b.events.add([event])  # ingest queues before it stores: make sure it is kept
        rules = self.rules(event.campaign_id)
        if not rules.rules:
            return []
        mine = self.b.events.for_recipient(event.campaign_id, event.recipient_id)
        page = self.b.recipients.get_page(known.token)
        stats = recipient_stats(event.recipient_id, mine or [event], page.duration if page else 0)
        data = {"event": event.model_dump(mode="json"), "recipient": stats.model_dump(mode="json")}
        if variants := assigned(known.data):  # the experiments' variants this recipient saw
            data["experiments"] = variants
        context = {**data, "recipient_id": event.recipient_id, "campaign_id": event.campaign_id}
        return [
            Outgoing(
                key=_key(event.key, rule.id, str(index)),
                connector=action.connector,
                action=action.action,
                campaign_id=event.campaign_id,
                recipient_id=event.recipient_id,
                params=action.params,
                data=data,
            )
            for rule, index, action in matching(rules, context)
        ]

    def _consents(self, campaign_id: str, answer: bool | None) -> bool:
        try:
            template = templates.get_template(self.b, campaign_id)
        except NotFoundError:
            return False
        return consenting(templates.materialize(self.b, template).template, answer)

    def _for_completion(self, message: Mapping[str, Any]) -> list[Outgoing]:
        if "webhook" not in self.connectors:
            return []
        what = str(message["kind"])
        return [
            Outgoing(
                key=_key("completion", what, str(message["id"])),
                connector="webhook",
                action=f"{what}.completed",
                campaign_id=str(message["campaign_id"]),
                recipient_id=message.get("recipient_id"),
                data=dict(message),
            )
        ]

    def accept(self, messages: list[Mapping[str, Any]]) -> list[str]:
        """Plan messages into stored deliveries; returns their keys (new or not)."""
        outgoing = [out for message in messages for out in self.plan(message)]
        self.b.deliveries.add(outgoing, self.clock())
        again = [str(m["key"]) for m in messages if m.get("type") == "redeliver"]
        return [out.key for out in outgoing] + again

    # ── delivering ─────────────────────────────────────────────────────────────────────

    def attempt(self, delivery: Delivery) -> Delivery:
        """One attempt at a pending delivery; its new state is saved and returned."""
        now = self.clock()
        name = delivery.out.connector
        update: dict[str, Any] = {"updated_at": now}
        disabled = self.b.deliveries.disabled()
        connector = self.connectors.get(name)
        if name in disabled:
            update |= {"status": DeliveryStatus.disabled, "last_error": disabled[name]}
        elif connector is None:
            update |= {"status": DeliveryStatus.failed, "last_error": f"{name}: not configured"}
        else:
            attempts = delivery.attempts + 1
            update["attempts"] = attempts
            try:
                connector.send(delivery.out)
            except DeliveryFailed as exc:
                update["last_error"] = str(exc)[:2000]
                if exc.gone:
                    reason = f"{name} answered 410 Gone: {exc}"
                    self.b.deliveries.disable(name, reason[:2000])
                    update["status"] = DeliveryStatus.disabled
                elif exc.permanent or attempts >= self.max_attempts:
                    update["status"] = DeliveryStatus.failed
                else:
                    wait = max(exc.retry_after or 0.0, backoff(attempts - 1, self.rng))
                    update["next_at"] = now + wait
            else:
                update |= {"status": DeliveryStatus.delivered, "last_error": None}
        done = delivery.model_copy(update=update)
        self.b.deliveries.save(done)
        return done

    def run_due(self, limit: int = 100) -> list[Delivery]:
        """Attempt every delivery whose time has come."""
        return [self.attempt(d) for d in self.b.deliveries.due(self.clock(), limit)]

    def redeliver(self, key: str) -> Delivery:
        """Put a dead-lettered (or disabled) delivery back in line, due now; a disabled
        connector is enabled again (the operator fixed its endpoint)."""
        delivery = self.b.deliveries.get(key)
        if delivery is None:
            raise NotFoundError(f"no delivery {key!r}", field="delivery_id")
        if delivery.status is DeliveryStatus.disabled:
            self.b.deliveries.enable(delivery.out.connector)
        now = self.clock()
        again = delivery.model_copy(
            update={
                "status": DeliveryStatus.pending,
                "attempts": 0,
                "next_at": now,
                "last_error": None,
                "updated_at": now,
            }
        )
        self.b.deliveries.save(again)
        # Through the queue, so that whatever drains it (the SQS Lambda on AWS) attempts it.
        self.b.queue.put([{"type": "redeliver", "key": key}])
        return again


class RelayWorker(threading.Thread):
    """The local backend's relay: drains the SQLite outbox into deliveries and delivers what is
    due, every `interval` seconds, until stopped. A message is acknowledged only once its
    deliveries are stored, so a crash loses nothing."""

    def __init__(self, relay: Relay, outbox: Any, interval: float = 1.0) -> None:
        super().__init__(name="reel-relay", daemon=True)
        self.relay = relay
        self.outbox = outbox  # SqliteOutbox: take / ack
        self.interval = interval
        self.stopped = threading.Event()

    def step(self) -> None:
        while taken := self.outbox.take(100):
            ids = []
            for message_id, message in taken:
                try:
                    self.relay.accept([message])
                except (ValueError, KeyError) as exc:  # malformed: dropped, and said so
                    # The type only: the error's text may quote the message's values.
                    log.error("relay: dropping message %s: %s", message_id, type(exc).__name__)
                ids.append(message_id)
            self.outbox.ack(ids)
        self.relay.run_due()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.step()
            except Exception:  # an entry point: log, and try again next round
                log.exception("relay step failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
