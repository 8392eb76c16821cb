"""Binding (pure): template + scene library + data record → a resolved RenderPlan."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2.exceptions import TemplateError as JinjaError
from pydantic import ValidationError

from chalicelib.errors import DataError, Problem, TemplateError
from chalicelib.template.expr import (
    TRANSLATE,
    environment,
    evaluate_condition,
    has_expr,
    interpolate,
    is_rtl,
    language,
    template_variables,
)
from chalicelib.template.lexicon import LexiconWord, load_lexicon
from chalicelib.template.library import NOT_FETCHED, LoadedTemplate, resolve_asset
from chalicelib.template.model import (
    MAX_CHART_VALUES,
    AudioLayer,
    Background,
    ChartLayer,
    ChartStyle,
    ImageLayer,
    LottieLayer,
    Scene,
    ShapeLayer,
    SvgLayer,
    Template,
    TextLayer,
    TextStyle,
    Transition,
    TransitionKind,
    VarType,
    VideoLayer,
    VoiceLayer,
    normalize_color,
)
from chalicelib.template.motion import load_lottie, load_svg
from chalicelib.template.plan import AudioCue, PlanLayer, PlanScene, RenderPlan, VoiceCue
from chalicelib.template.values import (
    check_url,
    coerce,
    is_blank,
    numbers,
    to_json,
    url_scheme,
)

VisualSpec = TextLayer | ImageLayer | VideoLayer | ShapeLayer | ChartLayer | SvgLayer | LottieLayer
_WHOLE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)

CUT = Transition(type=TransitionKind.cut, duration=0)
MEDIA_TYPES = frozenset({VarType.image, VarType.video, VarType.audio})


def bind_values(
    lt: LoadedTemplate, record: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Coerce the record's fields per variable; return (values for text, JSON-shaped record).

    Fields no variable uses are ignored. Every bad field is reported, not just the first.
    """
    if not isinstance(record, Mapping):
        raise DataError("a data record is a JSON object of field: value")
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, var in lt.template.variables.items():
        raw = record.get(name)
        try:
            if is_blank(raw):
                if var.required:
                    raise ValueError("is required")
                values[name] = None if var.default is None else coerce(var, var.default)
            else:
                values[name] = coerce(var, raw)
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
    if problems:
        raise DataError("; ".join(map(str, problems)), field=problems[0].field, problems=problems)
    return values, {k: to_json(v) for k, v in values.items()}


def choose_locale(tpl: Template, requested: Any) -> str:
    """The locale of a record: its `locale` when the template has translations for it (or
    for its language: 'fr' or 'fr-CA' picks 'fr_FR'), else the template's."""
    if not isinstance(requested, str) or not requested.strip() or not tpl.translations:
        return tpl.locale
    wanted = requested.strip().replace("-", "_")
    for key in tpl.translations:
        if key.lower() == wanted.lower():
            return key
    lang = language(wanted)
    if lang == language(tpl.locale):
        return tpl.locale
    return next((k for k in tpl.translations if language(k) == lang), tpl.locale)


def with_translations(
    tpl: Template, values: dict[str, Any], locale: str, fallbacks: list[str]
) -> dict[str, Any]:
    """`values` with `t`: t('id') is the string of `locale`, else (counted in `fallbacks`) the
    template locale's, interpolated with the same values."""
    if not tpl.translations:
        return values
    own = tpl.translations.get(locale, {})
    default = tpl.translations.get(tpl.locale, {})

    def t(key: str) -> str:
        if key in own:
            text = own[key]
        elif key in default:
            fallbacks.append(key)
            text = default[key]
        else:
            raise ValueError(f"no translation {key!r}")
        return interpolate(text, values, locale)

    return {**values, TRANSLATE: t}


