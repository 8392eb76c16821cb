"""The Studio's use cases: a draft (a campaign folder and the editor's unsaved texts) checked,
bound to a recipient, drawn frame by frame, laid out on its timeline with what it costs,
played, and saved. Every picture comes from the render engine, never from a copy of it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from chalicelib.backends import Backends
from chalicelib.data.mapping import FieldMapping, apply_mapping, recipient_id
from chalicelib.data.readers import read_rows
from chalicelib.errors import (
    DataError,
    NotFoundError,
    Problem,
    ReelError,
    RequestError,
    TemplateError,
)
from chalicelib.lru import Lru
from chalicelib.pipeline.jobs import RenderRecord
from chalicelib.render import ffmpeg as ff
from chalicelib.render import raster
from chalicelib.render.engine import render_frame
from chalicelib.render.graph import poster_args
from chalicelib.render.localize import localize
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import plan_runs, timeline
from chalicelib.render.sniff import SNIFF_BYTES, sniff
from chalicelib.services import renders, templates
from chalicelib.studio import lines, workspace
from chalicelib.template.bind import bind
from chalicelib.template.documents import DocumentError, load_json, load_yaml
from chalicelib.template.library import (
    LoadedTemplate,
    check_template,
    load_template,
    read_document,
    validate_template_file,
)
from chalicelib.template.model import SceneRef
from chalicelib.template.plan import RenderPlan

LOCAL = "local"  # the workspace id of the folder `reel studio` opened
MAX_RECIPIENTS = 500  # rows of a data file listed in the picker
# What one second of personal video costs to render, in CPU seconds, at 1280×720 and 30 fps
# with the full-quality profile: `make bench` measured 2.608 CPU s per warm recipient whose
# video has 7 personal seconds (README, "Rendering cost"). Scaled by pixels and frame rate.
CPU_S_PER_PERSONAL_S = 2.608 / 7
_REFERENCE_PIXEL_RATE = 1280 * 720 * 30
_IN_FILE = re.compile(r" \(in ([^()]+)\)$")


@dataclass(frozen=True)
class Workspace:
    """A campaign the Studio edits: a folder saved in place (`reel studio`), or a registered
    template whose saves register new versions (`reel serve`, the deployed API)."""

    id: str
    root: Path
    folder: bool
    version: str | None = None
    data: Path | None = None  # the recipients' file given on the command line


def open_workspace(
    b: Backends, ws_id: str, *, folder: Path | None, data: Path | None, version: str | None
) -> Workspace:
    """The workspace `ws_id` names: `local` (the folder `reel studio` opened) or a template."""
    if ws_id == LOCAL:
        if folder is None:
            raise NotFoundError("no campaign folder is open here (`reel studio DIR`)", "workspace")
        return Workspace(LOCAL, folder.resolve(), True, data=data)
    record = templates.get_template(b, ws_id, version)
    root = templates.materialize(b, record).root
    return Workspace(record.id, root, False, record.version)


def workspaces(folder: Path | None) -> list[dict[str, Any]]:
    """The folder `reel studio` opened, if any (elsewhere the page opens a template by id)."""
    if folder is None:
        return []
    return [{"id": LOCAL, "name": folder.resolve().name, "folder": True}]


_DOCS: Lru[tuple[str, ...], Any] = Lru(256)


@dataclass
class Draft:
    """A workspace seen through the editor: `files` (relative path → text) win over disk."""

    ws: Workspace
    files: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        workspace.check_texts(self.ws.root, self.files)  # paths confined, sizes bounded

    @property
    def template_rel(self) -> str:
        for name in templates.TEMPLATE_NAMES:
            if name in self.files or (self.ws.root / name).is_file():
                return name
        raise NotFoundError("the campaign folder has no template.yaml", field="template")

    def text(self, rel: str) -> str:
        if rel in self.files:
            return self.files[rel]
        return workspace.read_text(self.ws.root, rel)

    def read(self, path: Path) -> Any:
        """Parse a campaign file: the editor's text when it has one, else the file. Parsed
        documents are kept by content (or file stamp): a keystroke reparses one file."""
        rel = path.resolve().relative_to(self.ws.root).as_posix()
        if rel not in self.files:
            try:
                st = path.stat()
            except OSError:
                return read_document(path)  # it says why, naming the file
            stamp = ("file", str(path), str(st.st_mtime_ns), str(st.st_size))
            return _DOCS.get(stamp) or _DOCS.put(stamp, read_document(path))
        text = self.files[rel]
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        key = ("text", path.suffix.lower(), digest)
        if (found := _DOCS.get(key)) is not None:
            return found
        try:
            data = load_json(text) if path.suffix.lower() == ".json" else load_yaml(text)
        except DocumentError as exc:
            raise TemplateError(f"{path.name}: {exc.message}", field=exc.field) from None
        return _DOCS.put(key, data)

    @property
    def key(self) -> str:
        """Changes with the editor's texts and with any campaign text file on disk."""
        stamp = []
        for rel in workspace.text_files(self.ws.root):
            st = (self.ws.root / rel).stat()
            stamp.append((rel, st.st_mtime_ns, st.st_size))
        blob = json.dumps([str(self.ws.root), self.ws.version, stamp, sorted(self.files.items())])
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


