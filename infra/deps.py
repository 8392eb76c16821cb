"""The API's Python dependencies as a Lambda layer zip, built offline from a local wheelhouse."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Linux wheels for the Lambda runtime, downloaded once (the only step that needs PyPI),
#: and the layer zips built from them.
WHEELHOUSE = ROOT / "infra" / ".wheelhouse"
#: Runtime dependencies the API's layer leaves out. chalice: its packager adds the chalice
#: runtime (chalice/app.py) to the API's zip, and the CLI, pip, setuptools… have no business on
#: Lambda. imageio-ffmpeg: 165 MiB of ffmpeg binaries, beyond Lambda's 250 MiB with the rest;
#: the API never runs ffmpeg (renders run in the render image, which has it).
NOT_IN_API = frozenset({"chalice", "imageio-ffmpeg"})
#: The API's Lambda runtime. Not the local Python's (chalice's default): Pillow 13 and
#: imageio-ffmpeg 0.8.1 ship manylinux_2_28 wheels only, and python3.11 runs on Amazon Linux 2
#: (glibc 2.26), python3.12 on Amazon Linux 2023 (glibc 2.34).
LAMBDA_PYTHON = (3, 12)
LAMBDA_RUNTIME = "python{}.{}".format(*LAMBDA_PYTHON)
LAMBDA_ABI = "cp{}{}".format(*LAMBDA_PYTHON)
#: The wheel platforms that runtime accepts (glibc 2.34, x86_64).
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 35)] + ["manylinux2014_x86_64"]
#: Lambda's limit for a function and its layers, unzipped.
MAX_UNZIPPED = 250 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement, normalized."""
    name = requirement
    for sep in "[<>=!~;@ ":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The API's requirements: the project's runtime dependencies, minus NOT_IN_API."""
    with pyproject.open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return [d for d in deps if _name(d) not in NOT_IN_API]


def _target() -> list[str]:
    """pip options selecting wheels for the Lambda runtime, whatever the host."""
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    version = "{}.{}".format(*LAMBDA_PYTHON)
    return [
        "--only-binary=:all:",
        *platforms,
        *("--implementation", "cp", "--python-version", version, "--abi", LAMBDA_ABI),
    ]


def _key(reqs: list[str]) -> str:
    return hashlib.sha256("\n".join([LAMBDA_ABI, *PLATFORMS, *reqs]).encode()).hexdigest()[:16]


def _pip(*args: str, quiet: bool = False) -> None:
    """Run pip; `quiet` keeps its output unless it fails (the caller decides what follows)."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=quiet, check=False)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)


def layer_zip(
    reqs: list[str] | None = None, wheelhouse: Path = WHEELHOUSE, *, offline: bool = False
) -> Path:
    """The layer zip (`python/…`) of `reqs` for the Lambda runtime, built once per requirements.

    The wheels come from `wheelhouse`; only when it lacks them (a new or changed requirement)
    does pip go to the package index, unless `offline`. The zip is reproducible (sorted entries,
    fixed timestamps), so CDK's asset hash changes only when a dependency does.
    """
    reqs = requirements() if reqs is None else reqs
    target = wheelhouse / f"api-layer-{_key(reqs)}.zip"
    if target.exists():
        return target
    wheelhouse.mkdir(parents=True, exist_ok=True)
    req_file = wheelhouse / f"requirements-{_key(reqs)}.txt"
    req_file.write_text("".join(f"{r}\n" for r in reqs))
    local = ["--no-index", "--find-links", str(wheelhouse)]
    with tempfile.TemporaryDirectory(prefix="reel-layer-") as tmp:
        site = Path(tmp) / "python"
        install = ["install", "--quiet", "--no-compile", "--target", str(site), *_target()]
        try:
            _pip(*install, *local, "-r", str(req_file), quiet=True)
        except subprocess.CalledProcessError as missing:
            if offline:
                sys.stderr.write(missing.stderr.decode(errors="replace"))
                raise
            print(f"filling {wheelhouse} from the package index", file=sys.stderr)
            _pip("download", "--quiet", "--dest", str(wheelhouse), *_target(), "-r", str(req_file))
            shutil.rmtree(site, ignore_errors=True)
            _pip(*install, *local, "-r", str(req_file))
        _prune(site)
        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        if size > MAX_UNZIPPED:
            raise SystemExit(f"the API layer is {size / 2**20:.0f} MiB unzipped (limit 250)")
        partial = target.with_suffix(".tmp")
        _write_zip(site, partial)
        os.replace(partial, target)
    return target


def _prune(site: Path) -> None:
    """Drop what never runs on Lambda: scripts, caches."""
    for junk in [site / "bin", *site.rglob("__pycache__")]:
        shutil.rmtree(junk, ignore_errors=True)


def _write_zip(site: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(Path("python") / path.relative_to(site)), _EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
