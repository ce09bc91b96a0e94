"""Convert MediaPipe's face models (.tflite in the mediapipe==0.10.21 wheel, Apache-2.0) to reenact weights.

    .venv/bin/python tools/convert_mediapipe.py                 # downloads the wheel with `pip download` into a temp dir
    .venv/bin/python tools/convert_mediapipe.py --wheel PATH    # or use a wheel already on disk
    .venv/bin/python tools/convert_mediapipe.py --dump face_landmark.tflite   # print the op graph

Writes weights/blazeface_short.*, blazeface_full.*, facemesh.*, iris.*, facemesh_attention.* (safetensors + JSON
contract). The .tflite flatbuffer is read by the small reader below (no tensorflow needed; the flatbuffers package
only decodes the attention model's custom-op options, which the converter checks against what FaceMeshAttention
hard-codes); sparse weights (TFLite SparsityParameters, behind DENSIFY ops: the full-range detector) are densified and fp16
weights (behind DEQUANTIZE ops) expanded to float32. Each TFLite op maps, in graph order, onto the parameters of the
PyTorch modules in reenact/face/nets.py: conv kernels OHWI -> OIHW, depthwise 1HWC -> C1HW, PReLU alpha (1,1,C) -> (C,).
CUSTOM ops (MediaPipe's, in the attention model) carry no weights; `--dump` shows their names and options.
"""

from __future__ import annotations

import argparse
import inspect
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.weights import Contract, save  # noqa: E402

WHEEL = "mediapipe==0.10.21"
MODELS = {
    "face_detection_short_range.tflite": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_detection_full_range_sparse.tflite": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark.tflite": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "face_landmark_with_attention.tflite": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
    "iris_landmark.tflite": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}
OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE",
       9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE",
       23: "RESIZE_BILINEAR", 32: "CUSTOM", 34: "PAD", 39: "TRANSPOSE", 45: "STRIDED_SLICE", 54: "PRELU", 124: "DENSIFY"}
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8, 10: np.float64}


# --- minimal flatbuffer reader (only what the TFLite schema needs) ---------------------------------------------

class Table:
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_len = struct.unpack_from("<H", buf, vt)[0]
        self.vt = vt

    def _off(self, slot: int) -> int:
        o = 4 + 2 * slot
        return struct.unpack_from("<H", self.buf, self.vt + o)[0] if o < self.vt_len else 0

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        o = self._off(slot)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0] if o else default

    def _indirect(self, slot: int) -> int | None:
        o = self._off(slot)
        if not o:
            return None
        p = self.pos + o
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, slot: int) -> "Table | None":
        p = self._indirect(slot)
        return Table(self.buf, p) if p is not None else None

    def vector(self, slot: int) -> tuple[int, int]:
        """(start, length) of a vector field."""
        p = self._indirect(slot)
        if p is None:
            return 0, 0
        return p + 4, struct.unpack_from("<I", self.buf, p)[0]

    def tables(self, slot: int) -> list["Table"]:
        start, n = self.vector(slot)
        return [Table(self.buf, start + 4 * i + struct.unpack_from("<I", self.buf, start + 4 * i)[0]) for i in range(n)]

    def ints(self, slot: int) -> list[int]:
        start, n = self.vector(slot)
        return list(struct.unpack_from(f"<{n}i", self.buf, start))

    def bytes_(self, slot: int) -> bytes:
        start, n = self.vector(slot)
        return self.buf[start:start + n]

    def string(self, slot: int) -> str:
        return self.bytes_(slot).decode()


# --- TFLite sparse tensors (SparsityParameters; expanded by DENSIFY ops at run time) -------------------------

_INDEX_TYPES = {1: "<i4", 2: "<u2", 3: "<u1"}  # SparseIndexVector union: Int32Vector, Uint16Vector, Uint8Vector


def _index_vector(dm: Table, type_slot: int) -> np.ndarray:
    """array_segments (slots 2/3) or array_indices (slots 4/5) of a DimensionMetadata table."""
    kind = int(dm.scalar(type_slot, "B"))
    vec = dm.table(type_slot + 1)
    if kind not in _INDEX_TYPES or vec is None:
        raise ValueError(f"sparse dimension without a supported index vector (union type {kind})")
    start, n = vec.vector(0)
    return np.frombuffer(vec.buf, _INDEX_TYPES[kind], n, start)


