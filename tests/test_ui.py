"""The CLI's messages print library text literally (rich markup is not interpreted in it)."""

import io

from rich.console import Console

from reenact_cli.ui import UI


def test_error_and_warning_keep_square_brackets() -> None:
    buf = io.StringIO()
    ui = UI(err=Console(file=buf, width=200, color_system=None))
    ui.error("--identity arcface needs onnxruntime: pip install 'reenact[arcface]'.", 1)
    ui.warn("photo [1].jpg: [speech] extra missing")
    ui.info("wrote out/[draft].mp4")
    text = buf.getvalue()
    assert "reenact[arcface]" in text and "[speech] extra" in text and "photo [1].jpg" in text
    assert "out/[draft].mp4" in text
