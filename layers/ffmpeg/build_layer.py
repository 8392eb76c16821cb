"""Package THE ffmpeg of the project (imageio-ffmpeg's static build) as a Lambda layer zip.

The layer puts the binary at /opt/bin/ffmpeg; the render functions set REEL_FFMPEG to it (the
render container image copies the same binary to the same path, see Dockerfile).
A manifest records the version and sha256 so a deployed layer can be checked against the
build the tests ran with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from chalicelib.render.ffmpeg import ffmpeg_path, ffmpeg_version

BUILD = Path(__file__).resolve().parent / "build"
LAYER_ZIP = "ffmpeg-layer.zip"
PATH_IN_LAYER = "bin/ffmpeg"  # a layer is unpacked under /opt


def build(out_dir: Path = BUILD) -> tuple[Path, dict[str, Any]]:
    """Write `out_dir/ffmpeg-layer.zip`; returns its path and the manifest it holds."""
    binary = Path(ffmpeg_path())
    data = binary.read_bytes()
    manifest = {
        "ffmpeg_version": ffmpeg_version(),
        "source": binary.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "path_in_layer": f"/opt/{PATH_IN_LAYER}",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LAYER_ZIP
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(PATH_IN_LAYER, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
        zf.writestr(
            zipfile.ZipInfo("ffmpeg-manifest.json", (1980, 1, 1, 0, 0, 0)),
            json.dumps(manifest, indent=2),
        )
    return target, manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=BUILD, help=f"directory (default: {BUILD})")
    args = parser.parse_args(argv)
    target, manifest = build(args.out)
    print(json.dumps({"layer": str(target), **manifest}))


if __name__ == "__main__":
    main()
