"""Killed processes on the embedded default: a render worker, or the whole `reel serve`, is
SIGKILLed while a batch is in flight; the batch still ends with one result and one video and
poster per recipient, every output valid media, nothing half-written left behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av

from chalicelib.pipeline.folder import RESULTS
from tests.conftest import Campaign, run_batch
from tests.server import call, reel_serve

RECIPIENTS = 6
DEADLINE = 120.0  # seconds any one wait may take before the test fails


def wait_for(what: str, check: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it ended while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


def server_pid(data_dir: Path) -> int:
    [pid] = [p for p, cmd in _children(os.getpid()) if f"--data-dir {data_dir} " in cmd]
    return pid


def render_workers(server: int) -> list[int]:
    """The server's render pool processes (spawned: `multiprocessing.spawn`)."""
    return [p for p, cmd in _children(server) if "spawn_main" in cmd]


def records(n: int = RECIPIENTS) -> list[dict[str, str]]:
    return [{"recipient_id": f"r{i}", "first_name": f"Name {i}"} for i in range(n)]


def start_batch(url: str, key: str) -> str:
    status, body = call(
        f"{url}/batches", "POST", {"template_id": "tiny", "records": records()}, key
    )
    assert status == 202, body
    return str(body["batch_id"])


def batch(url: str, batch_id: str) -> dict[str, Any]:
    status, body = call(f"{url}/batches/{batch_id}?limit=1000")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def in_flight(url: str, batch_id: str) -> bool:
    """At least one result is recorded and the batch is not done."""
    body = batch(url, batch_id)
    return body["status"] == "running" and 1 <= len(body["results"]) < RECIPIENTS


def finished(url: str, batch_id: str) -> dict[str, Any] | None:
    body = batch(url, batch_id)
    return body if body["status"] in ("done", "failed") else None


def _key(url: str) -> str:
    """The blob key of a media URL of `reel serve` (…/files/videos/x.mp4 → videos/x.mp4)."""
    return url.split("/files/", 1)[1].split("?", 1)[0]


def assert_one_valid_output_each(body: dict[str, Any], blobs: Path) -> None:
    assert body["status"] == "done", body
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(RECIPIENTS))
    assert sorted(r["recipient_id"] for r in results) == [f"r{i}" for i in range(RECIPIENTS)]
    assert [r for r in results if r["status"] == "failed"] == []
    videos = sorted(p.relative_to(blobs).as_posix() for p in (blobs / "videos").iterdir())
    posters = sorted(p.relative_to(blobs).as_posix() for p in (blobs / "posters").iterdir())
    # One video and one poster per recipient: no duplicates, no temporary leftovers
    assert videos == sorted(_key(r["output"]) for r in results)
    assert posters == sorted(_key(r["poster"]) for r in results)
    assert not [p for p in blobs.rglob("*") if p.name.startswith(".") or ".part" in p.name]
    assert_valid_media(blobs)


def assert_valid_media(root: Path) -> None:
    """Every video under `root` decodes to its end, with sound; every poster is a picture."""
    for video in root.glob("videos/*"):
        with av.open(str(video)) as container:
            assert container.streams.video and container.streams.audio
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 10, video  # plays to its end: not truncated
    for poster in root.glob("posters/*"):
        with av.open(str(poster)) as container:
            assert next(container.decode(video=0)).width == 160


