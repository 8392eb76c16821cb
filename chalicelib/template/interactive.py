"""Interactions and chapters (pure): their checks against the template, and their resolution for
one recipient's plan into absolute times and personalized texts, as the page's player draws them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from chalicelib.errors import DataError, Problem
from chalicelib.template.expr import (
    compile_condition,
    evaluate_condition,
    interpolate,
)
from chalicelib.template.loaded import LoadedTemplate, resolve_asset, text_problems
from chalicelib.template.model import (
    FONT_TYPES,
    LOGO_TYPES,
    Action,
    ButtonInteraction,
    ChoiceInteraction,
    FormField,
    FormInteraction,
    HotspotInteraction,
    Scene,
    Strict,
    Template,
    TransitionKind,
)
from chalicelib.template.values import coerce

if TYPE_CHECKING:
    from chalicelib.template.plan import RenderPlan

AnyInteraction = ButtonInteraction | HotspotInteraction | ChoiceInteraction | FormInteraction
SAFE_URL_PREFIXES = ("https://", "http://", "/", "mailto:")


def longest_duration(tpl: Template, scenes: list[Scene]) -> float:
    """The longest video the template can make: every scene plays (crossfades overlap)."""
    total = 0.0
    for index, scene in enumerate(scenes):
        total += scene.duration
        trans = scene.transition or tpl.transition
        if index < len(scenes) - 1 and trans.type is TransitionKind.crossfade:
            total -= trans.duration
    return total


def _texts(item: AnyInteraction) -> Iterator[tuple[str, str]]:
    yield "label", item.label
    if isinstance(item, ButtonInteraction | HotspotInteraction) and item.action.open:
        yield "action.open", item.action.open
    if isinstance(item, ChoiceInteraction):
        for i, option in enumerate(item.options):
            yield f"options[{i}].label", option.label
    if isinstance(item, FormInteraction):
        yield "submit", item.submit
        for i, f in enumerate(item.fields):
            yield f"fields[{i}].label", f.label


def interactive_problems(lt: LoadedTemplate, scenes: list[Scene]) -> list[Problem]:
    """Every problem of the template's interactions and chapters: unknown scenes, chapters and
    variables, values a variable refuses, and times outside the video (or outside their scene)."""
    tpl = lt.template
    by_id = {s.id: s for s in scenes}
    longest = longest_duration(tpl, scenes)
    chapters = {c.id for c in tpl.chapters}
    problems: list[Problem] = []

    def text(path: str, value: str) -> None:
        problems.extend(Problem(path, reason) for reason in text_problems(tpl, value))

    def setting(path: str, name: str, value: str) -> None:
        var = tpl.variables.get(name)
        if var is None:
            problems.append(Problem(path, f"sets undeclared variable {name!r}"))
            return
        try:
            coerce(var, value)
        except ValueError as exc:
            problems.append(Problem(path, f"{value!r} is not a value of {name!r}: {exc}"))

    def action(path: str, act: Action) -> None:
        if act.chapter is not None and act.chapter not in chapters:
            problems.append(Problem(f"{path}.chapter", f"no chapter with id {act.chapter!r}"))
        if act.seek is not None and act.seek >= longest:
            problems.append(
                Problem(f"{path}.seek", f"{act.seek:g}s is after the video's end ({longest:g}s)")
            )
        opened = act.open
        if opened and "{{" not in opened and not opened.lower().startswith(SAFE_URL_PREFIXES):
            problems.append(Problem(f"{path}.open", "must be http(s), mailto: or a path"))
        for name, value in (act.set or {}).items():
            setting(f"{path}.set.{name}", name, value)

    ids = [i.id for i in tpl.interactions]
    for index, item in enumerate(tpl.interactions):
        prefix = f"interactions[{index}]"
        if ids.count(item.id) > 1:
            problems.append(Problem(f"{prefix}.id", f"interaction ids must be unique: {item.id!r}"))
        scene = by_id.get(item.scene)
        if scene is None:
            problems.append(Problem(f"{prefix}.scene", f"no scene with id {item.scene!r}"))
        elif item.start >= scene.duration:
            problems.append(
                Problem(
                    f"{prefix}.start",
                    f"{item.start:g}s is not before the end of scene {scene.id!r} "
                    f"({scene.duration:g}s): outside the video",
                )
            )
        elif item.duration is not None and item.start + item.duration > scene.duration + 1e-6:
            problems.append(
                Problem(
                    f"{prefix}.duration",
                    f"the interaction ends at {item.start + item.duration:g}s, after the end of "
                    f"scene {scene.id!r} ({scene.duration:g}s)",
                )
            )
        if item.when is not None:
            try:
                compile_condition(item.when)
            except ValueError as exc:
                problems.append(Problem(f"{prefix}.when", str(exc)))
        for path, value in _texts(item):
            text(f"{prefix}.{path}", value)
        if isinstance(item, ButtonInteraction | HotspotInteraction):
            action(f"{prefix}.action", item.action)
        if isinstance(item, ChoiceInteraction):
            for i, option in enumerate(item.options):
                setting(f"{prefix}.options[{i}].value", item.variable, option.value)
                if option.chapter is not None and option.chapter not in chapters:
                    problems.append(
                        Problem(
                            f"{prefix}.options[{i}].chapter",
                            f"no chapter with id {option.chapter!r}",
                        )
                    )
    chapter_ids = [c.id for c in tpl.chapters]
    for index, chapter in enumerate(tpl.chapters):
        prefix = f"chapters[{index}]"
        if chapter_ids.count(chapter.id) > 1:
            problems.append(Problem(f"{prefix}.id", f"chapter ids must be unique: {chapter.id!r}"))
        text(f"{prefix}.title", chapter.title)
        if chapter.scene is not None:
            scene = by_id.get(chapter.scene)
            if scene is None:
                problems.append(Problem(f"{prefix}.scene", f"no scene with id {chapter.scene!r}"))
            elif chapter.time is not None and chapter.time >= scene.duration:
                problems.append(
                    Problem(
                        f"{prefix}.time",
                        f"{chapter.time:g}s is not before the end of scene {scene.id!r} "
                        f"({scene.duration:g}s)",
                    )
                )
        elif chapter.time is not None and chapter.time >= longest:
            problems.append(
                Problem(
                    f"{prefix}.time",
                    f"{chapter.time:g}s is after the video's end ({longest:g}s at the longest)",
                )
            )
    problems.extend(theme_problems(lt))
    return problems


def theme_problems(lt: LoadedTemplate) -> list[Problem]:
    """The page theme's logo and font: files of the campaign, of a kind a browser shows."""
    theme = lt.template.page.theme
    problems: list[Problem] = []
    if theme is None:
        return problems
    for name, ref, kinds in (("logo", theme.logo, LOGO_TYPES), ("font", theme.font, FONT_TYPES)):
        if ref is None:
            continue
        path = f"page.theme.{name}"
        if not any(ref.lower().endswith(k) for k in kinds):
            problems.append(Problem(path, f"must be one of {', '.join(sorted(kinds))}"))
            continue
        try:
            resolve_asset(lt.root, ref)
        except (ValueError, OSError) as exc:
            problems.append(Problem(path, str(exc)))
    return problems


