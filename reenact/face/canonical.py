"""The canonical face mesh: a frontal, neutral, symmetric face in MediaPipe FaceMesh's vertex order.

Made by tools/make_canonical_mesh.py (Procrustes average of the original FaceMesh's meshes of frontal neutral faces,
symmetrised) and stored in reenact/data/canonical_mesh.npz.

Coordinate convention (same axes as image coordinates, so a mesh from an image compares without flips):
    origin  centroid of the 468 mesh vertices
    +x      image right = the subject's LEFT side (vertex 263, the subject's left outer eye corner, has x > 0)
    +y      image down (chin has y > 0, forehead y < 0)
    +z      away from the camera (the nose is the most negative z); right-handed
    units   centimetre-like: the two eye centres (means of the eye contours) are 6.3 cm apart
The mesh is exactly mirror-symmetric about x = 0 (`mirror[i]` is the index of i's mirror twin), so its yaw and
roll are zero by construction; its pitch is that of the average camera-facing portrait.

"left"/"right" in group names follow MediaPipe: the subject's left/right (left = image right in a non-mirrored photo).
Triangles are oriented counter-clockwise as seen from the camera in this (y-down) frame, i.e. their normals point
to -z (toward the camera).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from reenact.errors import WeightsError

PATH = Path(__file__).resolve().parent.parent / "data" / "canonical_mesh.npz"


@dataclass(frozen=True)
class CanonicalMesh:
    vertices: np.ndarray  # (468, 3) float32, convention above
    triangles: np.ndarray  # (852, 3) int32 indices into vertices
    iris_vertices: np.ndarray  # (10, 3) float32: points 468..477 (right iris centre + 4, then left iris centre + 4)
    mirror: np.ndarray  # (468,) int32: mirror twin of each vertex across x = 0
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # name -> int32 indices (ordered contours)

    @property
    def vertices478(self) -> np.ndarray:
        """(478, 3): mesh plus the 10 iris points, MediaPipe's refined-landmark order."""
        return np.concatenate([self.vertices, self.iris_vertices])

    def group(self, name: str) -> np.ndarray:
        """Indices of a named group; see `GROUPS`."""
        try:
            return self.groups[name]
        except KeyError:
            raise KeyError(f"Unknown landmark group {name!r}; known: {', '.join(sorted(self.groups))}.") from None


# Group names stored in the npz (each an ordered contour unless noted):
GROUPS = (
    "left_eye", "right_eye",  # 16-point closed eyelid contours, starting at the outer corner (263 / 33)
    "left_iris", "right_iris",  # 5 points: centre (473 / 468) then the 4 contour points
    "left_eyebrow_upper", "left_eyebrow_lower", "right_eyebrow_upper", "right_eyebrow_lower",  # 5-point paths
    "lips_outer", "lips_inner",  # 20-point closed loops starting at the mouth corner 61 / 78
    "face_oval",  # 36-point closed loop starting at the forehead top (10)
    "nose",  # 24 nose vertices (unordered, sorted)
    "nose_tip",  # [1]
)


@lru_cache(maxsize=1)
def load_canonical() -> CanonicalMesh:
    """Load the canonical mesh shipped in reenact/data (cached; treat the arrays as read-only)."""
    if not PATH.exists():
        raise WeightsError(f"{PATH.name} is missing from reenact/data; reinstall reenact or run tools/make_canonical_mesh.py.")
    with np.load(PATH) as d:
        groups = {k[len("group_"):]: d[k].astype(np.int32) for k in d.files if k.startswith("group_")}
        mesh = CanonicalMesh(
            vertices=d["vertices"].astype(np.float32),
            triangles=d["triangles"].astype(np.int32),
            iris_vertices=d["iris_vertices"].astype(np.float32),
            mirror=d["mirror"].astype(np.int32),
            groups=groups,
        )
    for a in (mesh.vertices, mesh.triangles, mesh.iris_vertices, mesh.mirror, *groups.values()):
        a.setflags(write=False)
    return mesh
