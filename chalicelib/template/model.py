"""The template model (pydantic v2): the single schema for templates and scene-library files."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from babel.dates import format_date
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
IDENT = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
MAX_IDENT = 100  # ids become file and blob names


class Strict(BaseModel):
    """Base of every template model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def normalize_color(value: str) -> str:
    """'#abc' | '#aabbcc' | '#aabbccdd' -> lower-case '#rrggbb[aa]'; raises ValueError otherwise."""
    if not isinstance(value, str) or not HEX_COLOR.match(value.strip()):
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"not a colour: {shown} (use #rgb, #rrggbb or #rrggbbaa)")
    hexpart = value.strip()[1:].lower()
    if len(hexpart) == 3:
        hexpart = "".join(c * 2 for c in hexpart)
    return "#" + hexpart


Color = Annotated[str, Field(description="#rgb, #rrggbb or #rrggbbaa, or {{ a colour variable }}")]


def _check_date_format(fmt: str) -> None:
    # Some CLDR fields need a time or a time zone (zzzz, A, B): a date cannot fill them, and
    # babel fails with AttributeError when it tries; refuse them here, not at the first render.
    try:
        format_date(dt.date(2026, 1, 31), format=fmt, locale="en_US")
    except (ValueError, AttributeError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"format {fmt[:40]!r} is not a CLDR date format: {exc}") from None


# ── canvas and variables ────────────────────────────────────────────────────────────────────


class Canvas(Strict):
    width: int = Field(1280, ge=16, le=3840, multiple_of=2)
    height: int = Field(720, ge=16, le=2160, multiple_of=2)
    fps: int = Field(30, ge=1, le=60)


