"""The JobStore contract, run against every backend: SQLite and DynamoDB (on moto), by concern
(templates; renders, batches and their results; landing pages and recipients; claims), then
what only DynamoDB does (its pages of results, its races, its key limits)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoJobStore
from chalicelib.adapters.sqlite import SqliteJobStore
from chalicelib.landing.pages import Cue, Page
from chalicelib.pipeline.jobs import (
    BatchRecord,
    JobState,
    RecipientData,
    RecipientResult,
    RenderRecord,
    Status,
    TemplateRecord,
)
from chalicelib.ports import JobStore
from tests.aws import create_jobs_table


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        yield SqliteJobStore(tmp_path / "reel.db")
        return
    with mock_aws():
        yield DynamoJobStore(create_jobs_table("reel-jobs"), "reel-jobs")


def template(version: str, created_at: float, template_id: str = "welcome") -> TemplateRecord:
    return TemplateRecord(
        id=template_id,
        version=version,
        bundle_key=f"templates/{template_id}/{version}.zip",
        created_at=created_at,
        variables=["first_name"],
    )


def render(render_id: str = "r_1") -> RenderRecord:
    return RenderRecord(
        id=render_id,
        template_id="welcome",
        version="v1",
        data={"first_name": "Ada"},
        state=JobState.queued,
        created_at=1.0,
        updated_at=1.0,
        output_key="videos/abc.mp4",
        poster_key="posters/abc.jpg",
    )


def batch(batch_id: str = "b_1") -> BatchRecord:
    return BatchRecord(
        id=batch_id,
        template_id="welcome",
        version="v1",
        source_key=f"incoming/{batch_id}/people.csv",
        items_key=f"batches/{batch_id}/items.json",
        state=JobState.queued,
        created_at=1.0,
        updated_at=1.0,
    )


def result(line: int, status: Status = Status.rendered) -> RecipientResult:
    return RecipientResult(recipient_id=f"rcpt-{line}", line=line, status=status)


def page(
    token: str, recipient_id: str = "ada", campaign_id: str = "welcome", created_at: float = 1.0
) -> Page:
    return Page(
        token=token,
        campaign_id=campaign_id,
        recipient_id=recipient_id,
        video_key=f"videos/{token}.mp4",
        poster_key=f"posters/{token}.jpg",
        title=f"Hi {recipient_id}",
        width=1280,
        height=720,
        duration=12.5,
        created_at=created_at,
    )


def by_recipient(pages: list[Page]) -> dict[str, str]:
    """recipient id → token, checking each recipient comes once."""
    found = {p.recipient_id: p.token for p in pages}
    assert len(found) == len(pages), [p.recipient_id for p in pages]
    return found


# ── templates ─────────────────────────────────────────────────────────────────────────────


def test_templates_latest_and_by_version(store: JobStore) -> None:
    # GIVEN two versions of one template, the second registered later
    store.put_template(template("v1", 100.0))
    store.put_template(template("v2", 200.0))
    # THEN the latest is v2 and each version can be read back
    latest = store.get_template("welcome")
    assert latest is not None and latest.version == "v2"
    assert store.get_template("welcome", "v1") == template("v1", 100.0)
    assert store.get_template("welcome", "v2") == template("v2", 200.0)
    assert store.get_template("welcome", "v3") is None
    assert store.get_template("other") is None


def test_an_older_version_stored_late_is_not_the_latest(store: JobStore) -> None:
    store.put_template(template("v2", 200.0))
    store.put_template(template("v1", 100.0))
    latest = store.get_template("welcome")
    assert latest is not None and latest.version == "v2"


def test_templates_are_kept_apart(store: JobStore) -> None:
    store.put_template(template("v1", 100.0, "a"))
    store.put_template(template("v9", 900.0, "b"))
    latest = store.get_template("a")
    assert latest is not None and latest.version == "v1"


# ── renders, batches and their results ────────────────────────────────────────────────────


def test_create_and_get(store: JobStore) -> None:
    store.create_render(render())
    store.create_batch(batch())
    assert store.get_render("r_1") == render()
    assert store.get_batch("b_1") == batch()
    assert store.get_render("r_2") is None
    assert store.get_batch("b_2") is None


def test_renders_and_batches_do_not_share_ids(store: JobStore) -> None:
    store.create_render(render("same"))
    store.create_batch(batch("same"))
    assert store.get_render("same") == render("same")
    assert store.get_batch("same") == batch("same")


def test_creating_twice_is_refused(store: JobStore) -> None:
    store.create_render(render())
    store.create_batch(batch())
    changed = render().model_copy(update={"data": {"first_name": "Bob"}})
    with pytest.raises(ValueError, match="exists"):
        store.create_render(changed)
    with pytest.raises(ValueError, match="exists"):
        store.create_batch(batch())
    assert store.get_render("r_1") == render()


def test_set_state_moves_forward_and_merges_fields(store: JobStore) -> None:
    store.create_render(render())
    store.create_batch(batch())
    # WHEN a render and a batch move from queued to running, setting fields on the way
    assert store.set_state(
        "render", "r_1", JobState.running, expect=(JobState.queued,), updated_at=2.0
    )
    assert store.set_state(
        "batch",
        "b_1",
        JobState.running,
        expect=(JobState.queued, JobState.running),
        total=3,
        updated_at=2.0,
    )
    # THEN the records carry the new state and fields, the rest unchanged
    r = store.get_render("r_1")
    assert r == render().model_copy(update={"state": JobState.running, "updated_at": 2.0})
    b = store.get_batch("b_1")
    assert b is not None and (b.state, b.total, b.updated_at) == (JobState.running, 3, 2.0)
    assert b.source_key == batch().source_key
    # AND a further move works from the new state
    done = result(0)
    assert store.set_state("render", "r_1", JobState.done, expect=(JobState.running,), result=done)
    r = store.get_render("r_1")
    assert r is not None and r.state == JobState.done and r.result == done


def test_set_state_refuses_other_states(store: JobStore) -> None:
    # GIVEN a finished render
    store.create_render(render())
    assert store.set_state("render", "r_1", JobState.done, expect=(JobState.queued,))
    # WHEN a late retry tries to move it back
    moved = store.set_state(
        "render", "r_1", JobState.running, expect=(JobState.queued,), updated_at=9.0
    )
    # THEN nothing changes
    assert moved is False
    r = store.get_render("r_1")
    assert r is not None and r.state == JobState.done and r.updated_at == 1.0


def test_set_state_of_an_unknown_job(store: JobStore) -> None:
    assert not store.set_state("render", "nope", JobState.running, expect=(JobState.queued,))
    assert not store.set_state("batch", "nope", JobState.running, expect=(JobState.queued,))
    assert store.get_render("nope") is None and store.get_batch("nope") is None


def test_set_state_validates_fields(store: JobStore) -> None:
    store.create_batch(batch())
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        store.set_state("batch", "b_1", JobState.running, expect=(JobState.queued,), nope=1)
    b = store.get_batch("b_1")
    assert b is not None and b.state == JobState.queued


def test_the_first_result_wins(store: JobStore) -> None:
    store.create_batch(batch())
    assert store.put_result("b_1", 0, result(2, Status.rendered))
    # WHEN a retry records the same item again, with another outcome
    assert store.put_result("b_1", 0, result(2, Status.failed)) is False
    # THEN the first result stays and is counted once
    assert store.list_results("b_1") == [(0, result(2, Status.rendered))]
    assert store.count_results("b_1") == {"rendered": 1, "cached": 0, "failed": 0}


def test_put_result_needs_the_batch(store: JobStore) -> None:
    with pytest.raises(KeyError, match="no batch"):
        store.put_result("b_1", 0, result(2))
    assert store.list_results("b_1") == []
    assert store.get_batch("b_1") is None


def test_counts_every_status(store: JobStore) -> None:
    store.create_batch(batch())
    store.create_batch(batch("b_2"))
    assert store.count_results("b_1") == {"rendered": 0, "cached": 0, "failed": 0}
    statuses = [Status.rendered, Status.cached, Status.failed, Status.cached, Status.cached]
    for i, status in enumerate(statuses):
        assert store.put_result("b_1", i, result(i + 2, status))
    store.put_result("b_1", 4, result(6, Status.failed))  # a duplicate: not counted
    store.put_result("b_2", 0, result(2, Status.failed))
    assert store.count_results("b_1") == {"rendered": 1, "cached": 3, "failed": 1}
    assert store.count_results("b_2") == {"rendered": 0, "cached": 0, "failed": 1}
    assert store.count_results("unknown") == {s.value: 0 for s in Status}


def test_list_results_pages_in_index_order(store: JobStore) -> None:
    # GIVEN 25 results written out of order
    store.create_batch(batch())
    indexes = [*range(0, 25, 2), *range(1, 25, 2)]
    for i in indexes:
        store.put_result("b_1", i, result(i + 2))
    # WHEN they are read seven at a time
    pages: list[list[int]] = []
    after = -1
    while page := store.list_results("b_1", after=after, limit=7):
        pages.append([i for i, _ in page])
        after = page[-1][0]
    # THEN every result comes once, in order
    assert pages == [list(range(n, min(n + 7, 25))) for n in range(0, 25, 7)]
    assert store.list_results("b_1", after=9, limit=2) == [(10, result(12)), (11, result(13))]
    assert store.list_results("b_1", after=24) == []
    assert store.list_results("b_1") == [(i, result(i + 2)) for i in range(25)]
    assert store.list_results("other") == []


def test_list_results_keeps_every_field(store: JobStore) -> None:
    store.create_batch(batch())
    full = RecipientResult(
        recipient_id="ada@example.com",
        line=7,
        status=Status.failed,
        reason="first_name: too long",
        code="invalid_data",
        field="first_name",
        segments=4,
        segments_cached=2,
        seconds=1.25,
    )
    store.put_result("b_1", 5, full)
    assert store.list_results("b_1") == [(5, full)]


def test_moving_a_batch_keeps_its_counts(store: JobStore) -> None:
    store.create_batch(batch())
    store.put_result("b_1", 0, result(2, Status.cached))
    assert store.set_state("batch", "b_1", JobState.done, expect=(JobState.queued,), total=1)
    assert store.count_results("b_1") == {"rendered": 0, "cached": 1, "failed": 0}


# ── landing pages and recipients ──────────────────────────────────────────────────────────


def test_put_and_get_a_page(store: JobStore) -> None:
    full = page("tok_ada_0001").model_copy(
        update={
            "description": "Your plan, explained",
            "cta_label": "Upgrade",
            "cta_url": "https://example.com/up?x=1",
            "captions": [Cue(start=0.0, end=1.5, text="Hi Ada!"), Cue(start=2, end=3, text="é")],
        }
    )
    store.put_page(full)
    assert store.get_page("tok_ada_0001") == full
    assert store.get_page("tok_unknown1") is None
    assert store.campaign_pages("welcome") == [full]


def test_a_campaign_without_pages(store: JobStore) -> None:
    assert store.campaign_pages("nobody") == []


def test_the_current_page_of_a_recipient_is_the_latest_put(store: JobStore) -> None:
    # GIVEN Ada re-rendered twice (each render publishes a page with a new token), and Bob once
    store.put_page(page("tok_ada_0001", "ada", created_at=3.0))
    store.put_page(page("tok_bob_0001", "bob"))
    store.put_page(page("tok_ada_0002", "ada", created_at=2.0))
    store.put_page(page("tok_ada_0003", "ada", created_at=1.0))
    # THEN the campaign has one page per recipient: the last one put, whatever its created_at
    pages = store.campaign_pages("welcome")
    assert by_recipient(pages) == {"ada": "tok_ada_0003", "bob": "tok_bob_0001"}
    assert page("tok_ada_0003", "ada", created_at=1.0) in pages
    # AND the older pages still answer on their tokens (links already sent keep working)
    assert store.get_page("tok_ada_0001") == page("tok_ada_0001", "ada", created_at=3.0)
    assert store.get_page("tok_ada_0002") == page("tok_ada_0002", "ada", created_at=2.0)
    # AND the order is stable from one call to the next
    assert store.campaign_pages("welcome") == pages


def test_campaigns_are_kept_apart(store: JobStore) -> None:
    # GIVEN the same recipient id in two campaigns
    store.put_page(page("tok_a_00001", "ada", "spring"))
    store.put_page(page("tok_b_00001", "ada", "summer"))
    store.put_page(page("tok_b_00002", "bob", "summer"))
    # THEN each campaign has its own current pages
    assert store.campaign_pages("spring") == [page("tok_a_00001", "ada", "spring")]
    assert by_recipient(store.campaign_pages("summer")) == {
        "ada": "tok_b_00001",
        "bob": "tok_b_00002",
    }
    assert store.campaign_pages("spring-2") == []  # not a prefix match


def test_many_pages(store: JobStore) -> None:
    # GIVEN 120 recipients, a third of whom got a second page
    for i in range(120):
        store.put_page(page(f"tok_first_{i:04d}", f"rcpt-{i:04d}"))
    for i in range(0, 120, 3):
        store.put_page(page(f"tok_again_{i:04d}", f"rcpt-{i:04d}"))
    # THEN the campaign has 120 current pages, each recipient's latest
    current = by_recipient(store.campaign_pages("welcome"))
    assert current == {
        f"rcpt-{i:04d}": (f"tok_again_{i:04d}" if i % 3 == 0 else f"tok_first_{i:04d}")
        for i in range(120)
    }


def test_a_token_is_refused_twice(store: JobStore) -> None:
    store.put_page(page("tok_ada_0001", "ada"))
    with pytest.raises(ValueError, match="exists"):
        store.put_page(page("tok_ada_0001", "bob"))
    # AND nothing of the refused page was written: Bob has no current page
    assert store.get_page("tok_ada_0001") == page("tok_ada_0001", "ada")
    assert by_recipient(store.campaign_pages("welcome")) == {"ada": "tok_ada_0001"}


def recipient(rid: str = "ada", campaign_id: str = "welcome", name: str = "Ada") -> RecipientData:
    return RecipientData(
        campaign_id=campaign_id,
        recipient_id=rid,
        data={"first_name": name, "plan": "pro"},
        data_hash=f"hash-{name}",
        token=f"tok_{rid}_0001",
        updated_at=1.0,
    )


def test_a_recipients_record_is_replaced_and_kept_apart(store: JobStore) -> None:
    assert store.get_recipient("welcome", "ada") is None
    # GIVEN Ada's record, then a newer one, and another campaign's Ada
    store.put_recipient(recipient())
    store.put_recipient(recipient(name="Ada L."))
    store.put_recipient(recipient(campaign_id="spring", name="Ada S."))
    # THEN each campaign has Ada's latest record, and no one else's
    assert store.get_recipient("welcome", "ada") == recipient(name="Ada L.")
    assert store.get_recipient("spring", "ada") == recipient(campaign_id="spring", name="Ada S.")
    assert store.get_recipient("welcome", "bob") is None
    assert store.get_recipient("summer", "ada") is None


# ── claims (replay protection of inbound hooks) ───────────────────────────────────────────


def test_the_first_claim_wins(store: JobStore) -> None:
    later = time.time() + 600
    assert store.claim("hook:generic:msg_1", later) is True
    # WHEN the same key is claimed again (a replayed message), even with another expiry
    assert store.claim("hook:generic:msg_1", later + 600) is False
    assert store.claim("hook:generic:msg_1", later) is False
    # THEN other keys are untouched
    assert store.claim("hook:generic:msg_2", later) is True
    assert store.claim("hook:hubspot:msg_1", later) is True


def test_an_expired_claim_can_be_claimed_again(store: JobStore) -> None:
    assert store.claim("old", time.time() - 1) is True
    assert store.claim("old", time.time() + 600) is True
    assert store.claim("old", time.time() + 600) is False


def test_claims_race(store: JobStore) -> None:
    if isinstance(store, DynamoJobStore):
        pytest.skip("moto does not serialize writes; DynamoDB's conditional put is atomic")
    # GIVEN eight callers claiming one key at once THEN exactly one wins
    later = time.time() + 600
    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(pool.map(lambda _: store.claim("raced", later), range(8)))
    assert wins.count(True) == 1


# ── DynamoDB only ─────────────────────────────────────────────────────────────────────────


@pytest.fixture
def dynamo() -> Iterator[DynamoJobStore]:
    with mock_aws():
        yield DynamoJobStore(create_jobs_table("reel-jobs"), "reel-jobs")


def test_dynamo_refuses_indexes_it_cannot_order(dynamo: DynamoJobStore) -> None:
    dynamo.create_batch(batch())
    for index in (-1, 10_000_000_000):
        with pytest.raises(ValueError, match="index"):
            dynamo.put_result("b_1", index, result(2))


def test_dynamo_list_results_follows_last_evaluated_key(dynamo: DynamoJobStore) -> None:
    # GIVEN DynamoDB answering at most 3 items per Query (as it does past 1 MB of results)
    dynamo.create_batch(batch())
    for i in range(10):
        dynamo.put_result("b_1", i, result(i + 2))
    calls: list[int] = []

    def small_pages(params: dict[str, object], **_: object) -> None:
        calls.append(1)
        params["Limit"] = min(3, int(str(params["Limit"])))

    dynamo.client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    # WHEN 8 results are asked for
    page = dynamo.list_results("b_1", after=0, limit=8)
    # THEN the store followed the pages until it had them
    assert [i for i, _ in page] == list(range(1, 9))
    assert len(calls) == 3


def _interfere(dynamo: DynamoJobStore, state: JobState) -> list[int]:
    """Before the next UpdateItem, another writer moves render r_1 to `state` (once)."""
    other = DynamoJobStore(dynamo.client, dynamo.table)
    fired: list[int] = []

    def before_update(**_: object) -> None:
        if not fired:
            fired.append(1)
            current = other.get_render("r_1")
            assert current is not None
            assert other.set_state("render", "r_1", state, expect=(current.state,), updated_at=5.0)

    dynamo.client.meta.events.register("before-call.dynamodb.UpdateItem", before_update)
    return fired


def test_dynamo_set_state_retries_after_a_concurrent_write(dynamo: DynamoJobStore) -> None:
    # GIVEN another writer that touches the render between our read and our write,
    # leaving it in a state we accept
    dynamo.create_render(render())
    fired = _interfere(dynamo, JobState.queued)
    # WHEN we move it
    moved = dynamo.set_state(
        "render", "r_1", JobState.running, expect=(JobState.queued,), poster_key="p.jpg"
    )
    # THEN our write was retried on the fresh record: both writers' fields are kept
    assert fired and moved
    r = dynamo.get_render("r_1")
    assert r is not None
    assert (r.state, r.updated_at, r.poster_key) == (JobState.running, 5.0, "p.jpg")


def test_dynamo_set_state_loses_to_a_concurrent_move(dynamo: DynamoJobStore) -> None:
    # GIVEN another writer that finishes the render between our read and our write
    dynamo.create_render(render())
    fired = _interfere(dynamo, JobState.done)
    # WHEN we try to move it from queued
    moved = dynamo.set_state("render", "r_1", JobState.running, expect=(JobState.queued,))
    # THEN we lose, and the other writer's move stands
    assert fired and moved is False
    r = dynamo.get_render("r_1")
    assert r is not None and r.state == JobState.done


def test_dynamo_campaign_pages_follows_last_evaluated_key(dynamo: DynamoJobStore) -> None:
    # GIVEN DynamoDB answering at most 4 items per Query (as it does past 1 MB of results)
    for i in range(10):
        dynamo.put_page(page(f"tok_page_{i:04d}", f"rcpt-{i:04d}"))
    calls: list[int] = []

    def small_pages(params: dict[str, object], **_: object) -> None:
        calls.append(1)
        params["Limit"] = 4

    dynamo.client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    # WHEN the campaign's pages are read
    pages = dynamo.campaign_pages("welcome")
    # THEN every page came, in recipient order, over three Query calls (and no GetItem)
    assert [p.recipient_id for p in pages] == [f"rcpt-{i:04d}" for i in range(10)]
    assert len(calls) == 3


def test_dynamo_put_page_retries_a_transaction_conflict(dynamo: DynamoJobStore) -> None:
    # GIVEN DynamoDB cancelling the first transaction: another page of Ada was being put
    calls: list[int] = []

    def conflict_once(**_: object) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls.append(1)
        if len(calls) > 1:
            return None
        error = {"Code": "TransactionCanceledException", "Message": "conflict"}
        reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
        parsed = {"Error": error, "CancellationReasons": reasons, "ResponseMetadata": {}}
        return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

    dynamo.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict_once)
    # WHEN a page is put THEN it is written on the second try
    dynamo.put_page(page("tok_ada_0001"))
    assert len(calls) == 2
    assert dynamo.get_page("tok_ada_0001") == page("tok_ada_0001")
    assert dynamo.campaign_pages("welcome") == [page("tok_ada_0001")]


def test_dynamo_put_page_gives_up_on_endless_conflicts(dynamo: DynamoJobStore) -> None:
    # GIVEN DynamoDB cancelling every transaction: a conflict each time
    calls: list[int] = []

    def conflict(**_: object) -> tuple[AWSResponse, dict[str, Any]]:
        calls.append(1)
        error = {"Code": "TransactionCanceledException", "Message": "conflict"}
        reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
        parsed = {"Error": error, "CancellationReasons": reasons, "ResponseMetadata": {}}
        return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

    dynamo.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    # WHEN a page is put THEN it fails after five tries, and nothing was written
    with pytest.raises(RuntimeError, match="page tok_ada_0001: 5 conflicting writes in a row"):
        dynamo.put_page(page("tok_ada_0001"))
    assert len(calls) == 5
    assert dynamo.get_page("tok_ada_0001") is None


def test_dynamo_claim_item_has_a_ttl_attribute(dynamo: DynamoJobStore) -> None:
    assert dynamo.claim("hook:generic:abc", 1_900_000_000.2)
    item = dynamo._get_item("claim#hook:generic:abc", "claim")
    assert item is not None and item["expires_at"] == {"N": "1900000001"}
