"""Templates: register a campaign's bundle as a version, find it, unpack it to render from."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field, model_validator

from chalicelib.backends import Backends
from chalicelib.data.mapping import FieldMapping
from chalicelib.errors import NotFoundError, TemplateError
from chalicelib.lru import Lru
from chalicelib.pipeline.jobs import TemplateRecord
from chalicelib.template.library import LoadedTemplate, check_template, load_template
from chalicelib.template.model import Strict

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_BUNDLE_FILES = 10_000


class TemplateUpload(Strict):
    """POST /templates as JSON or YAML: the template document, its files as a bundle, or both
    (then the document replaces the bundle's template file)."""

    template: dict[str, Any] | None = None
    bundle: str | None = Field(None, description="blob key of a zip: template, scenes/, assets/")

    @model_validator(mode="after")
    def _one(self) -> TemplateUpload:
        if self.template is None and self.bundle is None:
            raise ValueError("give `template` (the document), `bundle` (a blob key), or both")
        return self


def _safe_extract(data: bytes, dest: Path) -> None:
    """Unzip a bundle, refusing absolute paths, `..`, symlinks and oversized archives."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise TemplateError(f"the bundle is not a zip file: {exc}", field="bundle") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_FILES:
            raise TemplateError(f"the bundle has over {MAX_BUNDLE_FILES} files", field="bundle")
        if sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
            raise TemplateError("the bundle unpacks to over 512 MB", field="bundle")
        for info in infos:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise TemplateError(f"unsafe path in the bundle: {info.filename!r}", "bundle")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise TemplateError(f"symlink in the bundle: {info.filename!r}", "bundle")
            if info.is_dir():
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)


def _bundle_root(folder: Path) -> Path:
    """The folder holding the template file (the zip's root, or its single top folder)."""
    if any((folder / n).is_file() for n in TEMPLATE_NAMES):
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(("__MACOSX", "."))]
    if len(children) == 1 and children[0].is_dir():
        return _bundle_root(children[0])
    raise TemplateError("the bundle has no template.yaml (or .yml, .json) at its root", "bundle")


def _template_file(root: Path) -> Path:
    return next(root / n for n in TEMPLATE_NAMES if (root / n).is_file())


template_file = _template_file  # the campaign folder's template file (for other services)


def pack(
    folder: Path, *, exclude: Path | None = None, replace: Mapping[str, bytes] | None = None
) -> bytes:
    """A deterministic zip of a campaign folder: same files → same bytes → same version.
    Hidden files and `exclude` (an output folder inside the campaign's) are left out;
    `replace` gives some files (relative POSIX paths) other contents (the Studio's drafts)."""
    files: dict[str, Path | bytes] = {}
    skip = exclude.resolve() if exclude is not None else None
    for path in (p for p in folder.rglob("*") if p.is_file()):
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        files[rel] = path
    files.update(replace or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = files[rel]
            zf.writestr(info, data if isinstance(data, bytes) else data.read_bytes())
    return buf.getvalue()


def register_folder(b: Backends, folder: Path) -> TemplateRecord:
    """Register the campaign folder holding a template file (what `reel serve` does at start)."""
    return _register(b, _bundle_root(folder))


def register_file(b: Backends, template: Path, *, exclude: Path | None = None) -> TemplateRecord:
    """Register the campaign of a template file of any name (`reel batch`): its folder, with
    that file as the template."""
    from chalicelib.template.documents import DocumentError, decode
    from chalicelib.template.library import parse_document

    try:
        doc = parse_document(decode(template.read_bytes()), template.suffix, "template")
    except DocumentError as exc:
        raise TemplateError(f"{template.name}: {exc.message}", field=exc.field) from None
    bundle = pack(template.resolve().parent, exclude=exclude)
    return register_template(b, TemplateUpload(template=doc), bundle=bundle)


def register_template(
    b: Backends, upload: TemplateUpload | None = None, *, bundle: bytes | None = None
) -> TemplateRecord:
    """Register a template version from an upload (document and/or bundle key) or zip bytes."""
    with tempfile.TemporaryDirectory(prefix="reel-register-", dir=scratch(b)) as tmp:
        folder = Path(tmp)
        key = upload.bundle if upload else None
        if key is not None:
            try:
                bundle = b.blobs.get_bytes(key)
            except (KeyError, ValueError):
                raise NotFoundError(f"no blob under {key!r}", field="bundle") from None
        if bundle is not None:
            _safe_extract(bundle, folder)
        root = folder
        if upload is not None and upload.template is not None:
            for name in TEMPLATE_NAMES:
                (folder / name).unlink(missing_ok=True)
            (folder / "template.json").write_text(json.dumps(upload.template), encoding="utf-8")
        else:
            root = _bundle_root(folder)
        return _register(b, root)


def _register(b: Backends, root: Path) -> TemplateRecord:
    from chalicelib.connectors.rules import find_rules

    lt = load_template(_template_file(root))
    problems = check_template(lt)
    if not problems and b.speech is not None and _has_voice_lines(lt):
        from chalicelib.render.voice import voice_problems

        problems = voice_problems(lt, b.speech)  # its voices, asked of the configured engine
    if problems:
        raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
    find_rules(root)  # a bad rules.yaml is refused with the template, naming its path
    campaign_mapping_file(root)  # and so is a bad mapping.yaml
    data = pack(root)
    version = hashlib.sha256(data).hexdigest()[:16]
    template_id = lt.template.id
    existing = b.templates.get_template(template_id, version)
    if existing is not None:
        return existing
    bundle_key = f"templates/{template_id}/{version}.zip"
    b.blobs.put_bytes(bundle_key, data)
    record = TemplateRecord(
        id=template_id,
        version=version,
        bundle_key=bundle_key,
        created_at=time.time(),
        variables=sorted(lt.template.variables),
    )
    b.templates.put_template(record)
    return record


def _has_voice_lines(lt: LoadedTemplate) -> bool:
    from chalicelib.template.model import SceneRef, VoiceLayer

    return any(
        isinstance(layer, VoiceLayer)
        for e in lt.template.scenes
        if not (isinstance(e, SceneRef) and e.use not in lt.library)
        for layer in lt.scene_for(e).layers
    )


def get_template(b: Backends, template_id: str, version: str | None = None) -> TemplateRecord:
    record = b.templates.get_template(template_id, version)
    if record is None:
        what = f"template {template_id!r}" + (f" version {version!r}" if version else "")
        raise NotFoundError(f"no {what}", field="template_id")
    return record


def scratch(b: Backends) -> Path:
    b.scratch.mkdir(parents=True, exist_ok=True)
    return b.scratch


def materialize(b: Backends, record: TemplateRecord) -> LoadedTemplate:
    """The registered version, unpacked into the scratch directory (once per process)."""
    dest = scratch(b) / "templates" / record.id / record.version
    loaded = _LOADED.get(dest)
    if loaded is None:
        if not dest.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=f".{record.version}.", dir=_mkdir(dest.parent)))
            try:
                _safe_extract(b.blobs.get_bytes(record.bundle_key), tmp)
                os.replace(tmp, dest)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
                if not dest.is_dir():
                    raise
        loaded = _LOADED.put(dest, load_template(_template_file(dest)))
    return loaded


# A version's bundle never changes, but a long-lived server sees many versions.
_LOADED: Lru[Path, LoadedTemplate] = Lru(64)


MAPPING_NAMES = ("mapping.yaml", "mapping.yml", "mapping.json")


def campaign_mapping(b: Backends, record: TemplateRecord) -> FieldMapping | None:
    """The field mapping shipped in the campaign's bundle (mapping.yaml beside the template),
    used for records that arrive from a CRM; None when there is none."""
    return campaign_mapping_file(materialize(b, record).root)


def campaign_mapping_file(root: Path) -> FieldMapping | None:
    """The mapping file of a campaign folder, checked (TemplateError), or None."""
    from chalicelib.data.mapping import load_mapping

    found = next((root / n for n in MAPPING_NAMES if (root / n).is_file()), None)
    return load_mapping(found) if found else None


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
