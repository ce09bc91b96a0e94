"""One frozen spec per job: everything a `drive`, `speak`, `render`, `edit`, `extract`, `identity` or `train`
needs to know, checked completely when it is built, before any media is opened. The job functions
(reenact.pipeline, reenact.speak, reenact.extract, reenact.verify, reenact.train.jobs) take a spec; the CLI and the
batch build one. The batch's own spec, BatchSpec, is with its jobs' types in reenact.batch_jobs. Like
reenact.options, this module imports neither torch, PyAV nor OpenCV, so that the CLI refuses a bad option in well
under a second.

A spec checks its values (the ranges of reenact.limits) and that no output is one of its inputs or another output
(`check_distinct`). Whether an output may be written now (it exists, its folder is missing) is a question about the
disk at the time the job runs: the job asks it first (reenact.io.atomic.check_output_path).

Adding an option: one field here (or on RenderOptions / SpeakOptions / RetargetOptions), checked in
`__post_init__`; the CLI passes its parameter into it, and a batch manifest row can set it by the field's name
(reenact.batch_jobs.JobOptions.override). See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from reenact.errors import InputError
from reenact.limits import check, check_distinct, check_photo_options
from reenact.options import PHOTO_MOUTHS, RenderOptions, SpeakOptions, check_smoothing

if TYPE_CHECKING:
    from reenact.edit import Controls  # OpenCV: only for the type

__all__ = ["EDIT_STEPS", "IMAGE_SUFFIXES", "DriveSpec", "EditSpec", "ExtractSpec", "IdentitySpec", "RenderSpec",
           "SpeakSpec", "TrainSpec", "check_photo_mouth", "track_format"]


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}  # what is read as a photo


def check_photo_mouth(mouth: str) -> str:
    """`--mouth` of a command without a driving video (speak, render, edit): library or paint. (The library's
    speak and render also take "driver", meaning the library, as a batch's audio jobs do.)"""
    if mouth not in PHOTO_MOUTHS:
        raise InputError(f"Unknown --mouth {mouth!r}; use {' or '.join(PHOTO_MOUTHS)} (driver needs `drive`).")
    return mouth


@dataclass(frozen=True)
class DriveSpec:
    """`drive`: the person in `source` performs the expressions of the person in the `driver` video."""

    source: Path
    driver: Path
    output: Path
    render: RenderOptions = field(default_factory=RenderOptions)
    max_size: int = 1280  # the photo's long side after scaling down
    face: int | None = None  # which face of the photo (None: the largest)
    smooth: str = "offline"  # smoothing of the driver's track (reenact.options.SMOOTHING)
    preview: Path | None = None  # also a side-by-side driver | output video
    # `drive --audio`: the lips come from this speech recording (the audio head), which also becomes the output's
    # audio; everything else comes from the driver
    speech_audio: Path | None = None
    creases: bool = False  # with mouth "driver": also carry the driver's fine creases onto the photo (docs/mouth.md)

    def __post_init__(self) -> None:
        check_smoothing(self.smooth)
        check_photo_options(self.max_size, self.face)
        check_distinct({"the photo": self.source, "the driver": self.driver, "the speech audio": self.speech_audio},
                       {"the output": self.output, "the preview": self.preview})


@dataclass(frozen=True)
class SpeakSpec:
    """`speak`: the photo says the `audio` (the lips from the audio head, idle motion from SpeakOptions)."""

    source: Path
    audio: Path
    output: Path
    render: RenderOptions = field(default_factory=lambda: RenderOptions(mouth="library"))
    speech: SpeakOptions = field(default_factory=SpeakOptions)
    max_size: int = 1280
    face: int | None = None

    def __post_init__(self) -> None:
        check_photo_options(self.max_size, self.face)
        check_distinct({"the photo": self.source, "the audio": self.audio}, {"the output": self.output})


@dataclass(frozen=True)
class RenderSpec:
    """`render`: the photo animated from a parameter `track` file (CSV/JSON/OpenFace/Live Link)."""

    source: Path
    track: Path
    output: Path
    render: RenderOptions = field(default_factory=lambda: RenderOptions(mouth="library"))
    mux_audio: Path | None = None  # `render --audio`: muxed into the video as it is (the track moves the face)
    fps: Fraction | None = None  # None: the track's own rate
    max_size: int = 1280
    face: int | None = None

    def __post_init__(self) -> None:
        check_photo_options(self.max_size, self.face)
        if self.fps is not None:
            check("fps", self.fps)
        check_distinct({"the photo": self.source, "the track": self.track, "the audio": self.mux_audio},
                       {"the output": self.output})


EDIT_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)  # a grid's intensities, one column each


@dataclass(frozen=True)
class EditSpec:
    """`edit`: the photo with its expression changed by `controls` (or, with `grid`, one row per control sweeping
    `steps`)."""

    source: Path
    output: Path
    controls: Controls
    grid: bool = False
    overwrite: bool = False
    max_size: int = 1280
    face: int | None = None
    steps: tuple[float, ...] = EDIT_STEPS
    refine: bool = True  # the GAN refiner and the expression shading, when shipped and passing their checks
    mouth: str = "library"  # library | paint: an edit has no driver

    def __post_init__(self) -> None:
        check_photo_mouth(self.mouth)
        check_photo_options(self.max_size, self.face)
        check_distinct({"the photo": self.source}, {"the output": self.output})


