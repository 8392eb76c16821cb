"""JobStore and EventStore on DynamoDB: conditional writes, first-write-wins, live counters.

The table (created by the CDK stack in infra/) has exactly this key schema, nothing else:

    partition key `pk` (S), sort key `sk` (S); no indexes; billing as you like.

Items (every record's pydantic JSON sits in `doc`; other attributes exist for conditions):

    pk                  sk                   attributes
    template#{id}       v#{version}          doc, created_at (N)
    template#{id}       latest               doc, created_at (N)   a copy of the latest version
    render#{id}         job                  doc, state, rev (N)
    batch#{id}          job                  doc, state, rev (N), n_{status} (N) per Status
    batch#{id}          result#{index:010d}  doc, status, idx (N)
    page#{token}        page                 doc
    campaign#{id}       recipient#{rid}      doc, token   the recipient's current page (a copy)
    campaign#{id}       data#{rid}           doc          the recipient's current record
    delivery#{key}      delivery             doc, status, next_at (N), updated_at (N)
    deliveries#{status} {updated_at}#{key}   doc   a copy: by_status, newest first
    deliveries#due      {next_at}#{key}      doc   a copy, pending deliveries only: due()
    connectors          disabled#{name}      connector, reason, at (N)   a disabled connector

`rev` counts the writes of a job: `set_state` reads the item and writes it back on the
condition that `rev` is unchanged (optimistic concurrency), so a merge never loses a concurrent
writer's fields. `n_rendered`/`n_cached`/`n_failed` are added to in the same transaction that
puts a result, so `count_results` is one GetItem however large the batch.

`put_page` writes the page and its campaign's pointer in one transaction (the page on the
condition that its token is new), so the pointer always names a stored page and the last page
put for a recipient is its current one; `campaign_pages` is then one paginated Query of the
campaign's partition, in recipient id order, with no GetItem per recipient.

Differences from SqliteJobStore: result indexes must lie in 0..9_999_999_999 (ValueError
otherwise: they are zero-padded in `sk`); `campaign_pages` is in recipient id order (SQLite: the
order in which the current pages were put); a claim's `expires_at` is rounded up to a whole
second (the TTL attribute's unit).

A write that loses a race to another writer (a failed `rev` condition, a TransactionConflict)
reads again and is retried a few times, after a short random wait (`retry.Retry` with jitter);
then it fails with RuntimeError. Queries follow LastEvaluatedKey through boto3's paginator.

DynamoDeliveryStore keeps the relay's deliveries in the same table. Times in index sort keys
are zero-padded (`{t:020.6f}`, epoch seconds >= 0), so one Query of an index partition, forward
or backward, with a Limit, answers `due` (sk below `now`) and `by_status` — never a Scan. Every
write of a delivery is one transaction with its index items: `add` puts the delivery on the
condition that it is new (first write wins) with its index items; `save` reads the delivery,
then deletes the index items of the state it read and puts those of the new state, on the
condition that `status`, `next_at` and `updated_at` are still what it read (else it reads
again). `by_status(None)` merges the newest `limit` of each status. Disabled connectors share
one partition, so `disabled()` (asked before every attempt) is one Query. The `deliveries#…`
partitions are hot keys by design (DynamoDB writes about a thousand items a second to one
partition: far above a relay's volume). Difference from SqliteDeliveryStore: times must lie in
0..1e13 (ValueError otherwise).

DynamoEventStore uses a table of its own (the `Events` table of infra/), with exactly this key
schema: partition key `pk` (S), sort key `sk` (S); no indexes. One item per event:

    pk                  sk                    attributes
    campaign#{id}       {recipient_id}/{id}   doc (the Event's JSON), expires_at (N, the TTL)

An anonymous event's recipient id is empty (sk `/{id}`). With `ttl_days`, each event carries
`expires_at` (epoch seconds): the table's TTL removes it after the campaigns' retention.

`pk` + `sk` is what makes `Event.key` unique (an event id has no '/'), and each event is put on
the condition that its item does not exist, so a duplicate is stored once however many writers
race; `for_campaign` is one paginated Query of the campaign's partition.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.adapters.records import job_model, merge_state
from chalicelib.adapters.retry import GaveUp, Retry
from chalicelib.connectors.base import Delivery, DeliveryStatus, Outgoing
from chalicelib.landing.pages import Page
from chalicelib.pipeline.jobs import (
    BatchRecord,
    JobState,
    RecipientData,
    RecipientResult,
    RenderRecord,
    Status,
    TemplateRecord,
)
from chalicelib.tracking.events import Event

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, PaginatorConfigTypeDef

T = TypeVar("T")
_JOB = "job"
_LATEST = "latest"
_MAX_INDEX = 9_999_999_999
_PAGE = "page"
# Racing writers of one item: a few tries, each after a random wait of up to 10, 20, 40… ms.
_RACE = Retry(attempts=10, base=0.01, cap=0.1, jitter=True)
_SHORT_RACE = Retry(attempts=5, base=0.01, cap=0.1, jitter=True)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _result_sk(index: int) -> str:
    return f"result#{index:010d}"


def _counter(status: str) -> str:
    return f"n_{status}"


def _reasons(exc: ClientError) -> list[str]:
    """The cancellation reasons of a TransactionCanceledException, one per item."""
    return [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]


class _Lost(Exception):
    """Another writer got in between our read and our write: read again and recheck."""


def _until_won(retry: Retry, what: str, attempt: Callable[[], T]) -> T:
    """`attempt()`'s result, tried again (after `retry`'s wait) each time it raises _Lost;
    RuntimeError when it lost every time."""
    try:
        return retry.run(attempt, errors=(_Lost,), transient=lambda _: True)
    except GaveUp as failed:
        raise RuntimeError(f"{what}: {failed.attempts} conflicting writes in a row") from None


def _query(
    client: DynamoDBClient, *, limit: int | None = None, **query: Any
) -> list[dict[str, AttributeValueTypeDef]]:
    """The items a Query matches (the first `limit` of them, if given), page after page:
    DynamoDB stops a page at 1 MB, and boto3's paginator follows LastEvaluatedKey."""
    config: PaginatorConfigTypeDef = {} if limit is None else {"MaxItems": limit, "PageSize": limit}
    pages = client.get_paginator("query").paginate(**query, PaginationConfig=config)
    return [item for page in pages for item in page["Items"]]


