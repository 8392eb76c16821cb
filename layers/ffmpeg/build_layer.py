"""Package THE ffmpeg of the project (imageio-ffmpeg's static build) as a Lambda layer zip.

The layer puts the binary at /opt/bin/ffmpeg; the render functions set REEL_FFMPEG to it.
A manifest records the version and sha256 so a deployed layer can be checked against the
build the tests ran with.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from chalicelib.render.ffmpeg import ffmpeg_path, ffmpeg_version

BUILD = Path(__file__).resolve().parent / "build"


def main() -> None:
    binary = Path(ffmpeg_path())
    data = binary.read_bytes()
    manifest = {
        "ffmpeg_version": ffmpeg_version(),
        "source": binary.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "path_in_layer": "/opt/bin/ffmpeg",
    }
    BUILD.mkdir(exist_ok=True)
    target = BUILD / "ffmpeg-layer.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bin/ffmpeg", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
        zf.writestr(
            zipfile.ZipInfo("ffmpeg-manifest.json", (1980, 1, 1, 0, 0, 0)),
            json.dumps(manifest, indent=2),
        )
    print(json.dumps({"layer": str(target), **manifest}))


if __name__ == "__main__":
    main()