@dataclass
class SparseDim:
    """One level of a sparse tensor's tree (TFLite DimensionMetadata)."""

    dense_size: int = 0  # DENSE: the level has every index 0..dense_size-1
    segments: np.ndarray | None = None  # SPARSE_CSR: node p's children are indices[segments[p]:segments[p + 1]]
    indices: np.ndarray | None = None


def read_sparsity(sparsity: Table) -> tuple[list[int], list[int], list[SparseDim]]:
    """(traversal_order, block_map, dim_metadata) of a SparsityParameters table."""
    dims = []
    for dm in sparsity.tables(2):
        if int(dm.scalar(0, "b")) == 0:  # DENSE
            dims.append(SparseDim(int(dm.scalar(1, "i"))))
        else:  # SPARSE_CSR
            dims.append(SparseDim(segments=_index_vector(dm, 2), indices=_index_vector(dm, 4)))
    return sparsity.ints(0), sparsity.ints(1), dims


def densify(values: np.ndarray, shape: list[int], order: list[int], block_map: list[int], dims: list[SparseDim]) -> np.ndarray:
    """Expand a sparse TFLite constant to its dense array (what the DENSIFY op computes at run time).

    The tensor is stored as a tree over rank + k "expanded" dimensions (k = block dimensions; block j splits original
    dimension block_map[j], its size is that level's dense_size), visited in traversal_order (`order`); level L of
    the tree (dims[L]) enumerates expanded dimension order[L]. The leaves, in depth-first order, are the stored
    values. Each level is expanded at once for all nodes (np.repeat keeps the depth-first order of the leaves).
    """
    rank = len(shape)
    assert sorted(order) == list(range(len(dims))) and len(dims) == rank + len(block_map), "bad sparsity metadata"
    block = {d: dims[order.index(rank + j)].dense_size for j, d in enumerate(block_map)}
    orig = np.zeros((rank, 1), np.int64)  # original index of every node so far
    prev = np.zeros(1, np.int64)  # node's position in its level (what the next level's segments are indexed by)
    for level, dm in enumerate(dims):
        if dm.segments is None:  # DENSE
            idx = np.tile(np.arange(dm.dense_size), len(prev))
            parent = np.repeat(np.arange(len(prev)), dm.dense_size)
            prev = prev[parent] * dm.dense_size + idx
        else:  # SPARSE_CSR
            seg = dm.segments.astype(np.int64)  # any int type; uint arithmetic would wrap or turn float
            counts = seg[prev + 1] - seg[prev]
            parent = np.repeat(np.arange(len(prev)), counts)
            pos = seg[prev][parent] + np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
            idx, prev = dm.indices[pos].astype(np.int64), pos
        orig = orig[:, parent]
        e = order[level]
        if e < rank:  # an original dimension (its block number when blocked)
            orig[e] += idx * block.get(e, 1)
        else:  # the index inside block e - rank
            orig[block_map[e - rank]] += idx
    assert orig.shape[1] == values.size, f"sparse tree has {orig.shape[1]} leaves for {values.size} values"
    dense = np.zeros(shape, values.dtype)
    dense[tuple(orig)] = values
    return dense


@dataclass
class Op:
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, int] = field(default_factory=dict)
    custom: bytes = b""  # a CUSTOM op's custom_options (a flexbuffer); the op's kind is then its custom_code


@dataclass
class Graph:
    names: list[str]
    shapes: list[list[int]]
    consts: dict[int, np.ndarray]  # tensor index -> value (fp16 dequantized to fp32)
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]


# Option table slots per op: name -> (slot, struct format).
_OPTS = {
    "CONV_2D": {"padding": (0, "b"), "stride_w": (1, "i"), "stride_h": (2, "i"), "act": (3, "b")},
    "DEPTHWISE_CONV_2D": {"padding": (0, "b"), "stride_w": (1, "i"), "stride_h": (2, "i"), "mult": (3, "i"), "act": (4, "b")},
    "MAX_POOL_2D": {"padding": (0, "b"), "stride_w": (1, "i"), "stride_h": (2, "i"), "fw": (3, "i"), "fh": (4, "i"), "act": (5, "b")},
    "AVERAGE_POOL_2D": {"padding": (0, "b"), "stride_w": (1, "i"), "stride_h": (2, "i"), "fw": (3, "i"), "fh": (4, "i"), "act": (5, "b")},
    "ADD": {"act": (0, "b")},
    "CONCATENATION": {"axis": (0, "i"), "act": (1, "b")},
    "RESIZE_BILINEAR": {"align_corners": (2, "b"), "half_pixel_centers": (3, "b")},
    "DEPTH_TO_SPACE": {"block_size": (0, "i")},
}