@dataclass(frozen=True)
class IdentitySpec:
    """`identity`: does `other` (a photo or a video) show the same person as the `reference` photo?"""

    reference: Path
    other: Path
    threshold: float | None = None  # None: the embedder's own (docs/identity.md)

    def __post_init__(self) -> None:
        if self.threshold is not None:
            check("threshold", self.threshold)


TRAINABLE = ("estimator", "refiner")
TRAIN_MEDIA = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".mp4", ".mov", ".mkv", ".webm", ".avi"}  # estimator --data
TRAIN_VIDEOS = {".mp4", ".mov", ".mkv", ".webm", ".avi"}  # refiner --data, beside pair shards (*.npz)
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "samples" / "source.jpg"  # in a checkout of the repository


def data_files(data: tuple[Path, ...], suffixes: set[str]) -> list[Path]:
    """--data paths (files or folders, searched recursively) -> the files with one of `suffixes`."""
    files: list[Path] = []
    for p in data:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in suffixes)
        elif p.exists():
            if p.suffix.lower() not in suffixes:
                raise InputError(f"--data {p}: use {', '.join(sorted(suffixes))} files or folders of them.")
            files.append(p)
        else:
            raise InputError(f"--data {p} does not exist; give files or folders of them.")
    return files


@dataclass(frozen=True)
class TrainSpec:
    """`train`: one of reenact's models (`what`: estimator | refiner) on the user's `data`, resuming from `workdir`."""

    what: str
    data: tuple[Path, ...] = ()  # photos/videos (estimator), talking-face videos or pair shards (refiner), or folders
    out: Path = Path("trained")  # the new weights and their contract
    steps: int | None = None  # None: the model's own
    workdir: Path | None = None  # checkpoints, metrics, data; None: .cache/WHAT
    init: Path | None = None  # refiner: generator weights to start from
    check: tuple[Path, ...] = ()  # refiner: photos of people outside the data to check it on (default: the sample)

    def __post_init__(self) -> None:
        if self.what not in TRAINABLE:
            raise InputError(f"train {self.what!r}: use {' or '.join(TRAINABLE)}.")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps {self.steps}: give a whole number of at least 1.")
        if self.what == "refiner":
            self.check_refiner()
        self.files()

    def check_refiner(self) -> None:
        if not self.data:
            raise InputError("`reenact train refiner` needs --data: talking-face videos (or pair shards, *.npz) or "
                             "folders of them.")
        if self.init is not None and not self.init.is_file():
            raise InputError(f"--init {self.init} does not exist; give a refiner .safetensors file.")
        for photo in self.check_photos():
            if not photo.is_file():
                raise InputError(f"--check {photo} does not exist; give photos of faces.")

    @property
    def work(self) -> Path:
        return self.workdir or Path(".cache") / self.what

    def files(self) -> list[Path]:
        """Every file of `data` that the model trains on."""
        return data_files(self.data, TRAIN_MEDIA if self.what == "estimator" else TRAIN_VIDEOS | {".npz"})

    def videos(self) -> list[Path]:
        return [f for f in self.files() if f.suffix.lower() in TRAIN_VIDEOS]

    def check_photos(self) -> list[Path]:
        """The refiner's --check photos; without any, the sample photo where the checkout has it."""
        return [p for p in (self.check or (SAMPLE_PHOTO,)) if p != SAMPLE_PHOTO or p.exists()]


FORMATS = ("csv", "json", "openface", "livelink")
SUFFIX_FORMATS = {".csv": "csv", ".json": "json"}  # the format of `-o` without --format


def track_format(output: Path, fmt: str | None, landmarks: bool) -> str:
    """What `extract` writes to `output`: a track format, or "landmarks"."""
    if landmarks:
        if fmt not in (None, "json"):
            raise InputError("--landmarks writes JSON; drop --format or use --format json.")
        if output.suffix.lower() != ".json":
            raise InputError(f"--landmarks writes JSON: name the output *.json, not {output.name}.")
        return "landmarks"
    fmt = fmt or SUFFIX_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise InputError(f"Cannot tell the track format from the name {output.name}; name it *.csv or *.json, or "
                         f"give --format csv|json|openface|livelink.")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use csv, json, openface or livelink.")
    return fmt


@dataclass(frozen=True)
class ExtractSpec:
    """`extract`: a video or photo -> a parameter track (or landmarks); speech audio -> a viseme and mouth track."""

    media: Path
    output: Path
    fmt: str | None = None  # csv | json | openface | livelink; None: from the output's suffix
    landmarks: bool = False  # JSON with the per-frame 478-point landmarks, box, pose, score and parameters
    raw: bool = False  # no smoothing and no neutral calibration
    smooth: str = "offline"
    overwrite: bool = False
    face: int | None = None  # a photo's face (None: the largest)
    fps: Fraction | None = None  # speech audio: the track's frame rate (None: 25)
    text: str | None = None  # speech audio: its transcript, for forced alignment
    plot: Path | None = None  # also an image of the main channels
    still: bool = False  # speech audio: no idle life (blinks, brows, head) in the track, only the mouth
    seed: int = 0  # speech audio: the idle life's seed (`speak --seed`)

    def __post_init__(self) -> None:
        track_format(self.output, self.fmt, self.landmarks)
        check_distinct({"MEDIA": self.media}, {"-o": self.output, "--plot": self.plot})
        if self.face is not None:
            check("face", self.face)
        if self.fps is not None:
            check("fps", self.fps)
        check_smoothing(self.smooth)

    @property
    def kind(self) -> str:
        """What is written: a track format, or "landmarks"."""
        return track_format(self.output, self.fmt, self.landmarks)
