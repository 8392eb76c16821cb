"""A campaign folder as the Studio sees it: the text files it may open and save, the assets
it may list and add, every path confined to the folder (no `..`, absolute paths or symlinks
out), every write atomic."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from chalicelib.errors import AssetError, RequestError
from chalicelib.render.sniff import SNIFF_BYTES, check_media, sniff

TEXT_SUFFIXES = (".yaml", ".yml", ".json")
DATA_SUFFIXES = (".csv", ".jsonl", ".ndjson")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MEDIA_SUFFIXES = (*IMAGE_SUFFIXES, ".mp4", ".mov", ".webm", ".mkv", ".m4a", ".mp3", ".wav", ".ogg")
MAX_TEXT_BYTES = 1024 * 1024  # a template or scene file: a few KB; more is a mistake
MAX_ASSET_BYTES = 200 * 1024 * 1024
MAX_FILES = 2000  # listed; a campaign holds tens


def _hidden(rel: PurePosixPath) -> bool:
    return any(
        part.startswith(".") or part in ("__pycache__", "node_modules") for part in rel.parts
    )


def confine(root: Path, rel: str, field: str = "path") -> Path:
    """`rel` (a campaign-relative POSIX path) made absolute inside `root`; RequestError naming
    `field` for an absolute path, `..`, a hidden part, a NUL or a symlink leading out."""
    if not rel or "\x00" in rel or "\\" in rel:
        raise RequestError(f"not a usable path: {rel[:80]!r}", field=field)
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or _hidden(pure):
        raise RequestError(f"the path must stay inside the campaign folder: {rel[:80]!r}", field)
    base = root.resolve()
    full = (base / pure).resolve()
    if not full.is_relative_to(base):
        raise RequestError(f"the path leads out of the campaign folder: {rel[:80]!r}", field)
    return full


def _walk(root: Path) -> Iterator[PurePosixPath]:
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = PurePosixPath(Path(dirpath).relative_to(base).as_posix())
        dirnames[:] = sorted(d for d in dirnames if not _hidden(PurePosixPath(d)))
        for name in sorted(filenames):
            rel = rel_dir / name if str(rel_dir) != "." else PurePosixPath(name)
            if not _hidden(rel) and (base / rel).resolve().is_relative_to(base):
                yield rel


def text_files(root: Path) -> list[str]:
    """The template, scene, mapping and rules files of the campaign (what the editor opens)."""
    found = [str(r) for r in _walk(root) if r.suffix.lower() in TEXT_SUFFIXES]
    return found[:MAX_FILES]


def data_files(root: Path) -> list[str]:
    """CSV and JSONL files of the campaign (recipients the Studio can pick from)."""
    return [str(r) for r in _walk(root) if r.suffix.lower() in DATA_SUFFIXES][:MAX_FILES]


def assets(root: Path) -> list[dict[str, object]]:
    """Media files of the campaign: path, kind and size."""
    listed: list[dict[str, object]] = []
    for rel in _walk(root):
        if rel.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        path = root / rel
        with path.open("rb") as fh:
            found = sniff(fh.read(SNIFF_BYTES))
        kind = _kind(found[0], found[1]) if found else "unknown"
        listed.append({"path": str(rel), "kind": kind, "bytes": path.stat().st_size})
        if len(listed) >= MAX_FILES:
            break
    return listed


def _kind(family: str, ext: str) -> str:
    if family == "mp4":
        return "audio" if ext == ".m4a" else "video"
    return family


def read_text(root: Path, rel: str) -> str:
    path = confine(root, rel)
    if path.suffix.lower() not in TEXT_SUFFIXES or not path.is_file():
        raise RequestError(f"no template, scene or mapping file {rel!r}", field="path")
    return path.read_text(encoding="utf-8")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_texts(root: Path, files: Mapping[str, str]) -> dict[Path, bytes]:
    """The editor's texts checked for a place in the campaign: path → bytes to write."""
    checked = {}
    for rel, text in files.items():
        path = confine(root, rel, field=f"files.{rel}")
        if path.suffix.lower() not in TEXT_SUFFIXES:
            raise RequestError("only .yaml, .yml and .json files are saved", f"files.{rel}")
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > MAX_TEXT_BYTES:
            raise RequestError(f"larger than {MAX_TEXT_BYTES // 1024} KB", f"files.{rel}")
        checked[path] = data
    return checked


def write_texts(root: Path, files: Mapping[str, str]) -> list[str]:
    """Write the editor's texts, each atomically (work in progress too: problems and all)."""
    checked = check_texts(root, files)  # every path checked before the first write
    for path, data in checked.items():
        _atomic_write(path, data)
    return sorted(files)


def check_asset(name: str, data: bytes, where: Path) -> tuple[str, str]:
    """(kind, extension) of an uploaded media file, checked like any asset by its bytes: its
    kind, its size, and decompression bombs; AssetError naming `file` otherwise."""
    if not data:
        raise AssetError(f"{name} is empty", field="file")
    if len(data) > MAX_ASSET_BYTES:
        raise AssetError(f"{name} is larger than {MAX_ASSET_BYTES >> 20} MB", field="file")
    found = sniff(data[:SNIFF_BYTES])
    if found is None:
        raise AssetError(f"{name} is not an image, a video or an audio file", field="file")
    kind = _kind(*found)
    where.write_bytes(data)
    check_media(where, kind, field="file", name=name)  # type: ignore[arg-type]
    return kind, found[1]


def add_asset(root: Path, name: str, data: bytes) -> dict[str, object]:
    """Store an uploaded file under `assets/` once it passes `check_asset`."""
    pure = PurePosixPath(name)
    if len(pure.parts) != 1 or pure.suffix.lower() not in MEDIA_SUFFIXES:
        raise RequestError(
            f"a media file name (…{', '.join(MEDIA_SUFFIXES)}), without folders: {name[:80]!r}",
            field="name",
        )
    target = confine(root, f"assets/{name}", field="name")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".upload-") as tmp:
        kind, _ = check_asset(name, data, Path(tmp) / "upload")
        os.replace(Path(tmp) / "upload", target)
    return {"path": f"assets/{name}", "kind": kind, "bytes": len(data)}
