"""Face analysis: BlazeFace detection, 478-point FaceMesh + iris landmarks, tracking, pose and alignment.

Ported from MediaPipe 0.10.21's models (weights/blazeface_short, blazeface_full, facemesh, iris); no MediaPipe at run time.

    from reenact.face import FaceAnalyzer, track_video
    fa = FaceAnalyzer(device)
    face = fa.analyze(rgb, name="photo.jpg")          # FaceLandmarks: points (478, 3) px, box, score, pose
    for lm in track_video(frames, fa): ...             # FaceLandmarks | None per frame

See docs/face.md for conventions (point order, pose signs, canonical mesh).
"""

from reenact.face.analyzer import FaceAnalyzer, FaceLandmarks
from reenact.face.canonical import CanonicalMesh, load_canonical
from reenact.face.detect import Detection
from reenact.face.pose import Pose, estimate_pose
from reenact.face.track import FaceTracker, track_video

__all__ = ["CanonicalMesh", "Detection", "FaceAnalyzer", "FaceLandmarks", "FaceTracker", "Pose", "estimate_pose",
           "load_canonical", "track_video"]