def test_a_render_worker_killed_mid_batch(campaign: Campaign, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with reel_serve(campaign.root.parent, data, workers=2) as (url, key):
        # GIVEN a batch running on two render processes
        batch_id = start_batch(url, key)
        wait_for("the batch to be under way", lambda: in_flight(url, batch_id))
        server = server_pid(data.resolve())
        workers = wait_for("the render workers", lambda: render_workers(server))
        # WHEN one render worker is killed while recipients are in flight
        os.kill(workers[0], signal.SIGKILL)
        # THEN the batch still finishes: the killed worker's recipient is rendered again
        body = wait_for("the batch to finish", lambda: finished(url, batch_id))
        assert_one_valid_output_each(body, data / "blobs")
        # AND the server renders on afterwards: the dead worker was replaced
        status, render = call(
            f"{url}/renders", "POST", {"template_id": "tiny", "data": {"first_name": "Ada"}}, key
        )
        assert status == 202, render
        done = wait_for(
            "the render after the crash",
            lambda: (
                (r := call(f"{url}/renders/{render['render_id']}")[1])["status"] != "queued"
                and r["status"] != "running"
                and r
            ),
        )
        assert done["status"] == "done", done


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _recorded(data: Path, batch_id: str) -> int:
    with sqlite3.connect(data / "reel.db") as db:
        query = "SELECT COUNT(*) FROM results WHERE batch_id = ?"
        return int(db.execute(query, (batch_id,)).fetchone()[0])


def test_the_server_killed_mid_batch_finishes_it_at_restart(
    campaign: Campaign, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with reel_serve(campaign.root.parent, data, workers=2) as (url, key):
        # GIVEN a batch under way
        batch_id = start_batch(url, key)
        wait_for("the batch to be under way", lambda: in_flight(url, batch_id))
        server = server_pid(data.resolve())
        workers = render_workers(server)
        # WHEN the whole server is killed
        os.kill(server, signal.SIGKILL)
        wait_for("the server to die", lambda: not _alive(server), timeout=30)
    # THEN its render workers do not outlive it
    wait_for("the orphaned workers to exit", lambda: not any(map(_alive, workers)), timeout=30)
    assert 1 <= _recorded(data, batch_id) < RECIPIENTS  # it really died mid-batch
    # AND a restarted server resumes the batch and finishes it, each recipient once
    with reel_serve(campaign.root.parent, data, workers=2) as (url, key):
        body = wait_for("the resumed batch to finish", lambda: finished(url, batch_id))
        assert_one_valid_output_each(body, data / "blobs")


def test_a_render_worker_of_reel_batch_killed_mid_run(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN `reel batch` running on two render processes (here, in a thread of this process)
    data = tmp_path / "people.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    out = tmp_path / "out"
    before = {p for p, cmd in _children(os.getpid()) if "spawn_main" in cmd}
    lt = campaign.template
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(run_batch, lt, data, out, workers=2)

        def workers() -> list[int]:
            mine = [p for p, cmd in _children(os.getpid()) if "spawn_main" in cmd]
            started = [p for p in mine if p not in before]
            log = out / RESULTS
            done = len(log.read_text().splitlines()) if log.exists() else 0
            return started if 1 <= done < RECIPIENTS and not run.done() else []

        # WHEN one of them is killed while recipients are in flight
        os.kill(wait_for("the render workers", workers)[0], signal.SIGKILL)
        summary = run.result(timeout=DEADLINE)
    # THEN the run still renders everyone, once
    assert summary.counts["failed"] == 0, summary.results
    assert sorted(r.recipient_id for r in summary.results) == [f"r{i}" for i in range(RECIPIENTS)]
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert len(videos) == RECIPIENTS
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary leftovers
    assert_valid_media(out)


def test_a_render_published_again_keeps_its_page(campaign: Campaign) -> None:
    from chalicelib import bootstrap
    from chalicelib.pipeline.steps import make_job
    from chalicelib.services import recipients, templates

    b = bootstrap.backends()
    lt = templates.materialize(b, templates.register_folder(b, campaign.root))
    job = make_job(lt, {"first_name": "Ada"}, "ada", 0, named=False)
    # GIVEN a recipient rendered and published, WHEN the step runs again (its worker died
    # after publishing, before the result was recorded), THEN the page is the same one
    first = recipients.publish(b, lt, job, "tiny")
    assert recipients.publish(b, lt, job, "tiny") == first
    assert [p.token for p in b.recipients.campaign_pages("tiny")] == [first]
    # AND a render of new data is a new page, as before
    other = make_job(lt, {"first_name": "Adeline"}, "ada", 0, named=False)
    assert recipients.publish(b, lt, other, "tiny") != first
