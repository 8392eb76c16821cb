"""Voice-over: a plan's voice lines spoken through the speech port, cached, fitted to their time.

`speak` is the step between binding (and `localize`) and anything that renders or keys a
plan with voice lines: each line is looked up in the cache by what determines its sound
(engine, voice, text, lexicon, rate, pitch), spoken on a miss, and fitted to its window as its
layer says (`overflow`). Lines whose text is the same for two recipients share one clip.
It does no ffmpeg work: the clip is a WAV whose length is read from its header.
"""

from __future__ import annotations

import json
import math
import re
import wave
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.errors import Problem, VoiceError, VoiceOverflowError
from chalicelib.render.segments import content_key
from chalicelib.speech import LexEntry, SpeechError, SpeechRequest
from chalicelib.template.model import MAX_SPEEDUP, Overflow
from chalicelib.template.plan import PlanScene, RenderPlan, VoiceCue, VoiceMark

if TYPE_CHECKING:
    from chalicelib.ports import BlobStore, SpeechSynth
    from chalicelib.template.library import LoadedTemplate

EXTEND_MARGIN = 0.25  # seconds of breath after a line that made its scene grow


def voice_name(cue: VoiceCue, engine: str) -> str:
    """The cue's voice for `engine`; VoiceError when it names none for it."""
    if isinstance(cue.voice, str):
        return cue.voice
    if engine in cue.voice:
        return cue.voice[engine]
    raise VoiceError(
        f"no voice for the {engine} engine (given for: {sorted(cue.voice)})", cue.field
    )


def lexicon_for(plan: RenderPlan, cue: VoiceCue) -> tuple[LexEntry, ...]:
    """The plan's lexicon entries that occur in the cue's line (whole words): only they are
    part of its clip's key, so a new entry does not re-speak lines that do not use it."""
    found = []
    for w in plan.lexicon:
        if re.search(rf"(?<!\w){re.escape(w.grapheme)}(?!\w)", cue.text, re.IGNORECASE):
            found.append(LexEntry(w.grapheme, w.alias, w.ipa))
    return tuple(found)


def request_for(cue: VoiceCue, engine: str, lexicon: tuple[LexEntry, ...]) -> SpeechRequest:
    return SpeechRequest(
        text=cue.text,
        voice=voice_name(cue, engine),
        ssml=cue.ssml,
        rate=cue.rate,
        pitch=cue.pitch,
        lexicon=lexicon,
    )


def clip_key(engine: str, request: SpeechRequest) -> str:
    """What determines a clip's sound: same key ⇔ same clip (two Anas share theirs)."""
    return content_key({"engine": engine, "request": asdict(request)})


def clip_blob(key: str) -> str:
    return f"voice/{key[:2]}/{key}.wav"


def marks_blob(key: str) -> str:
    return f"voice/{key[:2]}/{key}.json"


def _duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return float(w.getnframes() / w.getframerate())


def _spoken(
    cue: VoiceCue,
    synth: SpeechSynth,
    store: BlobStore,
    scratch: Path,
    lexicon: tuple[LexEntry, ...],
) -> tuple[str, Path, list[VoiceMark]]:
    """(blob key, local file, marks) of the cue's clip: from the store, or spoken into it."""
    try:
        engine = synth.name  # a misconfigured engine (built on first use) fails here
    except SpeechError as exc:
        raise VoiceError(f"the speech engine cannot start: {exc}", cue.field) from exc
    key = clip_key(engine, request_for(cue, engine, lexicon))
    blob = clip_blob(key)
    try:
        path = store.fetch(blob, scratch)
        marks = json.loads(store.get_bytes(marks_blob(key)))
        return blob, path, [VoiceMark(**m) for m in marks]
    except KeyError:
        pass
    try:
        speech = synth.synthesize(request_for(cue, engine, lexicon))
    except SpeechError as exc:
        raise VoiceError(f"the {engine} engine failed: {exc}", cue.field) from exc
    found = [VoiceMark(kind=m.kind.value, time=m.time, text=m.text) for m in speech.marks]
    # The marks first, the clip last: the clip's presence means both are there.
    store.put_bytes(marks_blob(key), json.dumps([m.model_dump() for m in found]).encode())
    store.put_bytes(blob, speech.wav)
    return blob, store.fetch(blob, scratch), found