# ── checking as the designer types ─────────────────────────────────────────────────────────


def check(draft: Draft) -> list[dict[str, Any]]:
    """Every problem `reel validate` reports for the draft, with the file and line it is at."""
    problems = validate_template_file(draft.ws.root / draft.template_rel, read=draft.read)
    return [_place(draft, p) for p in problems]


def _place(draft: Draft, problem: Problem) -> dict[str, Any]:
    rel, path = draft.template_rel, problem.field
    if found := _IN_FILE.search(problem.message):  # a problem inside a library scene
        rel, path = found.group(1), re.sub(r"^scenes\[\d+\]\.?", "", path)
    elif path.endswith(".use") and ": " in problem.message:
        # A library file that cannot be read names itself first: `greeting.yaml: …`.
        name = problem.message.split(": ", 1)[0]
        rel, path = next(
            ((f, "") for f in _texts(draft) if PurePosixPath(f).name == name), (rel, path)
        )
    try:
        text = draft.text(rel)
    except ReelError:
        text = ""
    # A parse error says its line: only in the file it is about.
    own = problem.message.startswith(f"{PurePosixPath(rel).name}: ")
    line, column = lines.locate(text, path, problem.message if own else "")
    return {
        "file": rel,
        "line": line,
        "column": column,
        "field": problem.field,
        "message": problem.message,
        "text": str(problem),
    }


def _texts(draft: Draft) -> list[str]:
    return sorted(set(workspace.text_files(draft.ws.root)) | set(draft.files))


# ── binding a recipient ────────────────────────────────────────────────────────────────────

_LOADED: Lru[str, LoadedTemplate] = Lru(16)
_PLANS: Lru[str, RenderPlan] = Lru(64)


def loaded(draft: Draft) -> LoadedTemplate:
    """The draft's template, loaded and checked; TemplateError listing its problems."""
    key = draft.key
    found = _LOADED.get(key)
    if found is None:
        lt = load_template(draft.ws.root / draft.template_rel, read=draft.read)
        problems = check_template(lt)
        if problems:
            raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
        found = _LOADED.put(key, lt)
    return found


def plan(b: Backends, draft: Draft, record: Mapping[str, Any]) -> RenderPlan:
    """The draft bound to one record (DataError names each bad field), its media localized."""
    key = hashlib.sha256((draft.key + json.dumps(record, sort_keys=True)).encode()).hexdigest()
    found = _PLANS.get(key)
    if found is None:
        found = _PLANS.put(key, localize(bind(loaded(draft), dict(record)), b.fetcher))
    return found


def mapping(ws: Workspace) -> FieldMapping | None:
    return templates.campaign_mapping_file(ws.root)


def data_file(ws: Workspace, name: str | None) -> Path | None:
    """The recipients' file: one named in the campaign, else the one given to `reel studio`,
    else the campaign's first CSV/JSONL file."""
    if name:
        return workspace.confine(ws.root, name, field="data")
    if ws.data is not None:
        return ws.data
    found = workspace.data_files(ws.root)
    return ws.root / found[0] if found else None


def recipients(ws: Workspace, name: str | None = None) -> dict[str, Any]:
    """The picker's rows: each record with the campaign's mapping applied, or its problem."""
    path = data_file(ws, name)
    if path is None:
        return {"file": None, "recipients": []}
    fmap = mapping(ws)
    listed: list[dict[str, Any]] = []
    for row in read_rows(path):
        if len(listed) >= MAX_RECIPIENTS:
            break
        entry: dict[str, Any] = {"line": row.line}
        if row.error is not None or row.fields is None:
            err = row.error or DataError("unreadable row")
            entry |= {"id": f"line-{row.line}", "error": err.to_dict()["error"]}
        else:
            entry["id"] = recipient_id(fmap, row.fields, f"line-{row.line}")
            try:
                entry["record"] = apply_mapping(fmap, row.fields)
            except DataError as exc:
                entry["error"] = exc.to_dict()["error"]
        listed.append(entry)
    shown = path.relative_to(ws.root).as_posix() if path.is_relative_to(ws.root) else path.name
    return {"file": shown, "recipients": listed}


def parse_record(text: str) -> dict[str, Any]:
    """A record pasted into the Studio: a JSON object."""
    try:
        data = load_json(text)
    except DocumentError as exc:
        raise DataError(f"the pasted record is not JSON: {exc.message}", "record") from None
    if not isinstance(data, dict):
        raise DataError("a record is a JSON object", field="record")
    return data


# ── drawing and laying out ─────────────────────────────────────────────────────────────────


