"""Round-trip refiner pairs from still photos (reenact/train/refiner_stills.py) and their share of the samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reenact.params import ARKIT52
from reenact.render.refine import CROP_SIZE, MASK_MOUTH

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models():  # noqa: ANN201
    from reenact.analysis import Models

    return Models()


def test_round_trip_pairs_restore_the_photo(models, tmp_path: Path) -> None:  # noqa: ANN001
    from reenact.train.refiner_data import load_shards
    from reenact.train.refiner_stills import StillConfig, build_stills

    bank = np.zeros((2, 52), np.float32)
    bank[:, ARKIT52.index("jawOpen")] = 0.9  # the way out opens the mouth wide, the way back closes it again
    paths = build_stills([ROOT / "samples" / "source.jpg"], tmp_path, bank, models, StillConfig(per_face=3, emotion_share=0.34))
    assert [p.name for p in paths] == ["stills_000.npz"]
    pairs = load_shards([tmp_path], "train")
    assert len(pairs["warped"]) == 3 and pairs["warped"].shape[1:] == (CROP_SIZE, CROP_SIZE, 3)
    assert pairs["still"].all() and set(pairs["video"]) == {"source.jpg"}
    # The target is the photo itself, cut with its own mesh: every pair of one face has the same target.
    assert np.array_equal(pairs["target"][0], pairs["target"][1]) and np.array_equal(pairs["points"][0], pairs["points"][2])
    diff = np.abs(pairs["warped"].astype(np.float32) - pairs["target"]).mean(-1)  # (3, S, S)
    mouth = (pairs["masks"] & MASK_MOUTH) > 0
    # The round trip comes back close to the photo (same mesh) but not exactly: what the refiner has to restore.
    assert 0 < diff[~mouth].mean() < 6 and diff[mouth].mean() > diff[~mouth].mean()
    # W1, the way out, opened the mouth: it differs from the photo far more than the way back does.
    assert np.abs(pairs["source"][0].astype(np.float32) - pairs["target"][0])[mouth[0]].mean() > diff[0][mouth[0]].mean()


def test_stills_share_of_the_samples() -> None:
    from reenact.train.refiner_data import sampling_weights

    n = 10
    hardness, still = np.linspace(0, 9, n), np.arange(n) >= 7
    p = sampling_weights(hardness, still, 0.3)
    assert p.sum() == pytest.approx(1) and p[still].sum() == pytest.approx(0.3) and (p > 0).all()
    assert sampling_weights(hardness, still, 0.0)[still].sum() == pytest.approx(0.5 * 3 / n + 0.5 * 24 / 45)
    # no still pairs in the data: the share is ignored
    assert sampling_weights(hardness, np.zeros(n, bool), 0.3).sum() == pytest.approx(1)


def test_expression_grid_tiles_are_aligned_and_colour_matched(models, tmp_path: Path) -> None:  # noqa: ANN001
    """tools/make_refiner_data.py --grid: a fresh person's expression grid -> tiles with the face at one place and
    scale and the same skin exposure, like frames of a video with a still head."""
    import cv2

    from reenact.io.image import read_image
    from reenact.render.refine import MASK_FACE, region_masks
    from reenact.render.renderer import FaceRenderer
    from tools.make_refiner_data import grid_frames

    photo = read_image(ROOT / "samples" / "source.jpg")
    src = models.analyzer.analyze(photo)
    shapes = models.estimator.estimate(src.points)[0, :52]
    targets = np.repeat(shapes[None], 4, 0)
    targets[1:, ARKIT52.index("jawOpen")] = [0.3, 0.6, 0.2]
    frames = FaceRenderer(photo, src.points, shapes, models.rig).render(targets)  # (4, H, W, 3)
    h, w = photo.shape[:2]
    tiles = []
    for k, frame in enumerate(frames):  # each "photo" framed and exposed differently
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, 1 - 0.08 * k)
        m[:, 2] += (12 * k, -9 * k)
        tiles.append(np.clip(cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE) * (1 - 0.1 * k), 0, 255))
    grid = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0).astype(np.uint8)
    path = tmp_path / "grid.png"
    cv2.imwrite(str(path), grid[..., ::-1])
    aligned, points = grid_frames(path, 2, {3}, models, size=192)
    assert len(aligned) == 3 and aligned[0].shape == (192, 192, 3) and points.shape == (3, 478, 3)
    nose, eyes = 4, [33, 263]  # rigid points land where the first tile has them
    assert np.abs(points[:, [nose, *eyes], :2] - points[:1, [nose, *eyes], :2]).max() < 2.0
    skin = [aligned[i][region_masks(points[i], 192) == MASK_FACE].mean(0) for i in range(3)]
    assert np.abs(np.array(skin) - skin[0]).max() < 2.0  # exposure matched (the tiles differed by 10-20 %)


class _PaintOverMouth:
    """A stand-in refiner that repaints the mouth opening the wrong way: "shut" paints its lower part over with the
    lower lip's colour (the mouth reads as less open: the failure the mouth-opening check exists for, docs/refiner.md,
    Results), "blob" paints a dark cavity over the lips around it (reads as more open); "" changes nothing."""

    class net:  # noqa: N801 (what FaceRenderer reads of a refiner's network)
        use_source = False

    def __init__(self, paint: str) -> None:
        self.paint = paint

    def refine(self, roi, points, shapes, source_roi=None):  # noqa: ANN001, ANN201
        import cv2
        import torch

        from reenact.face.canonical import load_canonical

        out = roi.clone()
        if self.paint:
            inner = load_canonical().group("lips_inner")
            for b in range(len(out)):
                frame = out[b].permute(1, 2, 0).numpy().copy()
                mask = np.zeros(frame.shape[:2], np.uint8)
                cv2.fillPoly(mask, [np.round(points[b][inner, :2]).astype(np.int32)], 1)
                ys = np.nonzero(mask.any(1))[0]
                if self.paint == "shut":
                    mask[: ys[0] + int(0.4 * (ys[-1] - ys[0]))] = 0  # the lower 60 % of the opening
                    colour = frame[ys[-1] + 3, np.nonzero(mask.any(0))[0]].mean(0)  # the lower lip's colour below it
                else:  # the opening grown by half its height over the lips, painted as a cavity
                    grow = max(int(0.5 * (ys[-1] - ys[0])), 2)
                    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
                    colour = np.array([40.0, 20.0, 20.0])
                alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]  # soft, as a generator paints
                frame = frame * (1 - alpha) + colour * alpha
                out[b] = torch.from_numpy(frame).permute(2, 0, 1)
        return out


def test_photo_check_sees_an_open_mouth_painted_shut_or_over() -> None:
    from reenact.analysis import Models
    from reenact.face.analyzer import FaceAnalyzer
    from reenact.render.refine import MOUTH_OPEN_MAX, MOUTH_OPEN_MIN
    from reenact.train.refiner_check import check_unseen

    models = Models()
    models.analyzer = FaceAnalyzer(mesh="plain")  # the paints below were sized on the plain mesh's lips, as the check

    photo = [ROOT / "samples" / "source.jpg"]
    kept, shut, blob = (check_unseen(_PaintOverMouth(p), photo, models)["source.jpg"] for p in ("", "shut", "blob"))
    assert abs(kept["mouth_open_ratio"] - 1) < 0.02 and kept["skin_change"] == 0
    assert shut["mouth_open_ratio"] < MOUTH_OPEN_MIN and shut["sharpness_ratio"] > 0.9  # sharp, yet shut
    assert blob["mouth_open_ratio"] > MOUTH_OPEN_MAX  # a cavity painted over the lips reads as a wider opening