class VarType(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    image = "image"
    video = "video"
    audio = "audio"
    color = "color"
    boolean = "boolean"
    enum = "enum"
    numbers = "numbers"  # a list of numbers (a chart's values): a JSON list or '1;2;3'


class Variable(Strict):
    """A typed variable of the template, filled from each data record."""

    type: VarType
    required: bool = False
    default: Any = None
    description: str | None = None
    max_length: int | None = Field(None, ge=1, description="text: longest value accepted")
    min: float | None = Field(None, description="number: smallest value accepted")
    max: float | None = Field(None, description="number: largest value accepted")
    values: list[str] | None = Field(None, description="enum: the allowed values")
    format: str | None = Field(
        None, description="date: output format, 'short'|'medium'|'long'|'full' or a CLDR pattern"
    )
    locale: str | None = Field(None, description="date/number: CLDR locale, e.g. en_US, fr_FR")
    input_format: str | None = Field(
        None, description="date: strptime format of incoming values (default ISO 8601)"
    )

    @model_validator(mode="after")
    def _per_type(self) -> Variable:
        t = self.type
        if self.max_length is not None and t is not VarType.text:
            raise ValueError("max_length applies to text variables only")
        if (self.min is not None or self.max is not None) and t not in (
            VarType.number,
            VarType.numbers,
        ):
            raise ValueError("min/max apply to number(s) variables only")
        if t is VarType.enum and not self.values:
            raise ValueError("an enum variable needs a non-empty 'values' list")
        if t is not VarType.enum and self.values is not None:
            raise ValueError("values applies to enum variables only")
        if (self.format or self.input_format) and t is not VarType.date:
            raise ValueError("format/input_format apply to date variables only")
        if self.format is not None:
            _check_date_format(self.format)
        if self.required and self.default is not None:
            raise ValueError("a required variable cannot have a default")
        return self


# ── styles, animations, transitions ────────────────────────────────────────────────────────


class TextStyle(Strict):
    size: int = Field(48, ge=4, le=1000, description="preferred font size in canvas pixels")
    color: Color = "#ffffff"
    weight: int = Field(700, ge=100, le=900)
    align: Literal["left", "center", "right"] = "center"
    valign: Literal["top", "middle", "bottom"] = "middle"
    line_spacing: float = Field(1.2, ge=0.8, le=3)
    stroke_width: int = Field(0, ge=0, le=20)
    stroke_color: Color = "#000000"
    shadow: bool = False

    @field_validator("color", "stroke_color")
    @classmethod
    def _color(cls, v: str) -> str:
        return v if "{{" in v else normalize_color(v)


class AnimationKind(StrEnum):
    fade = "fade"
    slide_left = "slide_left"  # moves leftwards: enters from the right, exits to the left
    slide_right = "slide_right"
    slide_up = "slide_up"
    slide_down = "slide_down"


class Animation(Strict):
    type: AnimationKind
    duration: float = Field(0.5, gt=0, le=10)


def _animation(v: Any) -> Any:
    return {"type": v} if isinstance(v, str) else v


# `enter: fade` is short for `enter: {type: fade}`.
AnimationSpec = Annotated[
    Animation | None,
    BeforeValidator(_animation, json_schema_input_type=Animation | AnimationKind | None),
]


class TransitionKind(StrEnum):
    cut = "cut"
    fade = "fade"  # fade through black
    crossfade = "crossfade"


class Transition(Strict):
    type: TransitionKind = TransitionKind.cut
    duration: float = Field(0.5, ge=0, le=5)


# ── layers ─────────────────────────────────────────────────────────────────────────────────


class Fit(StrEnum):
    contain = "contain"
    cover = "cover"
    circle = "circle"  # cover, then a circular mask (images only)
    stretch = "stretch"


Position = tuple[float, float]


class LayerBase(Strict):
    id: str | None = None
    when: str | None = Field(None, description="JMESPath on the record; the layer shows if truthy")
    at: Position = Field(
        (0.5, 0.5), description="centre of the layer, as fractions of the canvas (x, y)"
    )
    start: float = Field(0, ge=0, description="seconds after the scene starts")
    duration: float | None = Field(None, gt=0, description="seconds; default: to the scene's end")
    z: int = Field(0, description="stacking order; higher draws on top")
    enter: AnimationSpec = None
    exit: AnimationSpec = None
    opacity: float = Field(1.0, ge=0, le=1)

    @field_validator("at")
    @classmethod
    def _at(cls, v: Position) -> Position:
        if not all(-1 <= c <= 2 for c in v):
            raise ValueError("at is a fraction of the canvas: each coordinate in [-1, 2]")
        return v


def _size(v: Any) -> Any:
    return (v, v) if isinstance(v, int) and not isinstance(v, bool) else v


# `size: 200` is short for `size: [200, 200]`.
Size = Annotated[
    tuple[Annotated[int, Field(ge=2, le=8000)], Annotated[int, Field(ge=2, le=8000)]],
    BeforeValidator(_size, json_schema_input_type=tuple[int, int] | int),
]


class TextLayer(LayerBase):
    type: Literal["text"] = "text"
    text: str = Field(description="the text; may interpolate variables: 'Hi {{ first_name }}!'")
    style: str | None = Field(None, description="name of a style in the template's `styles`")
    font: TextStyle | None = Field(None, description="inline style (overrides `style`)")
    size: Size = Field((1000, 160), description="the text box in canvas pixels (w, h)")
    caption: bool = Field(True, description="include this text in the captions track")


class ImageLayer(LayerBase):
    type: Literal["image"] = "image"
    src: str = Field(description="asset path relative to the campaign root, or {{ a variable }}")
    fit: Fit = Fit.contain
    size: Size = Field((320, 320), description="box in canvas pixels (w, h), or one int")


class VideoLayer(LayerBase):
    type: Literal["video"] = "video"
    src: str
    fit: Fit = Fit.cover
    size: Size = (640, 360)
    trim: tuple[float, float] | None = Field(None, description="(from, to) seconds of the source")
    loop: bool = True

    @model_validator(mode="after")
    def _no_circle(self) -> VideoLayer:
        if self.fit is Fit.circle:
            raise ValueError("fit 'circle' is for images; use contain, cover or stretch")
        return self


class ShapeLayer(LayerBase):
    type: Literal["shape"] = "shape"
    shape: Literal["rect", "circle"] = "rect"
    color: Color = "#ffffff"
    size: Size = (200, 200)
    radius: int = Field(0, ge=0, description="corner radius of a rect, in canvas pixels")

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        return v if "{{" in v else normalize_color(v)


class AudioLayer(LayerBase):
    type: Literal["audio"] = "audio"
    src: str
    volume: float = Field(1.0, ge=0, le=4)
    fade_in: float = Field(0, ge=0)
    fade_out: float = Field(0, ge=0)


# ── voice-over (issue 20): a spoken line, its engine's voice, what to do when it runs long ──


class Overflow(StrEnum):
    speed = "speed"  # spoken up to 15 % faster to fit its window
    extend = "extend"  # the scene grows to hold it
    error = "error"  # the recipient fails, naming the layer


MAX_SPEEDUP = 1.15  # `overflow: speed` goes no faster than this

VoiceName = Annotated[
    str | dict[str, str],
    Field(
        description="the engine's voice ('en-us' for espeak, 'Joanna' for Polly), or one per "
        "engine: {espeak: fr, polly: Lea}; default: the template's `voices` for the locale"
    ),
]


class VoiceLayer(LayerBase):
    type: Literal["voice"] = "voice"
    text: str | None = Field(None, max_length=3000, description="the line; may use {{ }}")
    ssml: str | None = Field(None, max_length=3000, description="or: SSML (Polly, espeak)")
    voice: VoiceName | None = None
    rate: float = Field(1.0, ge=0.5, le=2.0, description="pace: 1 is the engine's normal")
    pitch: float = Field(0.0, ge=-12, le=12, description="semitones (espeak)")
    volume: float = Field(1.0, ge=0, le=4, description="gain over the normalized voice")
    overflow: Overflow = Field(
        Overflow.speed, description="a line longer than its window: speed (≤ +15 %), extend, error"
    )
    caption: bool = Field(True, description="include the line in the captions track")

    @model_validator(mode="after")
    def _one_line(self) -> VoiceLayer:
        if (self.text is None) == (self.ssml is None):
            raise ValueError("a voice layer has exactly one of: text, ssml")
        return self


# ── motion layers: charts, SVG and Lottie (render/chart.py, render/svg.py, render/lottie.py) ──

MAX_CHART_VALUES = 60  # a chart on a video is read in a second or two: more is noise
MAX_LOTTIE_REPLACEMENTS = 50


class ChartKind(StrEnum):
    bar = "bar"
    line = "line"
    donut = "donut"
    progress = "progress"  # the first value against `max`
    counter = "counter"  # the first value, counted up


class ChartStyle(Strict):
    """How a chart looks; sizes in canvas pixels."""

    color: Color = "#2f6fed"
    colors: list[Color] | None = Field(
        None, max_length=MAX_CHART_VALUES, description="per value (donut slices, bars)"
    )
    track: Color = Field("#ffffff33", description="the empty part of a progress bar or donut")
    text_color: Color = "#ffffff"
    font_size: int = Field(28, ge=6, le=400)
    weight: int = Field(700, ge=100, le=900)
    line_width: int = Field(6, ge=1, le=60)
    decimals: int | None = Field(None, ge=0, le=6, description="default: as the numbers come")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="format as money")
    show_values: bool = Field(True, description="write the numbers on the chart")

    @field_validator("color", "track", "text_color")
    @classmethod
    def _color(cls, v: str) -> str:
        return v if "{{" in v else normalize_color(v)

    @field_validator("colors")
    @classmethod
    def _colors(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [c if "{{" in c else normalize_color(c) for c in v]


class ChartLayer(LayerBase):
    """A chart of the recipient's own numbers, animated as it enters."""

    type: Literal["chart"] = "chart"
    kind: ChartKind = ChartKind.bar
    values: str | list[float] = Field(
        description="numbers, or '{{ a variable }}' holding a list (or '1;2;3')"
    )
    labels: str | list[str] | None = Field(
        None, description="one label per value, or '{{ a variable }}' holding them"
    )
    max: float | None = Field(None, gt=0, description="the scale's top (default: the largest)")
    unit: str | None = Field(None, max_length=20, description="written after each number")
    style: ChartStyle = ChartStyle()
    size: Size = (800, 400)
    animate: float = Field(1.0, ge=0, le=10, description="seconds the chart takes to build")
    locale: str | None = Field(None, description="number format; default: the template's")

    @field_validator("values")
    @classmethod
    def _values(cls, v: str | list[float]) -> str | list[float]:
        if isinstance(v, list) and len(v) > MAX_CHART_VALUES:
            raise ValueError(f"{len(v)} values; a chart takes at most {MAX_CHART_VALUES}")
        if isinstance(v, str) and "{{" not in v:
            raise ValueError("values is a list of numbers or '{{ a variable }}'")
        return v


class SvgLayer(LayerBase):
    """An SVG file of the campaign, drawn crisp at the layer's size."""

    type: Literal["svg"] = "svg"
    src: str = Field(description="an .svg under the campaign folder ({{ }} only inside it)")
    size: Size = (320, 320)
    fit: Literal["contain", "stretch"] = "contain"

    @field_validator("src")
    @classmethod
    def _src(cls, v: str) -> str:
        if "{{" in v:
            raise ValueError("an SVG is a file of the campaign: its path cannot come from data")
        return v


class LottiePlay(Strict):
    model_config = Strict.model_config | {"serialize_by_alias": True, "populate_by_name": True}

    from_: int | str | None = Field(None, alias="from", description="a frame or a marker name")
    to: int | str | None = Field(None, description="a frame or a marker name (its end)")


class LottieLayer(LayerBase):
    """A Bodymovin (Lottie) animation drawn frame by frame, with optional replacements."""

    type: Literal["lottie"] = "lottie"
    src: str = Field(description="a Lottie .json (or .lottie) under the campaign folder")
    size: Size = (400, 400)
    speed: float = Field(1.0, gt=0, le=10)
    loop: bool = False
    play: LottiePlay | None = None
    texts: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_LOTTIE_REPLACEMENTS,
        description="text layer name → new text (may use {{ }})",
    )
    colors: dict[str, Color] = Field(
        default_factory=dict,
        max_length=MAX_LOTTIE_REPLACEMENTS,
        description="keypath ('Layer.Group.Fill 1') → colour (may use {{ }})",
    )
    images: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_LOTTIE_REPLACEMENTS,
        description="image asset id → image file (may use {{ }})",
    )

    @field_validator("src")
    @classmethod
    def _src(cls, v: str) -> str:
        if "{{" in v:
            raise ValueError("a Lottie is a file of the campaign: its path cannot come from data")
        return v

    @field_validator("colors")
    @classmethod
    def _colors(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: c if "{{" in c else normalize_color(c) for k, c in v.items()}