# ── resolution for one recipient (what the page's player gets) ──────────────────────────────


class PageAction(Strict):
    open: str | None = None
    chapter: str | None = None
    seek: float | None = None
    set: dict[str, str] | None = None


class PageOption(Strict):
    label: str
    value: str
    seek: float | None = Field(None, description="on the MP4: where this option's chapter starts")


class PageField(Strict):
    name: str
    type: Literal["text", "email", "single", "multiple"]
    label: str
    required: bool
    options: list[str] | None = None
    max_length: int


class PageInteraction(Strict):
    """An interaction resolved for one recipient: absolute times, texts interpolated."""

    id: str
    type: Literal["button", "hotspot", "choice", "form"]
    start: float = Field(description="seconds on the video's timeline")
    end: float
    label: str
    at: tuple[float, float] | None = None
    size: tuple[float, float] | None = Field(None, description="hotspot: fractions of the canvas")
    action: PageAction | None = None
    variable: str | None = None
    options: list[PageOption] = Field(default_factory=list)
    fields: list[PageField] = Field(default_factory=list)
    submit: str | None = None


class PageChapter(Strict):
    id: str
    title: str
    time: float


def _scene_starts(plan: RenderPlan) -> dict[str, tuple[float, float]]:
    starts: dict[str, tuple[float, float]] = {}
    for scene in plan.scenes:
        starts.setdefault(scene.id, (scene.start, scene.duration))
    return starts