class _Binder:
    def __init__(
        self,
        lt: LoadedTemplate,
        values: dict[str, Any],
        record: dict[str, Any],
        from_data: frozenset[str] = frozenset(),
        locale: str | None = None,
    ):
        self.lt = lt
        self.tpl = lt.template
        self.locale = locale or self.tpl.locale
        self.fallbacks: list[str] = []
        self.values = with_translations(self.tpl, values, self.locale, self.fallbacks)
        self.record = record
        self.from_data = from_data  # the variables whose value the record gave (not a default)

    # Errors caused by the record are DataErrors naming the variable; the rest are the template's.
    def _fail(self, path: str, expr: str, reason: str) -> DataError | TemplateError:
        try:
            names = sorted(template_variables(expr, self.tpl.locale))
        except ValueError:
            names = []
        if names:
            return DataError(f"{reason} (at {path})", field=names[0])
        return TemplateError(reason, field=path)

    def text(self, path: str, text: str) -> str:
        try:
            return interpolate(text, self.values, self.locale)
        except ValueError as exc:
            raise self._fail(path, text, str(exc)) from exc

    def asset(self, path: str, ref: str) -> str:
        """A local asset made absolute (confined to the campaign folder), or a URL from data,
        kept as it is: `render.localize.localize` has it fetched before anything renders."""
        resolved = self.text(path, ref)
        if url_scheme(resolved) is not None and has_expr(ref):
            return self._remote(path, ref, resolved)
        try:
            return str(resolve_asset(self.lt.root, resolved))
        except ValueError as exc:
            raise self._fail(path, ref, str(exc)) from exc

    def _remote(self, path: str, ref: str, url: str) -> str:
        # Only the whole value of a media variable given by the record may be a URL: a URL the
        # template spells (a literal, a default, a prefix around a value) is never fetched.
        try:
            names = sorted(template_variables(ref, self.tpl.locale))
        except ValueError:
            names = []
        source = next(
            (
                n
                for n in names
                if n in self.from_data
                and self.tpl.variables[n].type in MEDIA_TYPES
                and self.values.get(n) == url
            ),
            None,
        )
        if source is None:
            given = [n for n in names if n in self.from_data]
            if given:
                raise DataError(
                    f"a URL may only be the whole value of an image, video or audio variable "
                    f"(at {path})",
                    field=given[0],
                )
            raise TemplateError(NOT_FETCHED, field=path)
        try:
            return check_url(url)
        except ValueError as exc:
            raise DataError(f"{exc} (at {path})", field=source) from exc

    def value(self, path: str, text: str) -> Any:
        """What `{{ expr }}` evaluates to (a list stays a list); other text is interpolated."""
        match = _WHOLE_EXPR.match(text)
        if match is None or "{{" in match.group(1):
            return self.text(path, text)
        try:
            template_variables(text, self.tpl.locale)  # refuses statements and bad syntax
            return environment(self.tpl.locale).compile_expression(match.group(1))(**self.values)
        except (JinjaError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            raise self._fail(path, text, f"cannot evaluate {text[:80]!r}: {exc}") from exc

    def chart(self, path: str, layer: ChartLayer) -> tuple[dict[str, Any], bool]:
        """A chart's numbers and labels from the record; (update, personal)."""
        update: dict[str, Any] = {}
        personal = False
        if isinstance(layer.values, str):
            raw = self.value(f"{path}.values", layer.values)
            try:
                update["values"] = numbers(raw, MAX_CHART_VALUES)
            except ValueError as exc:
                raise self._fail(f"{path}.values", layer.values, str(exc)) from exc
            personal = True
        if isinstance(layer.labels, str):
            raw = self.value(f"{path}.labels", layer.labels)
            items = raw.split(";") if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or len(items) > MAX_CHART_VALUES:
                reason = f"labels are a list of at most {MAX_CHART_VALUES} texts (or 'a;b;c')"
                raise self._fail(f"{path}.labels", layer.labels, reason)
            update["labels"] = [str(x).strip()[:100] for x in items]
            personal = personal or has_expr(layer.labels)
        elif layer.labels is not None:
            update["labels"] = [
                self.text(f"{path}.labels[{i}]", t)[:100] for i, t in enumerate(layer.labels)
            ]
            personal = personal or any(has_expr(t) for t in layer.labels)
        style = layer.style
        colors = [style.color, style.track, style.text_color, *(style.colors or [])]
        if any(has_expr(c) for c in colors):
            personal = True
            dumped = style.model_dump()
            for key in ("color", "track", "text_color"):
                dumped[key] = self.text(f"{path}.style.{key}", dumped[key])
            if style.colors:
                dumped["colors"] = [
                    self.text(f"{path}.style.colors[{i}]", c) for i, c in enumerate(style.colors)
                ]
            try:
                update["style"] = ChartStyle.model_validate(dumped)
            except ValidationError as exc:
                raise self._fail(f"{path}.style", " ".join(colors), str(exc)) from exc
        if layer.locale is None:
            update["locale"] = self.tpl.locale
        return update, personal

    def svg(self, path: str, layer: SvgLayer) -> tuple[dict[str, Any], dict[str, str], bool]:
        """The SVG's path made absolute, checked, and its `{{ }}` snippets filled."""
        src = self.asset(f"{path}.src", layer.src)
        doc = load_svg(Path(src), f"{path}.src")
        resolved: dict[str, str] = {}
        for snippet in doc.snippets:
            value = self.text(f"{path}.src", snippet)
            if snippet in doc.fills:  # a fill colour stays a colour
                try:
                    value = normalize_color(value)
                except ValueError as exc:
                    raise self._fail(f"{path}.src", snippet, str(exc)) from exc
            resolved[snippet] = value
        return {"src": src}, resolved, bool(doc.snippets)

    def lottie(self, path: str, layer: LottieLayer) -> tuple[dict[str, Any], bool]:
        """The Lottie checked, its replacements filled (texts, colours, image files)."""
        src = self.asset(f"{path}.src", layer.src)
        doc = load_lottie(Path(src), f"{path}.src")
        for name in layer.texts:
            if name not in doc.text_layers:
                raise TemplateError(f"no text layer named {name!r}", field=f"{path}.texts")
        for image_id in layer.images:
            if image_id not in doc.image_ids:
                raise TemplateError(f"no image asset {image_id!r}", field=f"{path}.images")
        for image_id, where in doc.external_images.items():
            if image_id not in layer.images:
                raise TemplateError(
                    f"{Path(src).name}: {where}: an image file beside the animation is not "
                    "read: embed it (a data: URI) or give it with `images:`",
                    field=f"{path}.src",
                )
        texts = {k: self.text(f"{path}.texts.{k}", v) for k, v in layer.texts.items()}
        colors = {}
        for keypath, color in layer.colors.items():
            value = self.text(f"{path}.colors.{keypath}", color)
            try:
                colors[keypath] = normalize_color(value)
            except ValueError as exc:
                raise self._fail(f"{path}.colors.{keypath}", color, str(exc)) from exc
        images = {k: self.asset(f"{path}.images.{k}", v) for k, v in layer.images.items()}
        replaced = [*layer.texts.values(), *layer.colors.values(), *layer.images.values()]
        update = {"src": src, "texts": texts, "colors": colors, "images": images}
        return update, any(has_expr(v) for v in replaced)

    def when(self, path: str, expr: str | None) -> bool:
        if expr is None:
            return True
        try:
            return evaluate_condition(expr, self.record)
        except ValueError as exc:
            raise TemplateError(str(exc), field=path) from exc

    def background(self, path: str, bg: Background) -> tuple[Background, bool]:
        update: dict[str, Any] = {}
        if bg.color:
            color = self.text(f"{path}.color", bg.color)
            update["color"] = color
        if bg.image:
            update["image"] = self.asset(f"{path}.image", bg.image)
        if bg.video:
            update["video"] = self.asset(f"{path}.video", bg.video)
        personal = any(has_expr(v) for v in (bg.color, bg.image, bg.video) if v)
        resolved = Background.model_validate({**bg.model_dump(), **update})
        return resolved, personal

    def voice(self, path: str, layer: VoiceLayer, scene: Scene, cursor: float) -> VoiceCue:
        line = layer.text if layer.text is not None else layer.ssml
        assert line is not None  # the model holds exactly one
        end = (
            scene.duration
            if layer.duration is None
            else min(scene.duration, layer.start + layer.duration)
        )
        return VoiceCue(
            field=path,
            scene=scene.id,
            text=self.text(f"{path}.{'text' if layer.text is not None else 'ssml'}", line),
            ssml=layer.ssml is not None,
            voice=voice_for(self.tpl, self.locale, layer.voice),
            rate=layer.rate,
            pitch=layer.pitch,
            volume=layer.volume,
            start=round(cursor + layer.start, 6),
            window=round(end - layer.start, 6),
            overflow=layer.overflow.value,
            personal=has_expr(line),
            caption=layer.caption,
            locale=self.locale,
        )

    def layer(self, path: str, layer: VisualSpec, scene: Scene) -> PlanLayer:
        update: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        style: TextStyle | None = None
        personal = False
        if isinstance(layer, TextLayer):
            update["text"] = self.text(f"{path}.text", layer.text)
            personal = personal or has_expr(layer.text)
            style = layer.font or (self.tpl.styles[layer.style] if layer.style else TextStyle())
            if is_rtl(self.locale) and "align" not in style.model_fields_set:
                style = style.model_copy(update={"align": "right"})  # unless the style says
                personal = personal or not is_rtl(self.tpl.locale)  # differs by locale
            if has_expr(style.color) or has_expr(style.stroke_color):
                personal = True
                style = style.model_copy(
                    update={
                        "color": self.text(f"{path}.font.color", style.color),
                        "stroke_color": self.text(f"{path}.font.stroke_color", style.stroke_color),
                    }
                )
                style = TextStyle.model_validate(style.model_dump())
        elif isinstance(layer, ImageLayer | VideoLayer):
            update["src"] = self.asset(f"{path}.src", layer.src)
            personal = personal or has_expr(layer.src)
        elif isinstance(layer, ShapeLayer) and has_expr(layer.color):
            update["color"] = self.text(f"{path}.color", layer.color)
            personal = True
        elif isinstance(layer, ChartLayer):
            update, personal = self.chart(path, layer)
        elif isinstance(layer, SvgLayer):
            update, extra, personal = self.svg(path, layer)
        elif isinstance(layer, LottieLayer):
            update, personal = self.lottie(path, layer)
        resolved = type(layer).model_validate({**layer.model_dump(by_alias=True), **update})
        end = (
            scene.duration
            if layer.duration is None
            else min(scene.duration, layer.start + layer.duration)
        )
        return PlanLayer(
            layer=resolved,
            style=style,
            start=layer.start,
            end=end,
            resolved=extra,
            personal=personal,
        )


def voice_for(
    tpl: Template, locale: str, given: str | dict[str, str] | None
) -> str | dict[str, str]:
    """The voice a line is spoken with: its own, else the template's for the locale (or its
    language), else the locale itself (an engine may know a voice by its language)."""
    if given is not None:
        return given
    language = locale.split("_")[0].split("-")[0]
    return tpl.voices.get(locale) or tpl.voices.get(language) or locale


def bind(lt: LoadedTemplate, record: Mapping[str, Any]) -> RenderPlan:
    """Resolve a template for one record. Raises DataError (bad record) or TemplateError."""
    from chalicelib.template import experiments

    assignment = experiments.assigned(record)  # the recipient's variants (make_job assigns)
    lt = experiments.variant_template(lt, assignment)
    tpl = lt.template
    values, json_record = bind_values(lt, record)
    if tpl.experiments:
        variants = experiments.chosen(tpl, assignment)
        json_record[experiments.ASSIGNED] = {
            e.id: v.id for e, v in zip(tpl.experiments, variants, strict=True)
        }
    given = frozenset(n for n in tpl.variables if not is_blank(record.get(n)))
    locale = choose_locale(tpl, record.get("locale"))
    if locale != tpl.locale and "locale" not in tpl.variables:
        # Kept with the record: what a recipient's stream and page are bound from later.
        json_record["locale"] = locale
    b = _Binder(lt, values, json_record, given, locale)

    chosen: list[tuple[int, Scene]] = []
    for index, entry in enumerate(tpl.scenes):
        scene = lt.scene_for(entry)
        if b.when(f"scenes[{index}].when", scene.when):
            chosen.append((index, scene))
    if not chosen:
        raise DataError("no scene's condition holds for this record: the video would be empty")

    scenes: list[PlanScene] = []
    cues: list[AudioCue] = []
    voices: list[VoiceCue] = []
    cursor = 0.0
    previous_out = CUT
    for pos, (index, scene) in enumerate(chosen):
        prefix = f"scenes[{index}]"
        last = pos == len(chosen) - 1
        trans_out = CUT if last else (scene.transition or tpl.transition)
        if trans_out.type is TransitionKind.cut:
            trans_out = CUT
        if previous_out.type is TransitionKind.crossfade:
            cursor -= previous_out.duration
        for trans, side in ((previous_out, "into"), (trans_out, "out of")):
            share = trans.duration if trans.type is TransitionKind.crossfade else trans.duration / 2
            if share >= scene.duration:
                raise TemplateError(
                    f"the {trans.duration:g}s {trans.type.value} {side} scene {scene.id!r} "
                    f"is longer than the scene ({scene.duration:g}s)",
                    field=f"{prefix}.transition.duration",
                )
        background, personal = b.background(f"{prefix}.background", scene.background)
        layers: list[PlanLayer] = []
        for li, layer in enumerate(scene.layers):
            lpath = f"{prefix}.layers[{li}]"
            if not b.when(f"{lpath}.when", layer.when):
                continue
            if isinstance(layer, VoiceLayer):
                voices.append(b.voice(lpath, layer, scene, cursor))
                continue
            if isinstance(layer, AudioLayer):
                src = b.asset(f"{lpath}.src", layer.src)
                end = (
                    scene.duration
                    if layer.duration is None
                    else min(scene.duration, layer.start + layer.duration)
                )
                cues.append(
                    AudioCue(
                        src=src,
                        start=cursor + layer.start,
                        duration=end - layer.start,
                        volume=layer.volume,
                        fade_in=layer.fade_in,
                        fade_out=layer.fade_out,
                    )
                )
                continue
            planned = b.layer(lpath, layer, scene)
            personal = personal or planned.personal
            layers.append(planned)
        layers.sort(key=lambda pl: pl.layer.z)  # stable: equal z keeps the file's order
        scenes.append(
            PlanScene(
                id=scene.id,
                start=round(cursor, 6),
                duration=scene.duration,
                background=background,
                layers=layers,
                transition_in=previous_out,
                transition_out=trans_out,
                personal=personal,
            )
        )
        cursor += scene.duration
        previous_out = trans_out

    duration = round(cursor, 6)
    music = tpl.audio
    if music.music:
        music = music.model_copy(update={"music": b.asset("audio.music", music.music)})
    return RenderPlan(
        template_id=tpl.id,
        template_version=tpl.version,
        canvas=tpl.canvas,
        scenes=scenes,
        music=music,
        cues=cues,
        duration=duration,
        poster_time=_poster_time(lt, scenes, duration),
        record=json_record,
        voices=voices,
        locale=b.locale,
        fallbacks=sorted(set(b.fallbacks)),
        lexicon=_used_words(load_lexicon(lt.root), voices) if voices else [],
    )


def _used_words(lexicon: list[LexiconWord], voices: list[VoiceCue]) -> list[LexiconWord]:
    """The lexicon's entries some line says (the others do not change how anything sounds)."""
    lines = " ".join(v.text for v in voices).casefold()
    return [w for w in lexicon if w.grapheme.casefold() in lines]


def _poster_time(lt: LoadedTemplate, scenes: list[PlanScene], duration: float) -> float:
    poster = lt.template.poster
    if poster.time is not None:
        return min(poster.time, max(0.0, duration - 0.05))
    wanted = [s for s in scenes if s.id == poster.scene] if poster.scene else []
    wanted = wanted or [s for s in scenes if s.personal] or scenes
    scene = wanted[0]
    return round(scene.start + scene.duration / 2, 3)
