"""A recipient's landing page: what it shows (video, poster, title, CTA, captions), bound from
the template's `page:` section and the recipient's render plan."""

from __future__ import annotations

import re
import time

from pydantic import Field

from chalicelib.errors import DataError
from chalicelib.landing.tokens import new_token
from chalicelib.template.bind import bind_values, with_translations
from chalicelib.template.experiments import assigned, variant_template
from chalicelib.template.expr import interpolate
from chalicelib.template.interactive import PageChapter, PageInteraction, resolve
from chalicelib.template.library import LoadedTemplate
from chalicelib.template.model import Strict, TextLayer
from chalicelib.template.plan import RenderPlan, VoiceCue, VoiceMark


class Cue(Strict):
    """One caption: a text layer's words while it is on screen."""

    start: float
    end: float
    text: str


class PageScene(Strict):
    """Where a scene of the recipient's video is (for the scene drop-off)."""

    id: str
    start: float
    end: float


class Page(Strict):
    token: str = Field(description="the page's URL token: random, not the recipient id")
    campaign_id: str
    recipient_id: str
    video_key: str
    poster_key: str
    title: str
    description: str | None = None
    cta_label: str | None = None
    cta_url: str | None = None
    captions: list[Cue] = Field(default_factory=list)
    width: int
    height: int
    duration: float
    poster_time: float = 0.0
    created_at: float
    locale: str | None = Field(None, description="the locale the page speaks (its record's)")
    interactions: list[PageInteraction] = Field(
        default_factory=list, description="drawn by the player over the video, at their times"
    )
    chapters: list[PageChapter] = Field(default_factory=list)
    experiments: dict[str, str] = Field(
        default_factory=dict, description="experiment id → the variant this recipient sees"
    )
    scenes: list[PageScene] = Field(default_factory=list, description="the video's scenes")


def _safe_url(url: str, field: str) -> str:
    lowered = url.strip().lower()
    if not (lowered.startswith(("https://", "http://", "/")) or lowered.startswith("mailto:")):
        raise DataError(f"the CTA URL must be http(s), mailto: or a path: {url[:80]!r}", field)
    return url.strip()


def captions(plan: RenderPlan) -> list[Cue]:
    """The plan's text layers as caption cues, in the order they appear."""
    cues = []
    for scene in plan.scenes:
        for pl in scene.layers:
            if isinstance(pl.layer, TextLayer) and pl.layer.text.strip():
                start, end = scene.start + pl.start, scene.start + pl.end
                cues.append(Cue(start=round(start, 3), end=round(end, 3), text=pl.layer.text))
    cues += voice_captions(plan)
    return sorted(cues, key=lambda c: (c.start, c.end))


_SENTENCE_END = re.compile(r"(?<=[.!?…。])\s+")
WORDS_PER_CAPTION = 7


def voice_captions(plan: RenderPlan) -> list[Cue]:
    """The spoken lines as caption cues: word timings grouped into short phrases where the
    engine gave them, else one cue per sentence (spread over the clip by length)."""
    out: list[Cue] = []
    for v in plan.voices:
        if not v.caption or not v.clip:
            continue
        length = v.duration / v.tempo
        end = v.start + length
        words = [m for m in v.marks if m.kind == "word" and m.text.strip()]
        spans: list[tuple[float, str]] = []
        if words:
            group: list[VoiceMark] = []
            for m in words:
                group.append(m)
                if len(group) >= WORDS_PER_CAPTION or m.text.rstrip()[-1:] in ".!?":
                    spans.append((group[0].time, " ".join(w.text for w in group)))
                    group = []
            if group:
                spans.append((group[0].time, " ".join(w.text for w in group)))
        else:
            text = _plain(v)
            sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
            starts = [m.time for m in v.marks if m.kind == "sentence"]
            if len(starts) != len(sentences):  # spread by length
                total = sum(len(s) for s in sentences) or 1
                starts, at = [], 0.0
                for s in sentences:
                    starts.append(at)
                    at += v.duration * len(s) / total
            spans = list(zip(starts, sentences, strict=True))
        for k, (t, text) in enumerate(spans):
            a = v.start + t / v.tempo
            b = v.start + spans[k + 1][0] / v.tempo if k + 1 < len(spans) else end
            out.append(Cue(start=round(a, 3), end=round(max(b, a + 0.2), 3), text=text))
    return out


def _plain(cue: VoiceCue) -> str:
    if not cue.ssml:
        return cue.text.strip()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", cue.text)).strip()


def make_page(
    lt: LoadedTemplate,
    plan: RenderPlan,
    *,
    campaign_id: str,
    recipient_id: str,
    video_key: str,
    poster_key: str,
) -> Page:
    """Bind the template's page section for the recipient of `plan`; a new token."""
    lt = variant_template(lt, assigned(plan.record))
    spec = lt.template.page
    values, _ = bind_values(lt, plan.record)
    values = with_translations(lt.template, values, plan.locale, [])

    def text(value: str | None, field: str) -> str | None:
        if value is None:
            return None
        try:
            return interpolate(value, values, plan.locale)
        except ValueError as exc:
            raise DataError(f"{exc} (at page.{field})", field=f"page.{field}") from exc

    cta = spec.cta
    interactions, chapters = resolve(lt.template, plan, values)
    return Page(
        token=new_token(),
        campaign_id=campaign_id,
        recipient_id=recipient_id,
        video_key=video_key,
        poster_key=poster_key,
        title=text(spec.title, "title") or lt.template.name or lt.template.id,
        description=text(spec.description, "description"),
        cta_label=text(cta.label, "cta.label") if cta else None,
        cta_url=_safe_url(text(cta.url, "cta.url") or "", "page.cta.url") if cta else None,
        captions=captions(plan),
        width=plan.canvas.width,
        height=plan.canvas.height,
        duration=plan.duration,
        poster_time=plan.poster_time,
        created_at=time.time(),
        locale=plan.locale,
        interactions=interactions,
        chapters=chapters,
        experiments=assigned(plan.record),
        scenes=[
            PageScene(id=s.id, start=s.start, end=round(s.start + s.duration, 3))
            for s in plan.scenes
        ],
    )
