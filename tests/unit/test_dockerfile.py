"""The render worker image and the ffmpeg layer: the Dockerfile's sources exist and its handler
imports; the layer zip holds an executable bin/ffmpeg, the very binary the tests render with."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import shlex
import stat
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib.render.ffmpeg import ffmpeg_path
from infra import deps

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "layers" / "ffmpeg" / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += " " + line.removesuffix("\\").strip()
        if line.endswith("\\"):
            continue
        word, _, args = pending.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends on a continuation line"
    return out


def args_of(name: str) -> list[str]:
    return [a for word, a in instructions() if word == name]


def env() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in args_of("ENV"):
        for token in shlex.split(line):
            key, _, value = token.partition("=")
            pairs[key] = value
    return pairs


def test_the_base_image_is_the_aws_lambda_python_image() -> None:
    froms = args_of("FROM")
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert image == "public.ecr.aws/lambda/python"
    # the API's runtime too: Amazon Linux 2023, whose glibc the pinned manylinux_2_28 wheels need
    assert tag == ".".join(map(str, deps.LAMBDA_PYTHON))
    assert tuple(map(int, tag.split("."))) >= (3, 12)


def test_every_copy_source_exists_in_the_repository() -> None:
    copies = args_of("COPY")
    assert copies
    for line in copies:
        parts = [p for p in shlex.split(line) if not p.startswith("--")]
        *sources, dest = parts
        assert sources, line
        assert dest.startswith("${LAMBDA_TASK_ROOT}"), line
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    copied = {s for line in copies for s in shlex.split(line)[:-1]}
    # the handler's package (with its fonts) and what `pip install` of the project needs
    assert {"chalicelib", "pyproject.toml", "README.md", "app.py"} <= copied
    assert any((ROOT / "chalicelib" / "render" / "fonts").glob("*.ttf"))


def test_the_cmd_handler_is_importable_and_callable() -> None:
    (cmd,) = args_of("CMD")
    (handler,) = json.loads(cmd)
    module_name, _, attr = handler.rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attr))
    assert handler == "chalicelib.handlers.render.handler"
    # the batch steps run from the same image with their handler as the command
    batch = importlib.import_module("chalicelib.handlers.batch")
    assert all(callable(getattr(batch, n)) for n in ("plan", "finalize", "record_failure"))


def test_the_image_ffmpeg_is_at_the_layer_path() -> None:
    variables = env()
    assert variables["REEL_FFMPEG"] == "/opt/bin/ffmpeg"
    (run,) = args_of("RUN")
    assert "imageio_ffmpeg" in run and "/opt/bin/ffmpeg" in run
    assert re.search(r"chmod 0?755 /opt/bin/ffmpeg", run)
    assert variables["REEL_WORK_DIR"].startswith("/tmp/")  # the only writable place in Lambda


@pytest.fixture(scope="module")
def build_layer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_layer", ROOT / "layers" / "ffmpeg" / "build_layer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layer_zip_holds_an_executable_ffmpeg(build_layer: ModuleType, tmp_path: Path) -> None:
    # WHEN the layer is built into a scratch directory (not the repository's build/)
    target, manifest = build_layer.build(tmp_path / "layer")

    # THEN it is bin/ffmpeg (→ /opt/bin/ffmpeg, REEL_FFMPEG of the image) and its manifest
    assert target == tmp_path / "layer" / "ffmpeg-layer.zip"
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["bin/ffmpeg", "ffmpeg-manifest.json"]
        info = zf.getinfo("bin/ffmpeg")
        mode = info.external_attr >> 16
        assert mode & stat.S_IXUSR and mode & stat.S_IXGRP and mode & stat.S_IXOTH
        assert info.date_time == (1980, 1, 1, 0, 0, 0)  # reproducible
        digest = hashlib.sha256()
        with zf.open(info) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        stored = json.loads(zf.read("ffmpeg-manifest.json"))
    assert stored == manifest
    assert manifest["path_in_layer"] == env()["REEL_FFMPEG"]
    # the very binary the tests render with
    assert digest.hexdigest() == manifest["sha256"]
    assert manifest["sha256"] == hashlib.sha256(Path(ffmpeg_path()).read_bytes()).hexdigest()
    assert manifest["ffmpeg_version"]
