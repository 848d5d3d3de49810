"""Loading and validating waveforms.

Every entry point of the package that takes audio from a user (feature extractor, pipeline
prompt, data preparation, metrics) goes through these two functions, so bad input fails in one
place with one kind of message: :class:`AudioInputError` naming the problem.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

AudioLike = Union[str, os.PathLike, np.ndarray, "torch.Tensor"]  # noqa: F821


class AudioInputError(ValueError):
    """Raised for audio the package cannot use: empty, non-finite, multi-channel, wrong rate,
    silent, too short or unreadable."""


def check_waveform(
    waveform: np.ndarray,
    sampling_rate: Optional[int],
    expected_sampling_rate: int,
    name: str = "audio",
    min_samples: int = 1,
    allow_silence: bool = True,
) -> np.ndarray:
    """Validate a mono waveform and return it as contiguous float32.

    Args:
        waveform: `(samples,)` array.
        sampling_rate: the rate the caller says the array has (`None` = trust it is expected).
        expected_sampling_rate: the rate the model needs.
        name: what to call the input in error messages.
        min_samples: shortest accepted length.
        allow_silence: if False, an all-zero (peak < 1e-4) waveform raises.

    Raises:
        AudioInputError: naming the problem.
    """
    waveform = np.asarray(waveform)
    if sampling_rate is not None and int(sampling_rate) != int(expected_sampling_rate):
        raise AudioInputError(
            f"{name} has sampling rate {sampling_rate} Hz but {expected_sampling_rate} Hz is required; "
            f"resample it first (e.g. `ns2_hf.audio.load_audio(x, sampling_rate={sampling_rate}, "
            f"target_sampling_rate={expected_sampling_rate})`)."
        )
    if waveform.ndim != 1:
        raise AudioInputError(
            f"{name} must be mono with shape (samples,), got shape {tuple(waveform.shape)}; "
            "downmix multi-channel audio first (load_audio(..., downmix=True) does it)."
        )
    if not np.issubdtype(waveform.dtype, np.floating) and not np.issubdtype(waveform.dtype, np.integer):
        raise AudioInputError(f"{name} must be numeric, got dtype {waveform.dtype}.")
    if waveform.shape[0] == 0:
        raise AudioInputError(f"{name} is empty (0 samples).")
    if waveform.shape[0] < min_samples:
        raise AudioInputError(
            f"{name} is too short: {waveform.shape[0]} samples "
            f"({waveform.shape[0] / expected_sampling_rate:.3f} s), at least {min_samples} needed "
            f"({min_samples / expected_sampling_rate:.3f} s)."
        )
    waveform = waveform.astype(np.float32, copy=False)
    if not np.all(np.isfinite(waveform)):
        raise AudioInputError(f"{name} contains NaN or infinite samples.")
    if not allow_silence and float(np.max(np.abs(waveform))) < 1e-4:
        raise AudioInputError(f"{name} is silent (peak amplitude below 1e-4).")
    return np.ascontiguousarray(waveform)


def load_audio(
    audio: AudioLike,
    sampling_rate: Optional[int] = None,
    target_sampling_rate: int = 16000,
    downmix: bool = True,
    name: str = "audio",
) -> np.ndarray:
    """Read a file or take an array/tensor, downmix to mono and resample to the target rate.

    Args:
        audio: a path readable by soundfile (wav, flac, ogg, ...), or an array/tensor of shape
            `(samples,)` or `(channels, samples)` / `(samples, channels)` (the smaller axis is
            taken as channels).
        sampling_rate: rate of an array/tensor input (required for those, ignored for paths).
        target_sampling_rate: rate of the returned waveform.
        downmix: average channels to mono; if False, multi-channel input raises.
        name: what to call the input in error messages.

    Returns:
        `(samples,)` float32 waveform at `target_sampling_rate`. Not otherwise validated: call
        :func:`check_waveform` for the checks your use needs.
    """
    import soundfile as sf

    if isinstance(audio, (str, os.PathLike)):
        path = os.fspath(audio)
        if not os.path.isfile(path):
            raise AudioInputError(f"{name}: no such file {path!r}.")
        try:
            waveform, sampling_rate = sf.read(path, dtype="float32", always_2d=True)
        except Exception as error:  # soundfile raises several types for corrupt files
            raise AudioInputError(f"{name}: cannot decode {path!r} ({error}).") from error
        waveform = waveform.T  # (channels, samples)
    else:
        if sampling_rate is None:
            raise AudioInputError(f"{name}: an array input needs its `sampling_rate`.")
        if hasattr(audio, "detach"):
            audio = audio.detach().cpu().float().numpy()
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim == 2 and waveform.shape[0] > waveform.shape[1]:
            waveform = waveform.T
        elif waveform.ndim > 2:
            raise AudioInputError(f"{name} must be 1-D or 2-D, got shape {tuple(waveform.shape)}.")
    if waveform.ndim == 2:
        if waveform.shape[0] > 1 and not downmix:
            raise AudioInputError(f"{name} has {waveform.shape[0]} channels; mono is required.")
        waveform = waveform.mean(axis=0)
    if waveform.size == 0:
        raise AudioInputError(f"{name} is empty (0 samples).")
    if not np.all(np.isfinite(waveform)):
        raise AudioInputError(f"{name} contains NaN or infinite samples.")
    if int(sampling_rate) != int(target_sampling_rate):
        waveform = resample(waveform, int(sampling_rate), int(target_sampling_rate))
    return np.ascontiguousarray(waveform, dtype=np.float32)


def resample(waveform: np.ndarray, sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """`(samples,)` → `(ceil(samples * target / rate),)` with soxr's high-quality band-limited resampler — what
    `librosa.resample` does by default, without importing librosa (seconds of start-up)."""
    import soxr

    resampled = soxr.resample(waveform, sampling_rate, target_sampling_rate, quality="soxr_hq")
    length = int(np.ceil(len(waveform) * target_sampling_rate / sampling_rate))
    return np.pad(resampled, (0, max(0, length - len(resampled))))[:length]