MOTION_TAGS = frozenset({"chart", "svg", "lottie"})

Layer = Annotated[
    TextLayer
    | ImageLayer
    | VideoLayer
    | ShapeLayer
    | AudioLayer
    | ChartLayer
    | SvgLayer
    | LottieLayer
    | VoiceLayer,
    Field(discriminator="type"),
]
LAYER_TAGS = frozenset({"text", "image", "video", "shape", "audio", "voice"}) | MOTION_TAGS


# ── scenes ─────────────────────────────────────────────────────────────────────────────────


class Background(Strict):
    """Exactly one of color, image or video."""

    color: Color | None = None
    image: str | None = None
    video: str | None = None
    fit: Fit = Fit.cover
    loop: bool = True
    trim: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Background:
        given = [k for k in ("color", "image", "video") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a background has exactly one of: color, image, video")
        if self.color and "{{" not in self.color:
            object.__setattr__(self, "color", normalize_color(self.color))
        if self.fit is Fit.circle:
            raise ValueError("fit 'circle' is not for backgrounds")
        return self


class Scene(Strict):
    """A scene: a background and timed layers. Lives inline or in the scene library."""

    id: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    duration: float = Field(gt=0, le=600)
    when: str | None = Field(None, description="JMESPath on the record; the scene plays if truthy")
    background: Background = Background(color="#000000")
    layers: list[Layer] = Field(default_factory=list)
    transition: Transition | None = Field(
        None, description="transition from this scene into the next (default: the template's)"
    )


class SceneRef(Strict):
    """A scene taken from the scene library by id, with optional overrides."""

    use: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    when: str | None = None
    duration: float | None = Field(None, gt=0, le=600)
    transition: Transition | None = None


def _scene_tag(v: Any) -> str:
    if isinstance(v, dict):
        return "ref" if "use" in v else "scene"
    return "ref" if isinstance(v, SceneRef) else "scene"


SceneEntry = Annotated[
    Annotated[SceneRef, Tag("ref")] | Annotated[Scene, Tag("scene")],
    Discriminator(_scene_tag),
]
SCENE_TAGS = frozenset({"ref", "scene"})


# ── interactions, chapters and experiments (drawn by the page's player, never burned in) ───


class Action(Strict):
    """What an interaction does: exactly one of open (a URL), chapter, seek or set."""

    open: str | None = Field(
        None, min_length=1, max_length=2000, description="http(s), mailto: or a path; may use {{ }}"
    )
    chapter: str | None = Field(None, pattern=IDENT, description="jump to this chapter")
    seek: float | None = Field(None, ge=0, description="jump to this time, seconds into the video")
    set: dict[str, str] | None = Field(
        None, description="set variables of the recipient's record: {variable: value}"
    )

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ("open", "chapter", "seek", "set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an action has exactly one of: open, chapter, seek, set")
        return self


class InteractionBase(Strict):
    id: str = Field(pattern=IDENT, max_length=MAX_IDENT, description="named in its events")
    scene: str = Field(pattern=IDENT, description="the scene it is timed in")
    start: float = Field(0, ge=0, description="seconds after the scene starts")
    duration: float | None = Field(None, gt=0, description="seconds; default: to the scene's end")
    when: str | None = Field(None, description="JMESPath on the record; shown if truthy")
    at: Position | None = Field(
        None, description="centre, as fractions of the canvas (x, y); default: the player's place"
    )

    @field_validator("at")
    @classmethod
    def _at(cls, v: Position | None) -> Position | None:
        if v is not None and not all(0 <= c <= 1 for c in v):
            raise ValueError("at is a fraction of the canvas: each coordinate in [0, 1]")
        return v


class ButtonInteraction(InteractionBase):
    type: Literal["button"] = "button"
    label: str = Field(min_length=1, max_length=200, description="may use {{ }}")
    action: Action


class HotspotInteraction(InteractionBase):
    type: Literal["hotspot"] = "hotspot"
    label: str = Field(min_length=1, max_length=200, description="its name for screen readers")
    size: Size = Field(description="the clickable box in canvas pixels (w, h), or one int")
    action: Action


class ChoiceOption(Strict):
    label: str = Field(min_length=1, max_length=200, description="may use {{ }}")
    value: str = Field(min_length=1, max_length=200, description="what the variable is set to")
    chapter: str | None = Field(
        None, pattern=IDENT, description="on the MP4, the chapter this option jumps to"
    )


class ChoiceInteraction(InteractionBase):
    type: Literal["choice"] = "choice"
    label: str = Field(min_length=1, max_length=300, description="the question; may use {{ }}")
    variable: str = Field(description="the record's variable the chosen option's value sets")
    options: list[ChoiceOption] = Field(min_length=2, max_length=4)

    @field_validator("options")
    @classmethod
    def _unique(cls, v: list[ChoiceOption]) -> list[ChoiceOption]:
        values = [o.value for o in v]
        if len(set(values)) != len(values):
            raise ValueError("option values must be unique")
        return v


class FormField(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_IDENT)
    type: Literal["text", "email", "single", "multiple"] = "text"
    label: str = Field(min_length=1, max_length=300, description="may use {{ }}")
    required: bool = False
    options: list[str] | None = Field(None, description="single/multiple: the allowed answers")
    max_length: int = Field(500, ge=1, le=5000, description="text: longest answer accepted")

    @model_validator(mode="after")
    def _options(self) -> FormField:
        choosing = self.type in ("single", "multiple")
        if choosing and not self.options:
            raise ValueError(f"a {self.type} field needs a non-empty 'options' list")
        if not choosing and self.options is not None:
            raise ValueError("options apply to single and multiple fields only")
        if self.options is not None and len(set(self.options)) != len(self.options):
            raise ValueError("options must be unique")
        return self


class FormInteraction(InteractionBase):
    type: Literal["form"] = "form"
    label: str = Field(min_length=1, max_length=300, description="the form's title; may use {{ }}")
    submit: str = Field("Send", min_length=1, max_length=100, description="the button's label")
    fields: list[FormField] = Field(min_length=1, max_length=20)

    @field_validator("fields")
    @classmethod
    def _unique(cls, v: list[FormField]) -> list[FormField]:
        names = [f.name for f in v]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"field names must be unique: {', '.join(dupes)}")
        return v


