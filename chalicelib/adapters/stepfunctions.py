"""Orchestrator on AWS: a batch is a Step Functions execution, a render an async Lambda call."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient


class StepFunctionsOrchestrator:
    """Starts the batch state machine (one execution per batch, named after it) and invokes
    the render function with InvocationType=Event."""

    def __init__(
        self,
        sfn_client: SFNClient,
        lambda_client: LambdaClient,
        *,
        state_machine_arn: str,
        render_function: str,
    ) -> None:
        self.sfn = sfn_client
        self.lambda_ = lambda_client
        self.state_machine_arn = state_machine_arn
        self.render_function = render_function

    def start_batch(self, batch_id: str) -> None:
        # The execution name is the batch id, so a second start (an S3 event delivered twice,
        # a retried request) is refused by Step Functions instead of rendering the batch twice.
        try:
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=batch_id,
                input=json.dumps({"batch_id": batch_id}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise

    def start_render(self, render_id: str) -> None:
        self.lambda_.invoke(
            FunctionName=self.render_function,
            InvocationType="Event",
            Payload=json.dumps({"render_id": render_id}),
        )

    def resume(self) -> int:
        """Nothing to resume: executions and async invocations outlive any API instance."""
        return 0

    def wait(self, timeout: float | None = None) -> None:
        """Nothing runs in this process."""

    def close(self) -> None:
        """Nothing to stop."""
