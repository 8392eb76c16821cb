"""A tiny Piper voice for tests: an ONNX model with Piper's interface, made with onnx's helpers.

Piper (piper-tts 1.8) runs a voice as `session.run(None, {input: int64[1, N] phoneme ids,
input_lengths: int64[1], scales: float32[3] (noise, length, noise_w)})` and reads the first
output's samples. This model holds each phoneme id for `SAMPLES_PER_ID × length_scale`
samples at the level id / 256 (after one full-scale sample): a clip's length grows with its
phonemes and the pace, and the ids can be read back from the WAV (`ids_in`), so a test can
see what Piper fed the model.
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SAMPLES_PER_ID = 1024  # 64 ms a phoneme id: lines last about as long as spoken ones
LEVEL = 256.0


def _model() -> bytes:
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["input"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["ids_f", "level"], ["levels"]),
        helper.make_node("Unsqueeze", ["levels", "last"], ["column"]),  # [1, N, 1]
        helper.make_node("Gather", ["scales", "one"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["length_scale", "per_id"], ["reps_f"]),
        helper.make_node("Ceil", ["reps_f"], ["reps_c"]),
        helper.make_node("Cast", ["reps_c"], ["reps"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["reps", "one_dim"], ["reps_1"]),
        helper.make_node("Concat", ["ones2", "reps_1"], ["shape"], axis=0),  # [1, 1, k]
        helper.make_node("Expand", ["column", "shape"], ["held"]),  # [1, N, k]
        helper.make_node("Reshape", ["held", "out_shape"], ["flat"]),  # [1, 1, N·k]
        # One full-scale sample first: Piper's peak normalization then changes nothing.
        helper.make_node("Concat", ["peak", "flat"], ["output"], axis=2),
    ]
    inits = [
        helper.make_tensor("level", TensorProto.FLOAT, [], [LEVEL]),
        helper.make_tensor("last", TensorProto.INT64, [1], [2]),
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("per_id", TensorProto.FLOAT, [], [float(SAMPLES_PER_ID)]),
        helper.make_tensor("one_dim", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("ones2", TensorProto.INT64, [2], [1, 1]),
        helper.make_tensor("out_shape", TensorProto.INT64, [3], [1, 1, -1]),
        helper.make_tensor("peak", TensorProto.FLOAT, [1, 1, 1], [1.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "reel-test-voice",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "samples"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime reads, whatever onnx writes by default
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def phoneme_id_map() -> dict[str, list[int]]:
    """Piper's own default map (what its English voices carry)."""
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {k: list(v) for k, v in DEFAULT_PHONEME_ID_MAP.items()}


def make_voice(folder: Path, name: str = "en_US-test-low", espeak_voice: str = "en-us") -> Path:
    """A `.onnx` voice and its `.onnx.json` config in `folder`; the model's path."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    model.write_bytes(_model())
    id_map = phoneme_id_map()
    config = {
        "audio": {"sample_rate": SAMPLE_RATE, "quality": "low"},
        "espeak": {"voice": espeak_voice},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_id_map": id_map,
        "num_symbols": max(i for ids in id_map.values() for i in ids) + 1,
        "num_speakers": 1,
        "speaker_id_map": {},
        "piper_version": "1.8.0",
    }
    (folder / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False))
    return model


def ids_in(wav: bytes, length_scale: float = 1.0) -> list[int]:
    """The phoneme ids the model was given, read back from its clip (one sentence's)."""
    with wave.open(io.BytesIO(wav)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float)
    step = int(np.ceil(SAMPLES_PER_ID * length_scale))
    held = samples[1 + step // 2 :: step]
    return [round(v * LEVEL / 32767) for v in held]


def phonemes_in(wav: bytes, length_scale: float = 1.0) -> str:
    """The phonemes the model was given (Piper's pads, sentence start and end left out)."""
    by_id = {ids[0]: p for p, ids in phoneme_id_map().items() if len(ids) == 1}
    return "".join(by_id[i] for i in ids_in(wav, length_scale) if i > 2)