class DynamoJobStore:
    """Templates, renders, batches and results in `table` (see the module docstring)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _get_item(self, pk: str, sk: str) -> dict[str, AttributeValueTypeDef] | None:
        response = self.client.get_item(
            TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True
        )
        return response.get("Item")

    # ── templates ──────────────────────────────────────────────────────────────────────

    def put_template(self, record: TemplateRecord) -> None:
        pk = f"template#{record.id}"
        doc = record.model_dump_json()
        created = repr(float(record.created_at))
        self.client.put_item(
            TableName=self.table,
            Item={
                **self._key(pk, f"v#{record.version}"),
                "doc": {"S": doc},
                "created_at": {"N": created},
            },
        )
        # Like SqliteJobStore, the latest is the newest `created_at` (ties: the last written),
        # so an older version stored late does not take the pointer.
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**self._key(pk, _LATEST), "doc": {"S": doc}, "created_at": {"N": created}},
                ConditionExpression="attribute_not_exists(pk) OR created_at <= :c",
                ExpressionAttributeValues={":c": {"N": created}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    def get_template(self, template_id: str, version: str | None = None) -> TemplateRecord | None:
        sk = _LATEST if version is None else f"v#{version}"
        item = self._get_item(f"template#{template_id}", sk)
        return TemplateRecord.model_validate_json(item["doc"]["S"]) if item else None

    # ── renders and batches ────────────────────────────────────────────────────────────

    def _create(self, kind: str, job_id: str, state: JobState, doc: str) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(f"{kind}#{job_id}", _JOB),
                    "doc": {"S": doc},
                    "state": {"S": str(state)},
                    "rev": {"N": "0"},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ValueError(f"{kind} {job_id} exists") from None
            raise

    def _get_doc(self, kind: str, job_id: str) -> str | None:
        item = self._get_item(f"{kind}#{job_id}", _JOB)
        return item["doc"]["S"] if item else None

    def create_render(self, record: RenderRecord) -> None:
        self._create("render", record.id, record.state, record.model_dump_json())

    def get_render(self, render_id: str) -> RenderRecord | None:
        doc = self._get_doc("render", render_id)
        return RenderRecord.model_validate_json(doc) if doc else None

    def create_batch(self, record: BatchRecord) -> None:
        self._create("batch", record.id, record.state, record.model_dump_json())

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        doc = self._get_doc("batch", batch_id)
        return BatchRecord.model_validate_json(doc) if doc else None

    def set_state(
        self,
        kind: str,
        job_id: str,
        state: JobState,
        *,
        expect: tuple[JobState, ...],
        **fields: Any,
    ) -> bool:
        model = job_model(kind)
        pk = f"{kind}#{job_id}"

        def attempt() -> bool:
            item = self._get_item(pk, _JOB)
            if item is None or item["state"]["S"] not in expect:
                return False
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=self._key(pk, _JOB),
                    UpdateExpression="SET doc = :doc, #state = :state, rev = :next",
                    ConditionExpression="rev = :rev",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={
                        ":doc": {"S": merge_state(model, item["doc"]["S"], state, fields)},
                        ":state": {"S": str(state)},
                        ":rev": item["rev"],
                        ":next": {"N": str(int(item["rev"]["N"]) + 1)},
                    },
                )
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    raise _Lost from exc
                raise
            return True

        return _until_won(_RACE, f"{kind} {job_id}", attempt)

    # ── batch results ──────────────────────────────────────────────────────────────────

    def put_result(self, batch_id: str, index: int, result: RecipientResult) -> bool:
        if not 0 <= index <= _MAX_INDEX:
            raise ValueError(f"result index out of range: {index}")
        pk = f"batch#{batch_id}"
        status = str(result.status)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **self._key(pk, _result_sk(index)),
                                "doc": {"S": result.model_dump_json()},
                                "status": {"S": status},
                                "idx": {"N": str(index)},
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(pk, _JOB),
                            "UpdateExpression": "ADD #n :one",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeNames": {"#n": _counter(status)},
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons = _reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # the result exists: first write wins, the counter is untouched
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise KeyError(f"no batch {batch_id!r}") from None
            raise
        return True

    def list_results(
        self, batch_id: str, *, after: int = -1, limit: int = 100
    ) -> list[tuple[int, RecipientResult]]:
        first = max(after + 1, 0)
        if limit <= 0 or first > _MAX_INDEX:
            return []
        items = _query(
            self.client,
            limit=limit,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": {"S": f"batch#{batch_id}"},
                ":lo": {"S": _result_sk(first)},
                ":hi": {"S": _result_sk(_MAX_INDEX)},
            },
            ProjectionExpression="idx, doc",
            ConsistentRead=True,
            ScanIndexForward=True,
        )
        return [
            (int(item["idx"]["N"]), RecipientResult.model_validate_json(item["doc"]["S"]))
            for item in items
        ]

    def count_results(self, batch_id: str) -> dict[str, int]:
        names = {f"#{s.value}": _counter(s.value) for s in Status}
        response = self.client.get_item(
            TableName=self.table,
            Key=self._key(f"batch#{batch_id}", _JOB),
            ConsistentRead=True,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
        )
        item = response.get("Item", {})
        return {s.value: int(item.get(_counter(s.value), {}).get("N", "0")) for s in Status}

    # ── landing pages ──────────────────────────────────────────────────────────────────

    def put_page(self, page: Page) -> None:
        # Another page of the same recipient being put at once: ours goes in after it.
        _until_won(_SHORT_RACE, f"page {page.token}", lambda: self._put_page(page))

    def _put_page(self, page: Page) -> None:
        """Put the page and its pointer; _Lost if the transaction lost a conflict."""
        doc: AttributeValueTypeDef = {"S": page.model_dump_json()}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {**self._key(f"page#{page.token}", _PAGE), "doc": doc},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **self._key(
                                    f"campaign#{page.campaign_id}", f"recipient#{page.recipient_id}"
                                ),
                                "doc": doc,
                                "token": {"S": page.token},
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons = _reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise ValueError(f"page {page.token} exists") from None
            if "TransactionConflict" in reasons:
                raise _Lost from exc
            raise

    def get_page(self, token: str) -> Page | None:
        item = self._get_item(f"page#{token}", _PAGE)
        return Page.model_validate_json(item["doc"]["S"]) if item else None

    def campaign_pages(self, campaign_id: str) -> list[Page]:
        items = _query(
            self.client,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :recipient)",
            ExpressionAttributeValues={
                ":pk": {"S": f"campaign#{campaign_id}"},
                ":recipient": {"S": "recipient#"},
            },
            ProjectionExpression="doc",
            ConsistentRead=True,
        )
        return [Page.model_validate_json(item["doc"]["S"]) for item in items]

    # Recipients' current records: pk=campaign#{campaign_id}, sk=data#{recipient_id}.
    def put_recipient(self, record: RecipientData) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                **self._key(f"campaign#{record.campaign_id}", f"data#{record.recipient_id}"),
                "doc": {"S": record.model_dump_json()},
            },
        )

    def get_recipient(self, campaign_id: str, recipient_id: str) -> RecipientData | None:
        item = self._get_item(f"campaign#{campaign_id}", f"data#{recipient_id}")
        return RecipientData.model_validate_json(item["doc"]["S"]) if item else None

    # ── privacy: erasure, export, retention (rare: a Scan where no key leads there) ─────

    def _scan(self, expression: str, values: dict[str, AttributeValueTypeDef]) -> list[Any]:
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression=expression,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
        return [item for page in pages for item in page["Items"]]

    def _pages_of(self, campaign_id: str | None, recipient_id: str) -> list[Page]:
        items = self._scan("begins_with(pk, :page) AND sk = :sk", {
            ":page": {"S": "page#"}, ":sk": {"S": _PAGE},
        })  # fmt: skip
        pages = [Page.model_validate_json(item["doc"]["S"]) for item in items]
        return sorted(
            (
                p
                for p in pages
                if p.recipient_id == recipient_id and campaign_id in (None, p.campaign_id)
            ),
            key=lambda p: p.created_at,
        )

    def recipient_campaigns(self, recipient_id: str) -> list[str]:
        items = self._scan("begins_with(pk, :c) AND sk = :sk", {
            ":c": {"S": "campaign#"}, ":sk": {"S": f"data#{recipient_id}"},
        })  # fmt: skip
        found = {item["pk"]["S"].removeprefix("campaign#") for item in items}
        found |= {p.campaign_id for p in self._pages_of(None, recipient_id)}
        return sorted(found)

    def recipient_pages(self, campaign_id: str, recipient_id: str) -> list[Page]:
        return self._pages_of(campaign_id, recipient_id)

    def erase_recipient(self, campaign_id: str, recipient_id: str) -> list[str]:
        tokens = [p.token for p in self._pages_of(campaign_id, recipient_id)]
        for token in tokens:
            self.client.put_item(
                TableName=self.table,
                Item={**self._key(f"erased#{token}", _PAGE), "at": {"N": repr(time.time())}},
            )
            self.client.delete_item(TableName=self.table, Key=self._key(f"page#{token}", _PAGE))
        for sk in (f"recipient#{recipient_id}", f"data#{recipient_id}"):
            self.client.delete_item(
                TableName=self.table, Key=self._key(f"campaign#{campaign_id}", sk)
            )
        return tokens

    def erased(self, token: str) -> bool:
        return self._get_item(f"erased#{token}", _PAGE) is not None

    def stale_recipients(self, campaign_id: str, before: float) -> list[str]:
        items = _query(
            self.client,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :data)",
            ExpressionAttributeValues={
                ":pk": {"S": f"campaign#{campaign_id}"},
                ":data": {"S": "data#"},
            },
            ConsistentRead=True,
        )
        records = [RecipientData.model_validate_json(item["doc"]["S"]) for item in items]
        return [r.recipient_id for r in records if r.updated_at < before]

    def template_ids(self) -> list[str]:
        items = self._scan("begins_with(pk, :t) AND sk = :sk", {
            ":t": {"S": "template#"}, ":sk": {"S": _LATEST},
        })  # fmt: skip
        return sorted(item["pk"]["S"].removeprefix("template#") for item in items)

    def _jobs(self, kind: str) -> list[str]:
        items = self._scan("begins_with(pk, :k) AND sk = :sk", {
            ":k": {"S": f"{kind}#"}, ":sk": {"S": _JOB},
        })  # fmt: skip
        return [item["doc"]["S"] for item in items]

    def batches_of(self, template_id: str) -> list[BatchRecord]:
        found = [BatchRecord.model_validate_json(doc) for doc in self._jobs("batch")]
        return [b for b in found if b.template_id == template_id]

    def renders_of(self, template_id: str) -> list[RenderRecord]:
        found = [RenderRecord.model_validate_json(doc) for doc in self._jobs("render")]
        return [r for r in found if r.template_id == template_id]

    def delete_render(self, render_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(f"render#{render_id}", _JOB))

    def scrub_results(self, batch_id: str, recipient_id: str) -> int:
        changed = 0
        after = -1
        while page := self.list_results(batch_id, after=after, limit=500):
            for index, result in page:
                if result.recipient_id == recipient_id:
                    blank = RecipientResult(
                        recipient_id="(erased)", line=result.line, status=result.status
                    )
                    self.client.update_item(
                        TableName=self.table,
                        Key=self._key(f"batch#{batch_id}", _result_sk(index)),
                        UpdateExpression="SET doc = :doc",
                        ExpressionAttributeValues={":doc": {"S": blank.model_dump_json()}},
                    )
                    changed += 1
            after = page[-1][0]
        return changed

    # ── claims (replay protection of inbound hooks) ────────────────────────────────────

    def claim(self, key: str, expires_at: float) -> bool:
        """One item `pk=claim#{key}`, `sk=claim`, put on the condition that it is new or has
        expired; `expires_at` (N, whole epoch seconds) can be the table's TTL attribute. TTL
        deletes lazily (within days), hence the condition rather than relying on it."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(f"claim#{key}", "claim"),
                    "expires_at": {"N": str(math.ceil(expires_at))},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": str(math.floor(time.time()))}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


