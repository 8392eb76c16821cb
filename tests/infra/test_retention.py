"""Privacy in the stack: retention from the campaigns' own `retention:` (infra/retention.py) —
the Events table's TTL, the functions' REEL_EVENT_TTL_DAYS, S3 lifecycle rules for personal
media only — and traces that carry no handler's result or error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import TemplateError
from infra.media import EXPIRING
from infra.retention import PERSONAL_MEDIA_PREFIXES, Retention, campaigns_retention
from tests.infra import synth

DEMO = Path(__file__).resolve().parents[2] / "examples"


def _of(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_the_shortest_period_of_the_campaigns_applies(tmp_path: Path) -> None:
    assert campaigns_retention(DEMO) == Retention(events=365, media=180, records=365)
    for name, retention in (("a", "{events: 30d, media: 26w}"), ("b", "{events: 1y}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "template.yaml").write_text(
            f"id: {name}\nscenes: [{{id: s, duration: 1}}]\nretention: {retention}\n"
        )
    assert campaigns_retention(tmp_path) == Retention(events=30, media=182, records=None)


def test_an_unparseable_period_fails_the_synth(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "id: a\nscenes: [{id: s, duration: 1}]\nretention: {events: a year}\n"
    )
    with pytest.raises(TemplateError, match="retention"):
        campaigns_retention(tmp_path)


def test_the_stack_sets_ttl_and_lifecycle_from_the_campaigns() -> None:
    template = synth.template_json()
    tables = _of(template, "AWS::DynamoDB::Table")
    events = [t for t in tables if t["Properties"].get("TimeToLiveSpecification", {}).get(
        "AttributeName") == "expires_at"]  # fmt: skip
    assert len(events) == 1 and events[0]["DeletionPolicy"] == "Retain"
    functions = [
        *_of(template, "AWS::Lambda::Function"),
        *_of(template, "AWS::Serverless::Function"),
    ]
    ttl = {
        f["Properties"]["Environment"]["Variables"].get("REEL_EVENT_TTL_DAYS")
        for f in functions
        if "REEL_TABLE" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert ttl == {"365"}
    # The media bucket (the one S3 notifies the API from; the access-log bucket has its own rule)
    [bucket] = [
        b
        for b in _of(template, "AWS::S3::Bucket")
        if "NotificationConfiguration" in b["Properties"]
    ]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    personal = {r["Prefix"]: r for r in rules if r.get("Id", "").startswith("retention-")}
    assert set(personal) == set(PERSONAL_MEDIA_PREFIXES)
    assert {r["ExpirationInDays"] for r in personal.values()} == {180}
    assert all(r["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1 for r in personal.values())
    # Uploads, a batch's working copies, cached segments and stream chunks expire: each prefix
    # as the code writes its keys (a missing segment or chunk is simply rendered again).
    expiring = {
        r["Prefix"]: r["ExpirationInDays"] for r in rules if r.get("Id", "").startswith("expire-")
    }
    assert expiring == EXPIRING
    assert "hls/p/" not in expiring  # the campaigns' retention expires personal chunks here
    from chalicelib.render.cache import SegmentCache
    from chalicelib.render.hls import chunk_blob, init_blob
    from infra.api import INCOMING_PREFIX

    written = [
        INCOMING_PREFIX + "tiny/people.csv",
        "uploads/u_1/people.csv",
        "batches/b_1/source.jsonl",
        "batches/b_1/items.json",
        SegmentCache.segment_key("ab" * 32),
        SegmentCache.audio_key("ab" * 32),
        chunk_blob("ab" * 32, personal=False),
        init_blob("ab" * 32),
    ]
    assert all(any(k.startswith(p) for p in expiring) for k in written)
    assert not any(v.startswith(p) for p in expiring for v in ("videos/a.mp4", "templates/t/x"))


def test_traces_carry_no_results_or_errors() -> None:
    # A handler's result names its recipient; an error may quote a record's values.
    template = synth.template_json()
    functions = [
        f
        for kind in ("AWS::Lambda::Function", "AWS::Serverless::Function")
        for f in _of(template, kind)
        if "REEL_TABLE" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(functions) >= 5
    for f in functions:
        env = f["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
