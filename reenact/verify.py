"""The `identity` job: does a photo or a video show the same person as a reference photo? Every frame of a video is
compared (its face followed from frame to frame), so the answer covers the whole clip, not a sample of it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from reenact.analysis import MESH_BATCH, Models, ProgressFactory, no_progress
from reenact.identity import IdentityReport, compare
from reenact.io.image import read_image
from reenact.specs import IMAGE_SUFFIXES, IdentitySpec



def verify(spec: IdentitySpec, models: Models, progress: ProgressFactory = no_progress) -> IdentityReport:
    """Similarity of `spec.other` (a photo, or every frame of a video) to the face of `spec.reference`."""
    reference = read_image(spec.reference)
    points = models.analyzer.analyze(reference, name=str(spec.reference)).points  # NoFaceError names the file
    if spec.other.suffix.lower() in IMAGE_SUFFIXES:
        return compare(reference, [read_image(spec.other)], lambda rgb: largest_face(models, rgb), models.embedder,
                       spec.threshold, source_points=points)
    from reenact.io.video import read_frames

    # `compare` asks for each frame's face right after taking the frame, so the tracked chunk waits in a queue in
    # frame order
    tracked: deque[Any] = deque()
    with read_frames(spec.other) as frames, progress("comparing frames", frames.info.n_frames or None) as advance:
        chunks = tracked_chunks(frames, models, tracked, advance)
        return compare(reference, chunks, lambda rgb: tracked.popleft(), models.embedder, spec.threshold,
                       source_points=points)


def largest_face(models: Models, rgb: np.ndarray) -> Any:
    """The largest face of a photo, or None."""
    faces = models.analyzer.analyze_all(rgb)
    return max(faces, key=lambda f: float((f.box[2:] - f.box[:2]).prod())) if faces else None


def tracked_chunks(frames: Any, models: Models, tracked: deque, advance: Any) -> Iterator[np.ndarray]:
    """The video's frames, MESH_BATCH at a time, each chunk's faces appended to `tracked` before its frames are
    yielded: the face is followed from frame to frame (found again when lost); the identity alignment needs the
    468-point mesh only, so no irises."""
    tracker = models.analyzer.tracker()
    chunk = [f.rgb for f in itertools.islice(frames, MESH_BATCH)]
    while chunk:
        tracked.extend(tracker.update_many(chunk, iris=False))
        yield from chunk
        advance(len(chunk))
        chunk = [f.rgb for f in itertools.islice(frames, MESH_BATCH)]
