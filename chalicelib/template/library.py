"""Loading templates and their scene library from files, and checking them with every problem
reported as `path: reason` (e.g. `scenes[2].layers[0].src: file not found: assets/x.png`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chalicelib.errors import Problem, TemplateError
from chalicelib.template.documents import (
    DocumentError,
    as_json_data,
    decode,
    load_json,
    load_yaml,
)
from chalicelib.template.experiments import experiment_problems, variant_scene_refs
from chalicelib.template.expr import (
    check_locale,
    compile_condition,
    template_variables,
    translation_ids,
)
from chalicelib.template.interactive import interactive_problems
from chalicelib.template.lexicon import lexicon_problems
from chalicelib.template.loaded import LoadedTemplate as LoadedTemplate
from chalicelib.template.loaded import resolve_asset as resolve_asset
from chalicelib.template.loaded import text_problems
from chalicelib.template.model import (
    INTERACTION_TAGS,
    LAYER_TAGS,
    SCENE_TAGS,
    AudioLayer,
    ChartLayer,
    ImageLayer,
    LottieLayer,
    Scene,
    SceneRef,
    SvgLayer,
    Template,
    TextLayer,
    TransitionKind,
    VarType,
    VideoLayer,
    VoiceLayer,
)
from chalicelib.template.motion import load_lottie, load_svg
from chalicelib.template.values import coerce, url_scheme

YAML_SUFFIXES = {".yaml", ".yml"}
SUFFIXES = YAML_SUFFIXES | {".json"}
NOT_FETCHED = (
    "URLs written in the template are not fetched: put the file under the campaign folder "
    "(a URL may come from data, as the value of an image, video or audio variable)"
)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('scenes', 2, 'scene', 'layers', 0, 'text', 'src') -> 'scenes[2].layers[0].src'."""
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(prev, int) and part in LAYER_TAGS | SCENE_TAGS | INTERACTION_TAGS:
            pass  # the tag pydantic adds after a union list item
        elif part.startswith("function-") or part.startswith("tagged-union"):
            pass
        else:
            out += ("." if out else "") + part
        prev = part
    return out


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """A pydantic error as Problems with readable paths (`scenes[2].layers[0].src`)."""
    problems = []
    for err in exc.errors(include_url=False):
        path = format_loc(tuple(err["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(Problem(path, msg))
    return problems


def read_document(path: Path) -> Any:
    """Parse a YAML or JSON file; raise TemplateError naming the file and the line or field."""
    if not path.is_file():
        raise TemplateError(f"file not found: {path}", field=str(path))
    try:
        text = decode(path.read_bytes())
    except DocumentError as exc:
        raise TemplateError(f"{path.name}: {exc.message}") from None
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise TemplateError(f"{path.name}: cannot read it: {exc.strerror}", str(path)) from None
    return parse_document(text, path.suffix.lower(), str(path.name))


def parse_document(text: str, suffix: str = ".yaml", name: str = "template") -> Any:
    """Parse YAML (a superset of JSON) or strict JSON text into JSON data (see documents.py:
    no duplicate keys, NaN, alias bombs or deep nesting)."""
    try:
        if suffix == ".json":
            return load_json(text)
        return load_yaml(text)
    except DocumentError as exc:
        raise TemplateError(f"{name}: {exc.message}", field=exc.field) from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


Reader = Callable[[Path], Any]


def _load_library(
    template: Template, root: Path, problems: list[Problem], read: Reader
) -> tuple[dict[str, Scene], dict[str, Path]]:
    scenes: dict[str, Scene] = {}
    files: dict[str, Path] = {}
    try:
        lib_dir = (root / template.library).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of symlinks
        lib_dir = None
    if lib_dir is None or not lib_dir.is_relative_to(root):
        problems.append(Problem("library", "must be a folder inside the campaign folder"))
        return scenes, files
    wanted = [
        (f"scenes[{index}]", f"scenes[{index}].use", entry)
        for index, entry in enumerate(template.scenes)
        if isinstance(entry, SceneRef)
    ] + [(where, where, SceneRef(use=use)) for where, use in variant_scene_refs(template)]
    for prefix, where, entry in wanted:
        if entry.use in scenes:
            continue
        candidates = [lib_dir / f"{entry.use}{s}" for s in (".yaml", ".yml", ".json")]
        found = next((c for c in candidates if _is_file(c)), None)
        if found is None:
            problems.append(
                Problem(where, f"scene {entry.use!r} not found in the library {template.library}/")
            )
            continue
        if not found.resolve().is_relative_to(root):
            problems.append(Problem(where, f"scene {entry.use!r} links outside the campaign"))
            continue
        rel = found.relative_to(root).as_posix()
        try:
            data = read(found)
            scene = Scene.model_validate(data)
        except TemplateError as exc:
            problems.append(Problem(where, exc.message))
            continue
        except ValidationError as exc:
            for p in pydantic_problems(exc, prefix):
                problems.append(Problem(p.field, f"{p.message} (in {rel})"))
            continue
        if scene.id != entry.use:
            problems.append(Problem(where, f"{rel} declares id {scene.id!r}, not {entry.use!r}"))
            continue
        scenes[entry.use] = scene
        files[entry.use] = found
    return scenes, files


def load_template_data(
    data: Any, root: Path, *, strict: bool = True, read: Reader = read_document
) -> LoadedTemplate:
    """Validate parsed template data against the model and load its library scenes.

    Raises TemplateError listing every structural problem (file checks are `check_template`'s).
    With `strict=False`, library problems are kept in `LoadedTemplate.problems` instead.
    `read` parses a scene file (the Studio's reads its editor's unsaved text first).
    """
    root = root.resolve()
    if not isinstance(data, dict):
        raise TemplateError("a template is a mapping (YAML/JSON object) at the top level")
    try:
        data = as_json_data(data)  # what a file gives already; a caller's data may be anything
    except DocumentError as exc:
        raise TemplateError(exc.message, field=exc.field) from None
    try:
        template = Template.model_validate(data)
    except ValidationError as exc:
        found = pydantic_problems(exc)
        raise TemplateError(f"{len(found)} problem(s) in the template", problems=found) from exc
    problems: list[Problem] = []
    library, files = _load_library(template, root, problems, read)
    if problems and strict:
        raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
    return LoadedTemplate(template, root, library, files, problems)


def load_template(
    path: Path | str, *, strict: bool = True, read: Reader = read_document
) -> LoadedTemplate:
    """Load a template file (YAML or JSON); its directory is the campaign root. `read` parses
    the template and scene files (default: from disk)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise TemplateError(f"{path.name}: a template is a .yaml, .yml or .json file")
    return load_template_data(read(path), path.parent, strict=strict, read=read)


# ── assets ─────────────────────────────────────────────────────────────────────────────────


# ── semantic checks ────────────────────────────────────────────────────────────────────────


def _scene_problems(lt: LoadedTemplate, scene: Scene, prefix: str) -> Iterator[Problem]:
    tpl = lt.template
    suffix = ""
    if prefix.startswith("scenes[") and scene.id in lt.library_files:
        suffix = f" (in {lt.library_files[scene.id].relative_to(lt.root).as_posix()})"

    def problem(path: str, message: str) -> Problem:
        return Problem(f"{prefix}.{path}" if path else prefix, message + suffix)

    def check_text(path: str, text: str) -> Iterator[Problem]:
        for reason in text_problems(tpl, text):
            yield problem(path, reason)

    def check_file(path: str, ref: str | None) -> Iterator[Problem]:
        if not ref:
            return
        if "{{" in ref:
            if url_scheme(ref) is not None:  # a URL the template spells is never fetched
                yield problem(path, NOT_FETCHED)
            yield from check_text(path, ref)
            return
        try:
            resolve_asset(lt.root, ref)
        except ValueError as exc:
            yield problem(path, str(exc))
        except OSError as exc:  # a name too long for the file system
            yield problem(path, f"unusable path: {exc.strerror}")

    def check_when(path: str, expr: str | None) -> Iterator[Problem]:
        if expr is None:
            return
        try:
            compile_condition(expr)
        except ValueError as exc:
            yield problem(path, str(exc))

    yield from check_when("when", scene.when)
    bg = scene.background
    if bg.color and "{{" in bg.color:
        yield from check_text("background.color", bg.color)
    yield from check_file("background.image", bg.image)
    yield from check_file("background.video", bg.video)
    for i, layer in enumerate(scene.layers):
        lp = f"layers[{i}]"
        yield from check_when(f"{lp}.when", layer.when)
        if layer.start >= scene.duration:
            yield problem(
                f"{lp}.start",
                f"{layer.start:g}s is not before the scene's end ({scene.duration:g}s)",
            )
        elif layer.duration is not None and layer.start + layer.duration > scene.duration + 1e-6:
            yield problem(
                f"{lp}.duration",
                f"the layer ends at {layer.start + layer.duration:g}s, "
                f"after the scene's end ({scene.duration:g}s)",
            )
        if isinstance(layer, TextLayer):
            yield from check_text(f"{lp}.text", layer.text)
            if layer.style is not None and layer.style not in tpl.styles:
                yield problem(
                    f"{lp}.style", f"unknown style {layer.style!r}; defined: {sorted(tpl.styles)}"
                )
        if isinstance(layer, ImageLayer | VideoLayer | AudioLayer):
            yield from check_file(f"{lp}.src", layer.src)
        if isinstance(layer, VoiceLayer):
            line = layer.text if layer.text is not None else layer.ssml
            yield from check_text(
                f"{lp}.{'text' if layer.text is not None else 'ssml'}", line or ""
            )

        if isinstance(layer, ChartLayer | SvgLayer | LottieLayer):
            yield from _motion_problems(lt, layer, lp, check_text, check_file, problem)


def _motion_problems(
    lt: LoadedTemplate,
    layer: ChartLayer | SvgLayer | LottieLayer,
    lp: str,
    check_text: Callable[[str, str], Iterator[Problem]],
    check_file: Callable[[str, str | None], Iterator[Problem]],
    problem: Callable[[str, str], Problem],
) -> Iterator[Problem]:
    """A chart's expressions; an SVG's or a Lottie's file, parsed and checked."""
    if isinstance(layer, ChartLayer):
        if isinstance(layer.values, str):
            yield from check_text(f"{lp}.values", layer.values)
        labels = [layer.labels] if isinstance(layer.labels, str) else layer.labels or []
        for text in labels:
            yield from check_text(f"{lp}.labels", text)
        style = layer.style
        for color in (style.color, style.track, style.text_color, *(style.colors or [])):
            if "{{" in color:
                yield from check_text(f"{lp}.style", color)
        return
    found = list(check_file(f"{lp}.src", layer.src))
    yield from found
    if found:
        return
    path = resolve_asset(lt.root, layer.src)
    try:
        if isinstance(layer, SvgLayer):
            doc = load_svg(path, f"{lp}.src")
            for snippet in doc.snippets:
                yield from check_text(f"{lp}.src", snippet)
            return
        lottie = load_lottie(path, f"{lp}.src")
    except TemplateError as exc:
        yield problem(f"{lp}.src", exc.message)
        return
    for name, text in layer.texts.items():
        yield from check_text(f"{lp}.texts.{name}", text)
        if name not in lottie.text_layers:
            yield problem(f"{lp}.texts", f"no text layer named {name!r} in {path.name}")
    for keypath, color in layer.colors.items():
        if "{{" in color:
            yield from check_text(f"{lp}.colors.{keypath}", color)
    for image_id, where in lottie.external_images.items():
        if image_id not in layer.images:
            yield problem(
                f"{lp}.src",
                f"{path.name}: {where}: an image file beside the animation is not read: "
                "embed it (a data: URI) or give it with `images:`",
            )
    for image_id, ref in layer.images.items():
        yield from check_file(f"{lp}.images.{image_id}", ref)
        if image_id not in lottie.image_ids:
            yield problem(f"{lp}.images", f"no image asset {image_id!r} in {path.name}")
    if layer.play is not None:
        for end in ("from_", "to"):
            mark = getattr(layer.play, end)
            if isinstance(mark, str) and mark not in lottie.markers:
                known = sorted(lottie.markers) or "none"
                yield problem(f"{lp}.play", f"no marker {mark!r} in {path.name} (markers: {known})")


def template_warnings(lt: LoadedTemplate) -> list[Problem]:
    """What renders, but not as the file says: Lottie features the engine does not play."""
    warnings: list[Problem] = []
    for index, entry in enumerate(lt.template.scenes):
        if isinstance(entry, SceneRef) and entry.use not in lt.library:
            continue
        for i, layer in enumerate(lt.scene_for(entry).layers):
            if not isinstance(layer, LottieLayer):
                continue
            try:
                doc = load_lottie(resolve_asset(lt.root, layer.src))
            except (TemplateError, ValueError, OSError):
                continue  # a problem, reported as such
            where = f"scenes[{index}].layers[{i}].src"
            warnings.extend(Problem(where, f"{Path(layer.src).name}: {w}") for w in doc.warnings)
    return warnings


def _translations_problems(tpl: Template) -> list[Problem]:
    problems = []
    if tpl.translations and tpl.locale not in tpl.translations:
        problems.append(
            Problem("translations", f"no strings for the template's locale {tpl.locale!r}")
        )
    for loc, table in tpl.translations.items():
        try:
            check_locale(loc)
        except ValueError as exc:
            problems.append(Problem(f"translations.{loc}", str(exc)))
        for key, text in table.items():
            try:
                names = template_variables(text, loc)
                if translation_ids(text, loc):
                    raise ValueError("a translation cannot call t() itself")
            except ValueError as exc:
                problems.append(Problem(f"translations.{loc}.{key}", str(exc)))
                continue
            problems.extend(
                Problem(f"translations.{loc}.{key}", f"uses undeclared variable {n!r}")
                for n in sorted(names - set(tpl.variables))
            )
    return problems


def check_template(lt: LoadedTemplate) -> list[Problem]:
    """Every problem of a structurally valid template: files, names, expressions, timings."""
    tpl = lt.template
    problems: list[Problem] = []
    try:
        check_locale(tpl.locale)
    except ValueError as exc:
        problems.append(Problem("locale", str(exc)))
    for name, var in tpl.variables.items():
        if var.locale:
            try:
                check_locale(var.locale)
            except ValueError as exc:
                problems.append(Problem(f"variables.{name}.locale", str(exc)))
        if var.default is not None:
            try:
                coerce(var, var.default)
            except ValueError as exc:
                problems.append(Problem(f"variables.{name}.default", str(exc)))
            else:
                media = var.type in (VarType.image, VarType.video, VarType.audio)
                if media and isinstance(var.default, str) and url_scheme(var.default):
                    problems.append(Problem(f"variables.{name}.default", NOT_FETCHED))
    if tpl.audio.music:
        try:
            resolve_asset(lt.root, tpl.audio.music)
        except ValueError as exc:
            problems.append(Problem("audio.music", str(exc)))
        except OSError as exc:  # a name too long for the file system
            problems.append(Problem("audio.music", f"unusable path: {exc.strerror}"))
    scenes = [
        lt.scene_for(e)
        for e in tpl.scenes
        if not (isinstance(e, SceneRef) and e.use not in lt.library)
    ]
    for index, entry in enumerate(tpl.scenes):
        if isinstance(entry, SceneRef) and entry.use not in lt.library:
            continue
        problems.extend(_scene_problems(lt, lt.scene_for(entry), f"scenes[{index}]"))
    ids = [s.id for s in scenes]
    for index, scene in enumerate(scenes[:-1]):
        trans = scene.transition or tpl.transition
        following = scenes[index + 1]
        if trans.type is TransitionKind.crossfade:
            limit = min(scene.duration, following.duration)
            if trans.duration >= limit:
                where = f"scenes[{index}]." if scene.transition else ""
                problems.append(
                    Problem(
                        f"{where}transition.duration",
                        f"a {trans.duration:g}s crossfade needs scenes longer than that "
                        f"({scene.id!r} → {following.id!r})",
                    )
                )
    problems.extend(lexicon_problems(lt.root))
    problems.extend(_translations_problems(tpl))
    if tpl.poster.scene is not None and tpl.poster.scene not in ids:
        problems.append(Problem("poster.scene", f"no scene with id {tpl.poster.scene!r}"))
    page = tpl.page
    texts = {"page.title": page.title, "page.description": page.description}
    if page.cta:
        texts |= {"page.cta.label": page.cta.label, "page.cta.url": page.cta.url}
    for path, text in texts.items():
        if text is not None:
            problems.extend(Problem(path, reason) for reason in text_problems(tpl, text))
    problems.extend(interactive_problems(lt, scenes))
    problems.extend(experiment_problems(lt))
    return problems


def validate_template_file(path: Path | str, read: Reader = read_document) -> list[Problem]:
    """All problems of a template file; empty when it is valid. Never raises TemplateError."""
    try:
        lt = load_template(path, strict=False, read=read)
    except TemplateError as exc:
        return exc.problems
    return lt.problems + check_template(lt)
