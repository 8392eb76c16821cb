"""What the SQLite and DynamoDB job stores share: the job models by kind, and the state merge."""

from __future__ import annotations

from typing import Any

from chalicelib.pipeline.jobs import BatchRecord, JobState, RenderRecord

JobModel = type[RenderRecord] | type[BatchRecord]
JOB_MODELS: dict[str, JobModel] = {"render": RenderRecord, "batch": BatchRecord}


def job_model(kind: str) -> JobModel:
    """The record model of a job `kind` ("render" or "batch"); KeyError for any other."""
    try:
        return JOB_MODELS[kind]
    except KeyError:
        raise KeyError(f"kind: {kind!r} is not one of {sorted(JOB_MODELS)}") from None


def merge_state(model: JobModel, doc: str, state: JobState, fields: dict[str, Any]) -> str:
    """The stored JSON `doc` of a job moved to `state` with `fields` set over it, validated
    whole (ValueError naming the field for one the model does not have)."""
    current = model.model_validate_json(doc)
    return model.model_validate(
        {**current.model_dump(), **fields, "state": state}
    ).model_dump_json()