def _extend(plan: RenderPlan, index: int, delta: float) -> RenderPlan:
    """`plan` with the scene holding voice `index` longer by `delta` seconds, and everything
    after that scene later by as much."""
    cue = plan.voices[index]
    scene = next(
        s
        for s in plan.scenes
        if s.id == cue.scene and s.start <= cue.start + 1e-6 < s.start + s.duration
    )
    end = scene.start + scene.duration
    grown = scene.duration + delta

    def later(t: float) -> float:
        return round(t + delta, 6) if t >= end - 1e-6 else t

    scenes: list[PlanScene] = []
    for s in plan.scenes:
        if s is scene:
            layers = [
                pl.model_copy(update={"end": grown}) if abs(pl.end - s.duration) < 1e-6 else pl
                for pl in s.layers
            ]
            scenes.append(s.model_copy(update={"duration": round(grown, 6), "layers": layers}))
        else:
            scenes.append(s.model_copy(update={"start": later(s.start)}))
    cues = [c.model_copy(update={"start": later(c.start)}) for c in plan.cues]
    voices = [
        v.model_copy(update={"start": later(v.start)}) if i != index else v
        for i, v in enumerate(plan.voices)
    ]
    return plan.model_copy(
        update={
            "scenes": scenes,
            "cues": cues,
            "voices": voices,
            "duration": round(plan.duration + delta, 6),
            "poster_time": later(plan.poster_time),
        }
    )


def fit(cue: VoiceCue, duration: float) -> tuple[float, float]:
    """(tempo, seconds the scene must grow) for a clip of `duration` in the cue's window;
    VoiceOverflowError when its layer says so, or speeding up would take more than 15 %."""
    if duration <= cue.window + 1e-3:
        return 1.0, 0.0
    need = duration / cue.window
    over = f"the line takes {duration:.2f}s, its window is {cue.window:.2f}s"
    if cue.overflow == Overflow.extend:
        return 1.0, math.ceil((duration - cue.window + EXTEND_MARGIN) * 100) / 100
    if cue.overflow == Overflow.speed and need <= MAX_SPEEDUP:
        return need, 0.0
    if cue.overflow == Overflow.speed:
        raise VoiceOverflowError(
            f"{over}: {need:.2f}× is more than the +15 % `overflow: speed` allows "
            "(use overflow: extend, or a longer window)",
            cue.field,
        )
    raise VoiceOverflowError(f"{over} (overflow: error)", cue.field)


def speak(
    plan: RenderPlan,
    synth: SpeechSynth | None,
    store: BlobStore,
    scratch: Path,
    lexicon: tuple[LexEntry, ...] = (),
) -> RenderPlan:
    """The plan with every voice line spoken (its clip in `store`, a local copy in `scratch`)
    and fitted; idempotent. VoiceError (code voice_failed, naming the layer) when the engine
    fails; nothing is stored for a line that failed."""
    if all(v.clip for v in plan.voices):
        return plan
    if synth is None:
        raise VoiceError("no speech engine is configured", plan.voices[0].field)
    scratch.mkdir(parents=True, exist_ok=True)
    for i in range(len(plan.voices)):
        cue = plan.voices[i]
        if cue.clip:
            continue
        words = lexicon or lexicon_for(plan, cue)
        blob, path, marks = _spoken(cue, synth, store, scratch, words)
        duration = _duration(path)
        tempo, grow = fit(cue, duration)
        if grow:
            plan = _extend(plan, i, grow)
            cue = plan.voices[i].model_copy(update={"window": round(cue.window + grow, 6)})
        done = cue.model_copy(
            update={
                "clip": blob,
                "src": str(path),
                "duration": round(duration, 6),
                "tempo": round(tempo, 6),
                "marks": marks,
            }
        )
        plan = plan.model_copy(update={"voices": [*plan.voices[:i], done, *plan.voices[i + 1 :]]})
    return plan