Interaction = Annotated[
    ButtonInteraction | HotspotInteraction | ChoiceInteraction | FormInteraction,
    Field(discriminator="type"),
]
INTERACTION_TAGS = frozenset({"button", "hotspot", "choice", "form"})


class Chapter(Strict):
    """A named time of the video: in the player's chapters menu and on its progress bar."""

    id: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    title: str = Field(min_length=1, max_length=200, description="may use {{ }}")
    scene: str | None = Field(None, pattern=IDENT, description="starts with this scene")
    time: float | None = Field(
        None, ge=0, description="seconds into the scene (with `scene`) or into the video"
    )

    @model_validator(mode="after")
    def _where(self) -> Chapter:
        if self.scene is None and self.time is None:
            raise ValueError("a chapter needs a scene, a time, or both")
        return self


class Variant(Strict):
    """One arm of an experiment: what it changes (nothing: the control as written)."""

    id: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    weight: float = Field(1.0, ge=0, description="its share of recipients, relative to the others")
    scenes: dict[str, str] = Field(
        default_factory=dict, description="scene id → the library scene played instead"
    )
    texts: dict[str, str] = Field(
        default_factory=dict, description="text layer id → its text in this variant (may use {{ }})"
    )
    cta: Cta | None = Field(None, description="the page's call to action in this variant")
    interactions: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="interaction id → fields changed (label, action…)"
    )


