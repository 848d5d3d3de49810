"""Writing generated speech to a file: the path is checked before any synthesis (`check_output_path`), and
the file is written whole or not at all (`write_audio`), so a crash, a full disk or a mistake never leaves
half a file, and the voice prompt is never overwritten.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

#: File extensions the output may have, and their soundfile formats (16-bit PCM for WAV/FLAC).
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}


class OutputPathError(ValueError):
    """Raised for an output path that cannot be written (missing folder, a folder, unknown format, the prompt
    itself) or for audio that must not be written (non-finite samples)."""


def check_output_path(path: Union[str, os.PathLike], prompt: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Checks, before any synthesis, that `path` can take the speech: its folder exists and is writable, it is
    not a folder, its extension is a known format (`OUTPUT_FORMATS`), and it is not the prompt file.

    Returns:
        `path` as a `Path`.

    Raises:
        OutputPathError: naming the problem.
    """
    import soundfile as sf

    path = Path(path)
    known = ", ".join(ext for ext, name in OUTPUT_FORMATS.items() if name in sf.available_formats())
    if path.is_dir():
        raise OutputPathError(f"output {str(path)!r} is a folder; give a file name such as {str(path / 'speech.wav')!r}.")
    if OUTPUT_FORMATS.get(path.suffix.lower()) not in sf.available_formats():
        raise OutputPathError(f"output {str(path)!r} has no known audio extension; use one of {known}.")
    folder = path.parent
    if not folder.is_dir():
        raise OutputPathError(f"the folder of the output, {str(folder)!r}, does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"the folder of the output, {str(folder)!r}, is not writable.")
    if prompt is not None and path.exists() and Path(prompt).exists() and os.path.samefile(path, prompt):
        raise OutputPathError(f"output {str(path)!r} is the voice prompt itself; give another file name.")
    return path


def check_generated_audio(audio: np.ndarray, context: str = "generated audio") -> None:
    """Refuses empty audio or audio with NaN/inf samples `(samples,)` (a broken model or arguments; written as
    PCM it would be a file of silence or full-scale noise).

    Raises:
        OutputPathError: starting with `context`.
    """
    audio = np.asarray(audio)
    if audio.size == 0 or not np.isfinite(audio).all():
        raise OutputPathError(f"{context}: the generated audio is empty or holds NaN/inf samples.")


def write_audio(path: Union[str, os.PathLike], audio: np.ndarray, sampling_rate: int) -> None:
    """Writes `audio` `(samples,)` to `path` atomically: into a temporary file in the same folder, renamed
    over `path` once complete.

    Raises:
        OutputPathError: the audio is empty or holds NaN/inf (see `check_generated_audio`).
    """
    import soundfile as sf

    path = Path(path)
    check_generated_audio(audio, f"not writing {str(path)!r}")
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        sf.write(partial, audio, sampling_rate, format=OUTPUT_FORMATS[path.suffix.lower()])
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
