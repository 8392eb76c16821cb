"""The resolved render plan: what one recipient's video is, with nothing left to decide."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.template.lexicon import LexiconWord
from chalicelib.template.model import (
    Background,
    Canvas,
    ChartLayer,
    ImageLayer,
    LottieLayer,
    Music,
    ShapeLayer,
    Strict,
    SvgLayer,
    TextLayer,
    TextStyle,
    Transition,
    VideoLayer,
)

VisualLayer = TextLayer | ImageLayer | VideoLayer | ShapeLayer | ChartLayer | SvgLayer | LottieLayer


class PlanLayer(Strict):
    """A visible layer with text interpolated, style resolved and paths made absolute."""

    layer: VisualLayer
    style: TextStyle | None = None
    start: float
    end: float
    resolved: dict[str, Any] = Field(
        default_factory=dict,
        description="what a motion layer drew from the record: a chart's numbers and labels, "
        "an SVG's {{ }} snippets and their texts, a Lottie's replacements (part of the keys)",
    )
    personal: bool = Field(
        description="what it draws depends on the record's values (a `when` alone does not: "
        "a layer that is there looks the same for everyone who has it)"
    )


class PlanScene(Strict):
    id: str
    start: float = Field(description="seconds on the video's timeline")
    duration: float
    background: Background
    layers: list[PlanLayer]
    transition_in: Transition
    transition_out: Transition
    personal: bool = Field(description="its background or one of its layers is personal")


class AudioCue(Strict):
    """An audio layer placed on the video's timeline."""

    src: str
    start: float
    duration: float
    volume: float
    fade_in: float
    fade_out: float


class VoiceMark(Strict):
    """A word or sentence of a spoken line: when it starts in the clip (seconds)."""

    kind: str
    time: float
    text: str


class VoiceCue(Strict):
    """A voice layer placed on the timeline; `clip` and what follows are set once spoken."""

    field: str = Field(description="the layer's path: what an error about it names")
    scene: str
    text: str
    ssml: bool
    voice: str | dict[str, str]
    rate: float
    pitch: float
    volume: float
    start: float = Field(description="seconds on the video's timeline")
    window: float = Field(description="seconds the line may take")
    overflow: str
    personal: bool
    caption: bool
    locale: str
    clip: str | None = Field(None, description="the spoken clip's key in the segment cache")
    src: str | None = Field(None, description="a local file of the clip")
    duration: float = 0.0
    tempo: float = Field(1.0, description="played this much faster to fit (overflow: speed)")
    marks: list[VoiceMark] = Field(default_factory=list)


class RenderPlan(Strict):
    """Template + scene library + record, resolved. Same plan → same video."""

    template_id: str
    template_version: str
    canvas: Canvas
    scenes: list[PlanScene]
    music: Music
    cues: list[AudioCue]
    duration: float
    poster_time: float
    record: dict[str, Any] = Field(description="the coerced values, JSON-shaped")
    voices: list[VoiceCue] = Field(default_factory=list, description="voice-over lines")
    locale: str = Field("en_US", description="the locale chosen for the record")
    fallbacks: list[str] = Field(
        default_factory=list,
        description="translation ids this locale lacks: said in the template's locale",
    )
    lexicon: list[LexiconWord] = Field(
        default_factory=list, description="the campaign's pronunciations the lines use"
    )