class DynamoEventStore:
    """The player's events in `table`, one item per `Event.key` (see the module docstring)."""

    def __init__(self, client: DynamoDBClient, table: str, *, ttl_days: int | None = None) -> None:
        self.client = client
        self.table = table
        self.ttl_days = ttl_days  # retention: the table's TTL attribute `expires_at`

    def _expires(self, event: Event) -> dict[str, AttributeValueTypeDef]:
        if self.ttl_days is None:
            return {}
        return {"expires_at": {"N": str(math.ceil(event.received_at + self.ttl_days * 86_400))}}

    def add(self, events: list[Event]) -> list[Event]:
        # One conditional PutItem per event: BatchWriteItem cannot be conditional, and a
        # cancelled transaction would have to be replayed without its duplicates.
        stored = []
        for event in events:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": f"campaign#{event.campaign_id}"},
                        "sk": {"S": f"{event.recipient_id}/{event.id}"},
                        "doc": {"S": event.model_dump_json()},
                        **self._expires(event),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                continue  # seen before (or earlier in this list): stored once already
            stored.append(event)
        return stored

    def for_campaign(self, campaign_id: str) -> list[Event]:
        items = _query(
            self.client,
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"campaign#{campaign_id}"}},
            ProjectionExpression="doc",
            ConsistentRead=True,
        )
        return [Event.model_validate_json(item["doc"]["S"]) for item in items]

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Event]:
        items = _query(
            self.client,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :rid)",
            ExpressionAttributeValues={
                ":pk": {"S": f"campaign#{campaign_id}"},
                ":rid": {"S": f"{recipient_id}/"},
            },
            ProjectionExpression="doc",
            ConsistentRead=True,
        )
        events = [Event.model_validate_json(item["doc"]["S"]) for item in items]
        # (a recipient id may hold "/": "ada/x"'s events also begin with "ada/")
        return [e for e in events if e.recipient_id == recipient_id]

    def _delete(self, events: list[Event]) -> int:
        for event in events:
            self.client.delete_item(
                TableName=self.table,
                Key={
                    "pk": {"S": f"campaign#{event.campaign_id}"},
                    "sk": {"S": f"{event.recipient_id}/{event.id}"},
                },
            )
        return len(events)

    def delete_recipient(self, campaign_id: str, recipient_id: str) -> int:
        return self._delete(self.for_recipient(campaign_id, recipient_id))

    def delete_before(self, campaign_id: str, before: float) -> int:
        # The table's TTL (`expires_at`, set by the stack) does this on its own within days;
        # the sweep makes it exact.
        old = [e for e in self.for_campaign(campaign_id) if e.received_at < before]
        return self._delete(old)


