"""reenact: animate one photo of a face from a driving video, speech, or expression controls."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reenact")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+local"

from reenact.errors import ReenactError  # noqa: E402

__all__ = ["ReenactError", "__version__"]