class Experiment(Strict):
    """An A/B(/n) test: each recipient gets one variant, by a hash of (experiment, recipient)."""

    id: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    control: str | None = Field(None, description="the variant compared against (default: first)")
    metric: Literal["clicked", "completed", "interacted", "played"] = Field(
        "clicked", description="what decides the winner: the share of recipients who did it"
    )
    variants: list[Variant] = Field(min_length=2, max_length=10)


FONT_TYPES = {".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".otf": "font/otf"}
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


class Theme(Strict):
    """The landing page's brand: colours, a logo and a font file from the campaign folder."""

    accent: Color | None = Field(None, description="buttons and marks")
    accent_ink: Color | None = Field(None, description="text on the accent colour")
    background: Color | None = None
    text: Color | None = None
    logo: str | None = Field(None, description="an image in the campaign (png, jpg, webp)")
    logo_alt: str = Field("", max_length=200, description="the logo's text for screen readers")
    font: str | None = Field(
        None, description="a font file in the campaign (woff2, woff, ttf, otf)"
    )

    @field_validator("accent", "accent_ink", "background", "text")
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        return None if v is None else normalize_color(v)


# ── template ───────────────────────────────────────────────────────────────────────────────


class Music(Strict):
    music: str | None = Field(None, description="a music bed, looped/trimmed to the video")
    volume: float = Field(1.0, ge=0, le=4)
    fade_in: float = Field(0.0, ge=0)
    fade_out: float = Field(1.0, ge=0)


class Poster(Strict):
    time: float | None = Field(None, ge=0, description="seconds into the video")
    scene: str | None = Field(None, description="or: the middle of this scene")


class Cta(Strict):
    label: str = Field(min_length=1, max_length=200, description="button text; may use {{ }}")
    url: str = Field(min_length=1, max_length=2000, description="http(s), mailto: or a path")


class PageSpec(Strict):
    """The recipient's landing page: texts may be personalized with {{ expressions }}."""

    title: str | None = Field(None, max_length=300, description="default: the template's name")
    description: str | None = Field(None, max_length=1000, description="for link previews")
    cta: Cta | None = None
    theme: Theme | None = Field(None, description="brand colours, logo and font of the page")
    consent: Literal["ask"] | None = Field(
        None,
        description="ask: a banner asks the viewer; no identified event is sent before they "
        "accept (recipients whose record already says yes or no are not asked)",
    )


class TrackingMode(StrEnum):
    identified = "identified"  # events tied to the recipient, relayed to the CRM: with consent
    anonymous = "anonymous"  # counts per campaign, scene and interaction; nothing per person
    off = "off"  # no events at all


class TrackingSpec(Strict):
    """How the campaign measures its pages (privacy by design: see the README's Privacy)."""

    mode: Annotated[
        TrackingMode,
        # YAML 1.1 reads a bare `off` as false: `mode: off` means what it says.
        BeforeValidator(lambda v: "off" if v is False else v, json_schema_input_type=TrackingMode),
    ] = Field(TrackingMode.identified, description="identified (with consent), anonymous, or off")
    require_consent: bool = Field(
        False,
        description="identified only with a consent on record (the mapping's `consent`) or "
        "given on the page; false: a recipient with no recorded answer counts as consenting "
        "(another lawful basis: the campaign's controller decides)",
    )
    honour_dnt: bool = Field(
        False, description="DNT: 1 makes the view anonymous, as Sec-GPC: 1 always does"
    )
    keep_aggregates: bool = Field(
        True,
        description="an erased recipient's events stay as anonymous events (the funnel keeps "
        "its counts); false: they are deleted",
    )


_PERIOD = re.compile(r"^\s*([0-9]{1,5})\s*(d|w|y)\s*$")
_PERIOD_DAYS = {"d": 1, "w": 7, "y": 365}


def period_days(value: str) -> int:
    """'365d' | '26w' | '1y' → days; ValueError otherwise."""
    match = _PERIOD.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) <= 0:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"not a retention period: {shown} (write e.g. 365d, 26w or 1y)")
    return int(match.group(1)) * _PERIOD_DAYS[match.group(2)]