# ── the relay's deliveries ─────────────────────────────────────────────────────────────────

_DELIVERY = "delivery"
_DUE = "deliveries#due"
_CONNECTORS = "connectors"


def _at(t: float) -> str:
    """A time (epoch seconds, >= 0) as a sort key: zero-padded, so text order is time order."""
    if not 0 <= t < 1e13:
        raise ValueError(f"time out of range for a delivery index: {t!r}")
    return f"{t:020.6f}"


def _index(key: str, status: str, next_at: float, updated_at: float) -> dict[tuple[str, str], str]:
    """The index items of a delivery in this state: (pk, sk) → what they order by."""
    found = {(f"deliveries#{status}", f"{_at(updated_at)}#{key}"): "updated_at"}
    if status == DeliveryStatus.pending:
        found[(_DUE, f"{_at(next_at)}#{key}")] = "next_at"
    return found


class DynamoDeliveryStore:
    """The relay's deliveries in the jobs `table`, with their index items (module docstring)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _index_puts(self, delivery: Delivery, doc: str) -> list[Any]:
        index = _index(delivery.key, delivery.status, delivery.next_at, delivery.updated_at)
        return [
            {"Put": {"TableName": self.table, "Item": {**self._key(pk, sk), "doc": {"S": doc}}}}
            for pk, sk in index
        ]

    def _item(self, delivery: Delivery, doc: str) -> dict[str, AttributeValueTypeDef]:
        return {
            **self._key(f"delivery#{delivery.key}", _DELIVERY),
            "status": {"S": str(delivery.status)},
            "next_at": {"N": repr(float(delivery.next_at))},
            "updated_at": {"N": repr(float(delivery.updated_at))},
            "doc": {"S": doc},
        }

    def add(self, outgoing: list[Outgoing], now: float) -> int:
        added = 0
        for out in outgoing:
            d = Delivery(out=out, next_at=now, created_at=now, updated_at=now)
            if self._add(d):
                added += 1
        return added

    def _add(self, d: Delivery) -> bool:
        """Put a new delivery and its index items in one transaction; False if it exists."""
        doc = d.model_dump_json()
        put: Any = {
            "Put": {
                "TableName": self.table,
                "Item": self._item(d, doc),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

        def attempt() -> bool:
            try:
                self.client.transact_write_items(TransactItems=[put, *self._index_puts(d, doc)])
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = _reasons(exc)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False  # first write wins
                if "TransactionConflict" in reasons:
                    raise _Lost from exc  # the same delivery being added: the retry sees it
                raise
            return True

        return _until_won(_SHORT_RACE, f"delivery {d.key}", attempt)

    def get(self, key: str) -> Delivery | None:
        response = self.client.get_item(
            TableName=self.table,
            Key=self._key(f"delivery#{key}", _DELIVERY),
            ConsistentRead=True,
            ProjectionExpression="doc",
        )
        item = response.get("Item")
        return Delivery.model_validate_json(item["doc"]["S"]) if item else None

    def _query(self, pk: str, limit: int, *, forward: bool, upto: str | None = None) -> list[str]:
        """The `doc`s of up to `limit` index items of partition `pk`, in sort key order
        (`forward`) or reverse, with sort keys below `upto` if given."""
        if limit <= 0:
            return []
        values: dict[str, AttributeValueTypeDef] = {":pk": {"S": pk}}
        condition = "pk = :pk"
        if upto is not None:
            condition += " AND sk < :upto"
            values[":upto"] = {"S": upto}
        items = _query(
            self.client,
            limit=limit,
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ProjectionExpression="doc",
            ConsistentRead=True,
            ScanIndexForward=forward,
        )
        return [item["doc"]["S"] for item in items]

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        # Sort keys are "{next_at:020.6f}#{key}": every one whose time prints as `now` or
        # earlier is below "{now}$" ('$' follows '#'). The exact comparison drops the few at
        # the end of the range that only round to `now`; nothing after them is lost.
        docs = self._query(_DUE, limit, forward=True, upto=f"{_at(max(now, 0.0))}$")
        found = [Delivery.model_validate_json(doc) for doc in docs]
        return [d for d in found if d.next_at <= now]

    def save(self, delivery: Delivery) -> None:
        pk = f"delivery#{delivery.key}"
        doc = delivery.model_dump_json()
        new = _index(delivery.key, delivery.status, delivery.next_at, delivery.updated_at)

        def attempt() -> None:
            current = self.client.get_item(
                TableName=self.table, Key=self._key(pk, _DELIVERY), ConsistentRead=True
            ).get("Item")
            if current is None:
                return  # like SqliteDeliveryStore: only a stored delivery is updated
            old = _index(
                delivery.key,
                current["status"]["S"],
                float(current["next_at"]["N"]),
                float(current["updated_at"]["N"]),
            )
            # Written on the condition that the attributes the index is made of are those we
            # read: then the index items deleted here are exactly the current ones.
            items: list[Any] = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._item(delivery, doc),
                        "ConditionExpression": (
                            "#status = :status AND next_at = :next_at AND updated_at = :updated_at"
                        ),
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":status": current["status"],
                            ":next_at": current["next_at"],
                            ":updated_at": current["updated_at"],
                        },
                    }
                },
                *(
                    {"Delete": {"TableName": self.table, "Key": self._key(ipk, isk)}}
                    for ipk, isk in old.keys() - new.keys()
                ),
                *self._index_puts(delivery, doc),
            ]
            try:
                self.client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = _reasons(exc)
                if reasons[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in reasons:
                    raise _Lost from exc  # another writer moved it since we read it
                raise

        _until_won(_RACE, f"delivery {delivery.key}", attempt)

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Delivery]:
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="begins_with(pk, :d) AND sk = :sk",
            ExpressionAttributeValues={":d": {"S": "delivery#"}, ":sk": {"S": _DELIVERY}},
            ConsistentRead=True,
        )
        found = [
            Delivery.model_validate_json(item["doc"]["S"])
            for page in pages
            for item in page["Items"]
        ]
        return [
            d
            for d in found
            if (d.out.campaign_id, d.out.recipient_id) == (campaign_id, recipient_id)
        ]

    def delete(self, keys: list[str]) -> int:
        gone = 0
        for key in keys:
            delivery = self.get(key)
            if delivery is None:
                continue
            index = _index(key, delivery.status, delivery.next_at, delivery.updated_at)
            for pk, sk in [*index, (f"delivery#{key}", _DELIVERY)]:
                self.client.delete_item(TableName=self.table, Key=self._key(pk, sk))
            gone += 1
        return gone

    def by_status(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        statuses = list(DeliveryStatus) if status is None else [status]
        found = [
            Delivery.model_validate_json(doc)
            for s in statuses
            for doc in self._query(f"deliveries#{s}", limit, forward=False)
        ]
        if status is None:  # each status's newest `limit`, merged
            found.sort(key=lambda d: d.updated_at, reverse=True)
        return found[: max(limit, 0)]

    def disable(self, connector: str, reason: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                **self._key(_CONNECTORS, f"disabled#{connector}"),
                "connector": {"S": connector},
                "reason": {"S": reason},
                "at": {"N": repr(time.time())},
            },
        )

    def enable(self, connector: str) -> None:
        self.client.delete_item(
            TableName=self.table, Key=self._key(_CONNECTORS, f"disabled#{connector}")
        )

    def disabled(self) -> dict[str, str]:
        items = _query(
            self.client,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :disabled)",
            ExpressionAttributeValues={
                ":pk": {"S": _CONNECTORS},
                ":disabled": {"S": "disabled#"},
            },
            ProjectionExpression="#connector, reason",
            ExpressionAttributeNames={"#connector": "connector"},
            ConsistentRead=True,
        )
        return {item["connector"]["S"]: item["reason"]["S"] for item in items}
