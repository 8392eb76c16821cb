"""Lambda entry points: Powertools Logger, Tracer and idempotency shared by every handler."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from chalicelib.settings import get_settings

logger = Logger()
tracer = Tracer()

M = TypeVar("M", bound=BaseModel)


@lru_cache(maxsize=16)
def _persistence(purpose: str, table: str, region: str | None) -> DynamoDBPersistenceLayer:
    # One layer per purpose: a Powertools layer keeps the config it was first used with.
    import boto3

    session = boto3.session.Session(region_name=region)
    return DynamoDBPersistenceLayer(table_name=table, boto3_session=session)


def persistence(purpose: str) -> DynamoDBPersistenceLayer:
    """The idempotency store (`REEL_IDEMPOTENCY_TABLE`), built on first use, not at import."""
    s = get_settings()
    return _persistence(purpose, s.idempotency_table, s.region)


def reset() -> None:
    """Forget the idempotency stores (tests: a new moto account, new settings)."""
    _persistence.cache_clear()


def once(
    purpose: str,
    config: IdempotencyConfig,
    fn: Callable[[M], dict[str, Any]],
    event: M,
    context: LambdaContext,
) -> dict[str, Any]:
    """`fn(event)` at most once per idempotency key (`config.event_key_jmespath` on the event).

    A repeated call returns the stored result; a call that raised leaves no record, so Step
    Functions' Retry runs it again. The key's prefix is `purpose`, not the function's name, so
    it does not change when the Lambda is renamed.
    """
    config.register_lambda_context(context)  # an in-flight record expires with the invocation

    def run(*, event: M) -> dict[str, Any]:
        return fn(event)

    run.__name__ = purpose
    wrapped = idempotent_function(
        data_keyword_argument="event",
        persistence_store=persistence(purpose),
        config=config,
        key_prefix=f"reel.{purpose}",
    )(run)
    result: dict[str, Any] = wrapped(event=event)
    return result
