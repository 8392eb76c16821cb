"""A plan's media made into files a render may open: URLs from data fetched, every file checked.

`localize` is the one step between binding and anything that renders or keys a plan: URLs
from data are replaced by the copies an `AssetFetcher` (chalicelib.ports) made, and every media
file (fetched or local) is sniffed and checked for its kind, before any cache key is computed
from its bytes or ffmpeg sees it. It does no network I/O itself: the fetcher it is given does.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from chalicelib.errors import AssetError
from chalicelib.render.sniff import Kind, check_media
from chalicelib.template.plan import RenderPlan
from chalicelib.template.values import url_scheme

if TYPE_CHECKING:
    from chalicelib.ports import AssetFetcher


def _field_of(ref: str, record: dict[str, Any], where: str) -> str:
    """The variable a media ref came from (when the record gave it), else its place."""
    for name, value in record.items():
        if not isinstance(value, str) or not value:
            continue
        if value == ref:
            return name
        if url_scheme(value) is None:
            rel = PurePosixPath(value.replace("\\", "/"))
            parts = [p for p in rel.parts if p not in (".", "/")]
            if parts and PurePosixPath(ref).parts[-len(parts) :] == tuple(parts):
                return name
    return where


def localize(plan: RenderPlan, fetcher: AssetFetcher | None = None) -> RenderPlan:
    """The plan with every URL from data replaced by its fetched copy and every media file
    checked for its kind; idempotent, cheap once done. Without a fetcher a URL is refused
    (AssetError naming its variable): only the wiring decides whether URLs may be fetched."""
    memo: dict[tuple[str, str], str] = {}

    def local(ref: str, kind: Kind, where: str) -> str:
        if (ref, kind) in memo:
            return memo[(ref, kind)]
        field = _field_of(ref, plan.record, where)
        if url_scheme(ref) is not None:
            if fetcher is None:
                raise AssetError(
                    f"{field} is a URL; URLs in data are fetched only where an asset "
                    "fetcher is configured",
                    field=field,
                )
            path = fetcher.fetch(ref, kind, field=field)
        else:
            path = Path(ref)
            check_media(path, kind, field=field)
        memo[(ref, kind)] = str(path)
        return str(path)

    scenes = []
    for scene in plan.scenes:
        bg = scene.background
        bg_update: dict[str, str] = {}
        if bg.image:
            bg_update["image"] = local(bg.image, "image", f"{scene.id}.background.image")
        if bg.video:
            bg_update["video"] = local(bg.video, "video", f"{scene.id}.background.video")
        layers = []
        for i, pl in enumerate(scene.layers):
            images = getattr(pl.layer, "images", None)
            if images:  # a Lottie's replaced images are media like any other
                where = f"{scene.id}.layers[{i}].images"
                new_images = {k: local(v, "image", where) for k, v in images.items()}
                if new_images != images:
                    layer = pl.layer.model_copy(update={"images": new_images})
                    pl = pl.model_copy(update={"layer": layer})
            src = getattr(pl.layer, "src", None)
            if src is None or pl.layer.type not in ("image", "video"):  # svg, lottie: files
                # of the campaign, checked by their own parsers when bound
                layers.append(pl)
                continue
            kind: Kind = "video" if pl.layer.type == "video" else "image"
            new = local(src, kind, f"{scene.id}.layers[{i}].src")
            layers.append(
                pl
                if new == src
                else pl.model_copy(update={"layer": pl.layer.model_copy(update={"src": new})})
            )
        update: dict[str, Any] = {"layers": layers}
        if bg_update and any(bg_update[k] != getattr(bg, k) for k in bg_update):
            update["background"] = bg.model_copy(update=bg_update)
        scenes.append(scene.model_copy(update=update))
    cues = [
        cue.model_copy(update={"src": local(cue.src, "audio", f"cues[{i}].src")})
        for i, cue in enumerate(plan.cues)
    ]
    music = plan.music
    if music.music:
        music = music.model_copy(update={"music": local(music.music, "audio", "audio.music")})
    return plan.model_copy(update={"scenes": scenes, "cues": cues, "music": music})
