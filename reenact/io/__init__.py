"""Media input/output: streaming video (PyAV), audio, images, atomic output files.

Import from the submodules (importing this package loads nothing heavy):
    reenact.io.video   probe, read_frames, Frame, VideoInfo, VideoWriter
    reenact.io.audio   load_audio, stream_audio, log_mel
    reenact.io.image   read_image, write_image
    reenact.io.atomic  atomic_output, OutputGroup (outputs committed together), check_output_path, remove_stale
Policies (rotation, variable frame rate, damage, odd sizes, audio fitting, alpha, EXIF) are in docs/media.md.
"""