def read_tflite(path: Path) -> Graph:
    buf = path.read_bytes()
    model = Table(buf, struct.unpack_from("<I", buf, 0)[0])
    codes = []
    for oc in model.tables(1):
        code = max(int(oc.scalar(0, "b")), int(oc.scalar(3, "i")))
        codes.append(oc.string(1) if code == 32 else OPS.get(code, f"OP{code}"))  # CUSTOM: its registered name
    buffers = [b.bytes_(0) for b in model.tables(4)]
    sub = model.tables(2)[0]
    names, shapes, consts = [], [], {}
    for i, t in enumerate(sub.tables(0)):
        shape = t.ints(0)
        names.append(t.string(3))
        shapes.append(shape)
        data = buffers[int(t.scalar(2, "I"))]
        if data:
            values = np.frombuffer(data, DTYPES[int(t.scalar(1, "b"))])
            sparsity = t.table(6)
            consts[i] = densify(values, shape, *read_sparsity(sparsity)) if sparsity is not None else values.reshape(shape).copy()
    ops = []
    for o in sub.tables(3):
        kind = codes[int(o.scalar(0, "I"))]
        opt = o.table(4)
        options = {k: int(opt.scalar(s, f)) for k, (s, f) in _OPTS.get(kind, {}).items()} if opt else {}
        ops.append(Op(kind, o.ints(1), o.ints(2), options, o.bytes_(5)))
    # Fold DENSIFY (sparse constants, already expanded above) and DEQUANTIZE (fp16 -> fp32 constants), in graph
    # order (a sparse fp16 weight goes through both), so every weight is a float32 constant of the op that uses it.
    for op in ops:
        if op.kind in ("DENSIFY", "DEQUANTIZE") and op.inputs[0] in consts:
            consts[op.outputs[0]] = consts[op.inputs[0]].astype(np.float32)
    ops = [op for op in ops if op.kind not in ("DENSIFY", "DEQUANTIZE")]
    return Graph(names, shapes, consts, ops, sub.ints(1), sub.ints(2))


def dump(g: Graph) -> None:
    for i, op in enumerate(g.ops):
        ins = [f"{g.names[t]}{g.shapes[t]}" + ("*" if t in g.consts else "") for t in op.inputs if t >= 0]
        print(i, op.kind, op.options or custom_options(op) or {}, ins, "->", [f"{g.names[t]}{g.shapes[t]}" for t in op.outputs])
    print("inputs", [(g.names[t], g.shapes[t]) for t in g.inputs], "outputs", [(g.names[t], g.shapes[t]) for t in g.outputs])


def custom_options(op: Op) -> dict | None:
    """A CUSTOM op's options (MediaPipe stores them as a flexbuffer map), decoded with the flatbuffers package."""
    if not op.custom:
        return None
    from flatbuffers import flexbuffers  # only the attention model's ops have any; the package comes with onnxruntime

    return flexbuffers.Loads(op.custom)


def check_attention_ops(g: Graph) -> None:
    """The attention model's custom ops must have the settings reenact.face.nets.FaceMeshAttention hard-codes."""
    from reenact.face import nets

    defaults = {k: p.default for k, p in inspect.signature(nets.FaceMeshAttention).parameters.items()}
    regions = [custom_options(op) for op in g.ops if op.kind == "Landmarks2TransformMatrix"]
    want = [(nets.REGION_AXES[n], list(nets.REGION_POINTS[n])) for n in nets.REGION_POINTS]
    got = [((o["left_rotation_idx"], o["right_rotation_idx"]), o["subset_idxs"]) for o in regions]
    assert got == want, "Landmarks2TransformMatrix regions differ from nets.REGION_AXES / REGION_POINTS"
    for o in regions:
        assert o["target_rotation_radians"] == 0 and o["scale_x"] == o["scale_y"] == defaults["crop_scale"], o
        assert o["output_width"] == o["output_height"] == defaults["grid"], o
    for op in g.ops:
        if op.kind == "TransformTensorBilinear":
            o = custom_options(op)
            assert o["output_width"] == o["output_height"] == defaults["grid"], o
            assert g.shapes[op.inputs[0]][1:] == [48, 48, 32], "regions must sample the backbone's 48x48x32 level"
        if op.kind == "MUL":  # mesh px -> feature px before the crop (1 / 4), and the matrices' px scale back (4)
            k = g.consts[op.inputs[1]].ravel()
            assert np.allclose(k, 0.25) or np.allclose(sorted(set(k.tolist())), [0.25, 1, 4]), k