def resolve(
    tpl: Template, plan: RenderPlan, values: Mapping[str, Any]
) -> tuple[list[PageInteraction], list[PageChapter]]:
    """The interactions and chapters of one recipient's video: those whose scene plays and whose
    `when` holds, at their times on this video's timeline. DataError names the field whose text
    cannot be made from the record."""
    scenes = _scene_starts(plan)

    def text(path: str, value: str) -> str:
        try:
            return interpolate(value, values, tpl.locale)
        except ValueError as exc:
            raise DataError(f"{exc} (at {path})", field=path) from exc

    chapters: list[PageChapter] = []
    for index, chapter in enumerate(tpl.chapters):
        if chapter.scene is not None:
            if chapter.scene not in scenes:
                continue
            start, length = scenes[chapter.scene]
            time = start + min(chapter.time or 0.0, length)
        else:
            time = chapter.time or 0.0
        if time >= plan.duration:
            continue
        chapters.append(
            PageChapter(
                id=chapter.id,
                title=text(f"chapters[{index}].title", chapter.title),
                time=round(time, 3),
            )
        )
    chapters.sort(key=lambda c: c.time)
    at_chapter = {c.id: c.time for c in chapters}

    def page_action(path: str, act: Action) -> PageAction:
        opened = text(f"{path}.open", act.open) if act.open else None
        if opened is not None and not opened.strip().lower().startswith(SAFE_URL_PREFIXES):
            raise DataError(f"must be http(s), mailto: or a path: {opened[:80]!r}", field=path)
        return PageAction(open=opened, chapter=act.chapter, seek=act.seek, set=act.set)

    out: list[PageInteraction] = []
    for index, item in enumerate(tpl.interactions):
        prefix = f"interactions[{index}]"
        if item.scene not in scenes:
            continue
        if item.when is not None and not evaluate_condition(item.when, plan.record):
            continue
        start, length = scenes[item.scene]
        end = length if item.duration is None else min(length, item.start + item.duration)
        common: dict[str, Any] = {
            "id": item.id,
            "type": item.type,
            "start": round(start + item.start, 3),
            "end": round(start + end, 3),
            "label": text(f"{prefix}.label", item.label),
            "at": item.at,
        }
        if isinstance(item, ButtonInteraction | HotspotInteraction):
            common["action"] = page_action(f"{prefix}.action", item.action)
        if isinstance(item, HotspotInteraction):
            common["size"] = (
                round(item.size[0] / plan.canvas.width, 4),
                round(item.size[1] / plan.canvas.height, 4),
            )
        if isinstance(item, ChoiceInteraction):
            common["variable"] = item.variable
            common["options"] = [
                PageOption(
                    label=text(f"{prefix}.options[{i}].label", o.label),
                    value=o.value,
                    seek=at_chapter.get(o.chapter) if o.chapter else None,
                )
                for i, o in enumerate(item.options)
            ]
        if isinstance(item, FormInteraction):
            common["submit"] = text(f"{prefix}.submit", item.submit)
            common["fields"] = [
                _page_field(f, text(f"{prefix}.fields[{i}].label", f.label))
                for i, f in enumerate(item.fields)
            ]
        out.append(PageInteraction(**common))
    return out, chapters


def _page_field(f: FormField, label: str) -> PageField:
    return PageField(
        name=f.name,
        type=f.type,
        label=label,
        required=f.required,
        options=f.options,
        max_length=f.max_length,
    )