def overflows(
    plan: RenderPlan, synth: SpeechSynth, store: BlobStore, scratch: Path
) -> list[tuple[Problem, bool]]:
    """The voice lines of a plan that do not fit as they are (`reel validate --data`), each
    with its layer, its length, its window and what its `overflow` does about it; and whether
    the recipient would fail for it. Lines are spoken into `store` (the render reuses them)."""
    found = []
    for cue in plan.voices:
        _, path, _ = _spoken(cue, synth, store, scratch, lexicon_for(plan, cue))
        duration = _duration(path)
        if duration <= cue.window + 1e-3:
            continue
        try:
            tempo, grow = fit(cue, duration)
        except VoiceOverflowError as exc:
            found.append((Problem(cue.field, exc.message), True))
            continue
        what = f"spoken {100 * (tempo - 1):.0f} % faster" if not grow else f"scene grows {grow:g}s"
        said = f"the line takes {duration:.2f}s, its window is {cue.window:.2f}s: {what}"
        found.append((Problem(cue.field, said), False))
    return found


def describe(cue: VoiceCue) -> dict[str, Any]:
    """What of a spoken cue determines the audio track (its key)."""
    return {
        "clip": cue.clip,
        "start": cue.start,
        "tempo": cue.tempo,
        "volume": cue.volume,
        "duration": cue.duration,
    }


def voice_problems(lt: LoadedTemplate, synth: SpeechSynth) -> list[Problem]:
    """The voice layers (and `voices:` entries) naming a voice the engine does not have, or
    none for it; each Problem names the field."""
    from chalicelib.template.bind import voice_for
    from chalicelib.template.model import SceneRef, VoiceLayer

    tpl = lt.template
    problems: list[Problem] = []
    checked: dict[str, bool] = {}
    engine = "speech"

    def known(name: str) -> bool:
        if name not in checked:
            checked[name] = synth.has_voice(name)
        return checked[name]

    def check(path: str, voice: str | dict[str, str]) -> None:
        name = voice if isinstance(voice, str) else voice.get(engine)
        if name is None:
            problems.append(Problem(path, f"names no voice for the {engine} engine"))
        elif not known(name):
            problems.append(Problem(path, f"the {engine} engine has no voice {name!r}"))

    try:
        engine = synth.name  # a misconfigured engine fails here (built on first use)
        for locale, voice in tpl.voices.items():
            check(f"voices.{locale}", voice)
        for index, entry in enumerate(tpl.scenes):
            if isinstance(entry, SceneRef) and entry.use not in lt.library:
                continue
            for li, layer in enumerate(lt.scene_for(entry).layers):
                if isinstance(layer, VoiceLayer):
                    path = f"scenes[{index}].layers[{li}].voice"
                    if layer.voice is not None:
                        check(path, layer.voice)
                    elif (
                        tpl.locale not in tpl.voices and tpl.locale.split("_")[0] not in tpl.voices
                    ):
                        check(path, voice_for(tpl, tpl.locale, None))
        problems.extend(_unsaid_ipa(lt, synth, [name for name, ok in checked.items() if ok]))
    except SpeechError as exc:
        problems.append(Problem("voices", f"the {engine} engine cannot be asked: {exc}"))
    return problems


def _unsaid_ipa(lt: LoadedTemplate, synth: SpeechSynth, voices: list[str]) -> list[Problem]:
    """The lexicon's IPA-only entries one of the voices cannot say (a symbol it has no code
    for): every line saying the word would fail. An entry with an alias falls back on it."""
    from chalicelib.errors import TemplateError
    from chalicelib.template.lexicon import load_lexicon

    cannot_say = getattr(synth, "cannot_say", None)  # engines that turn IPA into their own
    if cannot_say is None or not voices:
        return []
    try:
        words = load_lexicon(lt.root)
    except TemplateError:
        return []  # the lexicon's own check reports it
    found = []
    for w in words:
        if not w.ipa or w.alias:
            continue
        for voice in voices:
            reason = cannot_say(LexEntry(w.grapheme, w.alias, w.ipa), voice)
            if reason:
                said = f"{reason}, and the entry has no alias to fall back on"
                found.append(Problem(f"lexicon.yaml: {w.grapheme}.ipa", said))
                break
    return found
