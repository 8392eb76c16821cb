"""The reports of interactions and experiments (tracking/experiments.py computes them; the
campaign's analytics carry them)."""

from __future__ import annotations

from pydantic import Field

from chalicelib.template.model import Strict


class InteractionStats(Strict):
    id: str
    type: str
    shown: int = Field(ge=0, description="recipients (or anonymous views) who saw it")
    clicked: int = Field(ge=0, description="who clicked it, chose or sent it")
    click_through: float = Field(ge=0, description="clicked / shown (0 when nobody saw it)")
    choices: dict[str, int] = Field(default_factory=dict, description="choice: option → who")


class SceneDropOff(Strict):
    scene: str
    reached: int = Field(ge=0)
    stopped: int = Field(ge=0, description="stopped inside this scene, short of the end")
    drop_off: float = Field(ge=0, le=1, description="stopped / reached")


class VariantStats(Strict):
    id: str
    sent: int
    opened: int
    played: int
    completed: int
    clicked: int = Field(description="clicked the page's call to action")
    interacted: int = Field(description="clicked, chose or answered an interaction")
    rate: float = Field(description="the experiment's metric: who did it / sent")
    low: float = Field(description="95 % credible interval of the rate: low end")
    high: float
    p_beats_control: float | None = Field(None, description="None for the control itself")
    p_value: float | None = Field(None, description="two-proportion z-test against the control")


class ExperimentReport(Strict):
    id: str
    metric: str
    control: str
    variants: list[VariantStats]
    leader: str
    enough_data: bool
    verdict: str


# ── statistics (exact, in the standard library: scipy is the tests' oracle) ───────────────
# scipy with numpy is some 215 MB unzipped: the API's Lambda layer would pass Lambda's 250 MB
# limit (infra/deps.py checks it). These closed forms and one continued fraction are checked
# against scipy.stats in tests/unit/test_experiment_stats.py.
