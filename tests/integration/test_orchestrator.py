"""The Orchestrator contract, on both: asked to start a stored render or batch, it gets it done
in the background — the local process pool, and Step Functions with Lambda (moto's engine, the
real handlers answering each invoke; see tests/aws.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from chalicelib import bootstrap
from chalicelib.backends import Backends
from chalicelib.pipeline.jobs import JobState
from chalicelib.ports import Orchestrator
from chalicelib.services import batches, renders, templates
from tests.aws import ACCOUNT, EXECUTION_DEADLINE, REGION, Env
from tests.conftest import Campaign


@dataclass
class Held:
    """An orchestrator that starts nothing: the records are stored, the test starts them."""

    started: list[tuple[str, str]] = field(default_factory=list)

    def start_render(self, render_id: str) -> None:
        self.started.append(("render", render_id))

    def start_batch(self, batch_id: str) -> None:
        self.started.append(("batch", batch_id))


@dataclass
class Running:
    """The orchestrator under test, and `settle(kind, id)`: wait until that work has ended."""

    orchestrator: Orchestrator
    settle: Callable[[str, str], None]


@pytest.fixture(params=["local", "stepfunctions"])
def running(request: pytest.FixtureRequest, campaign: Campaign) -> Iterator[Running]:
    if request.param == "local":
        b = bootstrap.backends()
        templates.register_folder(b, campaign.root)
        local = b.orchestrator
        wait: Callable[[float], None] = local.wait  # type: ignore[attr-defined]
        yield Running(local, lambda kind, job_id: wait(EXECUTION_DEADLINE))
        return
    aws: Env = request.getfixturevalue("aws")

    def settle(kind: str, job_id: str) -> None:
        # A render's asynchronous invoke is answered in-process, before start_render returns;
        # a batch is an execution of the state machine, run by moto's engine in a thread.
        if kind == "render":
            return
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:reel-batch:{job_id}"
        deadline = time.monotonic() + EXECUTION_DEADLINE
        while aws.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution {arn} still running"
            time.sleep(0.1)

    # Clients see the event handlers of their session as they were when made: the backends
    # made again, their Lambda client's invokes are answered by the dispatcher too.
    bootstrap.reset()
    yield Running(bootstrap.backends().orchestrator, settle)


def held() -> tuple[Backends, Held]:
    """The process's backends with an orchestrator that starts nothing."""
    hold = Held()
    return dataclasses.replace(bootstrap.backends(), orchestrator=hold), hold


def test_start_render_renders_it(running: Running) -> None:
    # GIVEN a render stored and queued, not started
    b, hold = held()
    record = renders.create_render(
        b, renders.RenderRequest(template_id="tiny", data={"first_name": "Ann"})
    )
    assert hold.started == [("render", record.id)]
    assert b.jobs.get_render(record.id).state == JobState.queued  # type: ignore[union-attr]
    # WHEN the orchestrator is asked to start it
    running.orchestrator.start_render(record.id)
    running.settle("render", record.id)
    # THEN it was rendered: done, its video and poster stored
    done = b.jobs.get_render(record.id)
    assert done is not None and done.state == JobState.done, done
    assert done.result is not None and done.result.status in ("rendered", "cached")
    assert b.blobs.exists(record.output_key) and b.blobs.exists(record.poster_key)


def test_start_batch_plans_renders_and_finalizes_it(running: Running) -> None:
    # GIVEN a batch of three stored and queued, not started, one of whose records is invalid
    b, hold = held()
    records = [{"first_name": "Ann"}, {"first_name": "Bo", "plan": "gold"}, {"first_name": "Cy"}]
    request = batches.BatchRequest(template_id="tiny", records=records)
    record = batches.create_batch(b, request)
    assert hold.started == [("batch", record.id)]
    # WHEN the orchestrator is asked to start it
    running.orchestrator.start_batch(record.id)
    running.settle("batch", record.id)
    # THEN it was planned, each item has its result, and it was finalized
    done = b.jobs.get_batch(record.id)
    assert done is not None and done.state == JobState.done, done
    assert done.total == 3
    assert b.results.count_results(record.id) == {"rendered": 2, "cached": 0, "failed": 1}
    results = dict(b.results.list_results(record.id))
    assert sorted(results) == [0, 1, 2]
    assert results[1].code == "invalid_data" and results[1].field == "plan"
    assert all(b.blobs.exists(str(results[i].output_key)) for i in (0, 2))