def dataflow_order(g: Graph) -> list[Op]:
    """Topological order that finishes one branch before starting the next (depth-first Kahn, ties by op index).

    This is the order in which the modules in reenact/face/nets.py register their layers.
    """
    producers = {t: i for i, op in enumerate(g.ops) for t in op.outputs}
    consumers: dict[int, list[int]] = {}
    for i, op in enumerate(g.ops):
        for t in op.inputs:
            consumers.setdefault(t, []).append(i)
    done_t = set(g.inputs) | set(g.consts) | {-1}
    stack = sorted({i for t in g.inputs for i in consumers.get(t, [])}, reverse=True)
    order, done = [], set()
    while stack:
        i = stack.pop()
        op = g.ops[i]
        if i in done or not all(t in done_t or t not in producers for t in op.inputs):
            continue
        done.add(i)
        order.append(op)
        done_t.update(op.outputs)
        nxt = sorted({c for t in op.outputs for c in consumers.get(t, [])}, reverse=True)
        stack.extend(nxt)
    assert len(order) == len(g.ops), f"dataflow walk reached {len(order)} of {len(g.ops)} ops"
    return order


def to_state_dict(g: Graph, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Assign TFLite weights to the module's Conv2d/PReLU layers in dataflow order, checking every shape."""
    weighted = [op for op in dataflow_order(g) if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")]
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.PReLU))]
    assert len(weighted) == len(layers), f"{len(weighted)} weighted TFLite ops vs {len(layers)} torch layers"
    state = {}
    for op, (name, layer) in zip(weighted, layers):
        w = g.consts[op.inputs[1]].astype(np.float32)
        if op.kind == "CONV_2D":
            w = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
        elif op.kind == "DEPTHWISE_CONV_2D":
            w = w.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
        else:
            w = w.reshape(-1)  # PReLU alpha (1, 1, C) -> (C,)
        want = tuple(layer.weight.shape)
        assert w.shape == want, f"{g.names[op.inputs[1]]} {w.shape} does not fit {name}.weight {want}"
        if op.kind != "PRELU":
            stride = (op.options["stride_h"], op.options["stride_w"])
            assert stride == tuple(layer.stride), f"{name}: stride {stride} vs {layer.stride}"
            state[f"{name}.bias"] = torch.from_numpy(g.consts[op.inputs[2]].astype(np.float32))
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
    return state


LICENCE = "Apache-2.0"
SCRIPT = "tools/convert_mediapipe.py"


