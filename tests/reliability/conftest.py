"""The reliability suite: bad input, hostile media, faults, security — bounded and repeatable.

Hypothesis runs derandomized (the same examples on every machine, so CI cannot flake on a
lucky draw) with a bounded number of examples per property; a failure prints its example."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "reel",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("reel")