def _period(v: Any) -> Any:
    if v is None:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        v = f"{v}d"
    period_days(v)
    return v.strip()


Period = Annotated[
    str | None,
    BeforeValidator(_period, json_schema_input_type=str | int | None),
    Field(description="days (365d), weeks (26w) or years (1y); none: kept until erased"),
]


class RetentionSpec(Strict):
    """How long the campaign keeps what it stores about a recipient."""

    events: Period = None
    media: Period = Field(None, description="personal videos, posters, GIFs and stream chunks")
    records: Period = Field(None, description="records, pages and batch sources")

    def days(self, what: str) -> int | None:
        value = getattr(self, what)
        return period_days(value) if value else None


class Template(Strict):
    """A video template: canvas, variables, styles, audio and an ordered list of scenes."""

    id: str = Field(pattern=IDENT, max_length=MAX_IDENT)
    version: str = "1"
    name: str | None = None
    locale: str = Field("en_US", description="CLDR locale for dates, numbers and currencies")
    canvas: Canvas = Canvas()
    library: str = Field(
        "scenes",
        max_length=200,
        description="scene-library directory, relative to the template",
    )
    variables: dict[str, Variable] = Field(default_factory=dict)
    styles: dict[str, TextStyle] = Field(default_factory=dict)
    audio: Music = Music()
    scenes: list[SceneEntry] = Field(min_length=1)
    transition: Transition = Field(Transition(), description="default transition between scenes")
    poster: Poster = Poster()
    page: PageSpec = PageSpec()
    tracking: TrackingSpec = TrackingSpec()
    retention: RetentionSpec = RetentionSpec()
    translations: dict[str, dict[str, Annotated[str, Field(max_length=3000)]]] = Field(
        default_factory=dict,
        description="strings by id, per locale ('fr_FR': {greeting: 'Bonjour {{ first_name }}'}), "
        "used as {{ t('greeting') }}; the record's `locale` chooses, `locale` is the fallback",
    )
    voices: dict[str, VoiceName] = Field(
        default_factory=dict,
        description="voice-over: the voice of each locale ('en_US': 'en-us'), for voice "
        "layers that name none; a language alone ('fr') serves every locale of it",
    )
    interactions: list[Interaction] = Field(
        default_factory=list, description="buttons, hotspots, choices and forms over the video"
    )
    chapters: list[Chapter] = Field(default_factory=list, description="named times of the video")
    experiments: list[Experiment] = Field(
        default_factory=list, description="variants of scenes, texts, the CTA or interactions"
    )

    @field_validator("variables")
    @classmethod
    def _var_names(cls, v: dict[str, Variable]) -> dict[str, Variable]:
        for name in v:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"variable name {name!r} must be an identifier ([A-Za-z_][\\w]*)")
        return v