def contracts() -> dict[str, tuple[str, str, Contract]]:
    """weights name -> (tflite file, module class, contract)."""
    src = f"{WHEEL}:" + "{}"
    data = "trained by Google (MediaPipe); converted to PyTorch, fp16 weights expanded to float32 then stored as fp16"
    return {
        "blazeface_short": ("face_detection_short_range.tflite", "BlazeFace", Contract(
            name="blazeface_short", arch="blazeface", kwargs={},
            input={"size": [128, 128], "range": [-1, 1], "layout": "NCHW", "color": "RGB",
                   "resize": "letterbox (keep aspect, zero border)"},
            outputs={"regressors": "(B, 896, 16) [dx, dy, w, h, 6 x (kx, ky)] px of the 128 input, relative to anchors",
                     "logits": "(B, 896) face score logits (sigmoid -> score)"},
            training_data=data, licence=LICENCE, source=src.format(MODELS["face_detection_short_range.tflite"]),
            script=SCRIPT)),
        "blazeface_full": ("face_detection_full_range_sparse.tflite", "BlazeFaceFull", Contract(
            name="blazeface_full", arch="blazeface_full", kwargs={},
            input={"size": [192, 192], "range": [-1, 1], "layout": "NCHW", "color": "RGB",
                   "resize": "letterbox (keep aspect, zero border)"},
            outputs={"regressors": "(B, 2304, 16) [dx, dy, w, h, 6 x (kx, ky)] px of the 192 input, relative to anchors "
                                   "(one per cell of a 48x48 grid, stride 4)",
                     "logits": "(B, 2304) face score logits (sigmoid -> score)"},
            training_data=data.replace("fp16 weights", "sparse fp16 weights densified,"), licence=LICENCE,
            source=src.format(MODELS["face_detection_full_range_sparse.tflite"]), script=SCRIPT)),
        "facemesh": ("face_landmark.tflite", "FaceMesh", Contract(
            name="facemesh", arch="facemesh", kwargs={},
            input={"size": [192, 192], "range": [0, 1], "layout": "NCHW", "color": "RGB",
                   "resize": "rotated square ROI, 1.5x the face box"},
            outputs={"landmarks": "(B, 468, 3) px of the 192 input (z on the x scale)",
                     "presence": "(B,) face presence logit"},
            training_data=data, licence=LICENCE, source=src.format(MODELS["face_landmark.tflite"]), script=SCRIPT)),
        "iris": ("iris_landmark.tflite", "IrisNet", Contract(
            name="iris", arch="iris", kwargs={},
            input={"size": [64, 64], "range": [0, 1], "layout": "NCHW", "color": "RGB",
                   "resize": "rotated square ROI 2.3x the eye corners; the subject's left eye flipped horizontally"},
            outputs={"contours": "(B, 71, 3) eye contour and brow px of the 64 input", "iris": "(B, 5, 3) centre + 4"},
            training_data=data, licence=LICENCE, source=src.format(MODELS["iris_landmark.tflite"]), script=SCRIPT)),
        "facemesh_attention": ("face_landmark_with_attention.tflite", "FaceMeshAttention", Contract(
            name="facemesh_attention", arch="facemesh_attention", kwargs={},
            input={"size": [192, 192], "range": [0, 1], "layout": "NCHW", "color": "RGB",
                   "resize": "rotated square ROI, 1.5x the face box (as facemesh)"},
            outputs={"mesh": "(B, 468, 3) px of the 192 input (z on the x scale)",
                     "lips": "(B, 80, 3) px; x, y regressed, z the mesh's at nets.LIPS",
                     "left_eye": "(B, 71, 3) image-left eye contours and brow; z the mesh's at nets.LEFT_EYE",
                     "right_eye": "(B, 71, 3) image-right eye; z the mesh's at nets.RIGHT_EYE",
                     "left_iris": "(B, 5, 3) image-left iris, centre + 4; z the mean of the eye's 16 lid points",
                     "right_iris": "(B, 5, 3) image-right iris",
                     "presence": "(B,) face presence logit"},
            training_data="trained by Google (MediaPipe Attention Mesh; its model card: face images and video from "
                          "front-facing smartphone cameras); converted to PyTorch, fp16 weights expanded to float32 "
                          "then stored as fp16",
            licence=LICENCE, source=src.format(MODELS["face_landmark_with_attention.tflite"]), script=SCRIPT)),
    }


def convert_all(folder: Path, out: Path | None = None, only: list[str] | None = None) -> None:
    from reenact.face import nets

    for name, (tfl, cls, contract) in contracts().items():
        if only and name not in only:
            continue
        g = read_tflite(folder / tfl)
        if cls == "FaceMeshAttention":
            check_attention_ops(g)
        # Store the constructor's defaults explicitly so the contract alone says how to build the network.
        sig = inspect.signature(getattr(nets, cls))
        contract.kwargs = {k: list(p.default) if isinstance(p.default, tuple) else p.default for k, p in sig.parameters.items()}
        model = getattr(nets, cls)(**contract.kwargs)
        state = to_state_dict(g, model)
        model.load_state_dict(state, strict=True)
        # fp16 storage halves the files; the TFLite weights are fp16 already, so this loses nothing for the
        # detector and face mesh (the iris model ships fp32; parity tests bound the difference).
        save(name, {k: v.half() for k, v in state.items()}, contract, out)
        n = sum(v.numel() for v in state.values())
        print(f"{name}: {len(state)} tensors, {n / 1e6:.2f} M parameters <- {tfl}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help=f"path to the {WHEEL} wheel (else pip download it)")
    ap.add_argument("--out", type=Path, default=None, help="weights folder (default: the repository's weights/)")
    ap.add_argument("--dump", help="print the op graph of one model file name and exit")
    ap.add_argument("--only", nargs="+", choices=sorted(contracts()), help="convert only these weights")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.11", WHEEL, "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for name, member in MODELS.items():
                (Path(tmp) / name).write_bytes(z.read(member))
        if args.dump:
            dump(read_tflite(Path(tmp) / args.dump))
            return
        convert_all(Path(tmp), args.out, args.only)


if __name__ == "__main__":
    main()