def frame(
    b: Backends, draft: Draft, record: Mapping[str, Any], at: float, work: Path
) -> tuple[bytes, int]:
    """The JPEG of the frame at `at` seconds for this recipient, and its index. Its layers
    are rasterized once (kept in memory by content), written for ffmpeg to a folder of the
    request's own, which goes with it: nothing piles up in `work`."""
    bound = plan(b, draft, record)
    with tempfile.TemporaryDirectory(prefix="frame-", dir=work) as tmp:
        out = Path(tmp) / "frame.jpg"
        index = render_frame(bound, at, out, work=Path(tmp), config=b.render)
        return out.read_bytes(), index


def layout(b: Backends, draft: Draft, record: Mapping[str, Any]) -> dict[str, Any]:
    """The timeline for this recipient: every scene of the template (those whose `when` is
    false marked skipped), the transitions, and the personal runs with what they cost."""
    lt = loaded(draft)
    bound = plan(b, draft, record)
    profile = EncodingProfile.for_canvas(bound.canvas, config=b.render)
    fps = profile.fps
    placed = {p.scene.id: p for p in timeline(bound, profile)}
    scenes = []
    for entry in lt.template.scenes:
        scene = lt.scene_for(entry)
        p = placed.get(scene.id)
        trans = scene.transition or lt.template.transition
        scenes.append(
            {
                "id": scene.id,
                "library": isinstance(entry, SceneRef),
                "when": scene.when,
                "skipped": p is None,
                "start": p.start / fps if p else None,
                "duration": p.frames / fps if p else scene.duration,
                "personal": bool(p and p.scene.personal),
                "transition": {"type": trans.type.value, "duration": trans.duration},
            }
        )
    runs = [
        {"start": r.start / fps, "end": r.end / fps, "personal": r.personal}
        for r in plan_runs(bound, profile)
    ]
    personal = sum(r["end"] - r["start"] for r in runs if r["personal"])
    rate = profile.width * profile.height * fps / _REFERENCE_PIXEL_RATE
    return {
        "duration": bound.duration,
        "fps": fps,
        "size": [profile.width, profile.height],
        "scenes": scenes,
        "runs": runs,
        "personal_seconds": round(personal, 3),
        "estimated_cpu_seconds": round(personal * CPU_S_PER_PERSONAL_S * rate, 4),
        "record": bound.record,
    }


def variables(draft: Draft) -> dict[str, Any]:
    """The template's variables (name → type), for the pasted-record placeholder."""
    lt = loaded(draft)
    return {n: v.type.value for n, v in lt.template.variables.items()}


def thumbnail(b: Backends, path: Path, size: int, work: Path) -> bytes:
    """A small JPEG of an image asset, or of a video's frame at 0.5 s."""
    with path.open("rb") as fh:
        found = sniff(fh.read(SNIFF_BYTES))
    family = found[0] if found else ""
    with tempfile.TemporaryDirectory(prefix="thumb-", dir=work) as tmp:
        source = path
        if family in ("video", "mp4") and found and found[1] != ".m4a":
            source = Path(tmp) / "frame.jpg"
            ff.run(poster_args(str(path), 0.5, str(source)), config=b.render)
        elif family != "image":
            raise RequestError("only images and videos have thumbnails", field="path")
        img = raster.open_image(source, "path").convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        return buf.getvalue()


# ── playing and saving ─────────────────────────────────────────────────────────────────────


def snapshot(b: Backends, draft: Draft) -> str:
    """The draft registered as a template version (content-addressed: the same draft is the
    same version); TemplateError listing its problems when it has some."""
    replace = {rel: text.encode("utf-8") for rel, text in draft.files.items()}
    bundle = templates.pack(draft.ws.root, replace=replace)
    return templates.register_template(b, bundle=bundle).version


def play(b: Backends, draft: Draft, record: Mapping[str, Any], preview: bool) -> RenderRecord:
    """Render the whole video of this recipient from the draft (a quick `--preview` look, or
    the real MP4), through the same render queue as POST /renders."""
    version = snapshot(b, draft)
    template_id = loaded(draft).template.id
    req = renders.RenderRequest(
        template_id=template_id, version=version, data=dict(record), preview=preview
    )
    return renders.create_render(b, req)


def save(b: Backends, draft: Draft) -> dict[str, Any]:
    """A folder: the texts written, atomically, problems and all (work in progress is saved,
    and the answer says how many problems it has). A registered template: a new version,
    which must be free of problems to be registered."""
    problems = check(draft)
    if draft.ws.folder:
        saved = workspace.write_texts(draft.ws.root, draft.files)
        return {"saved": saved, "problems": len(problems), "version": None}
    if problems:
        raise TemplateError(
            f"{len(problems)} problem(s): a registered template is saved once it has none",
            problems=[Problem(p["field"], p["message"]) for p in problems],
        )
    return {"saved": sorted(draft.files), "problems": 0, "version": snapshot(b, draft)}
