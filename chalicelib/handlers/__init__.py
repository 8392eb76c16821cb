"""Lambda entry points: Powertools Logger, Tracer and idempotency shared by every handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from chalicelib import bootstrap

logger = Logger()
tracer = Tracer()

M = TypeVar("M", bound=BaseModel)


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
        persistence_store=bootstrap.idempotency(purpose),
        config=config,
        key_prefix=f"reel.{purpose}",
    )(run)
    result: dict[str, Any] = wrapped(event=event)
    return result
