"""Reconstruction quality of a codec (or any system with a sample-aligned reference): multi-resolution
mel distance, SI-SNR, wide-band PESQ and STOI.

All take a reconstruction and its reference at one sampling rate; when their lengths differ (a
codec pads to a multiple of its hop) both are cropped to the shorter length.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch

from ..audio.io import check_waveform, load_audio
from ..audio.mel import mel_spectrogram

# ITU-T P.862.2 (wide-band PESQ) is defined for 16 kHz audio.
PESQ_SAMPLING_RATE = 16000

# (n_fft, hop_length, n_mels) of the multi-resolution mel distance: 32, 64 and 128 ms windows at
# 16 kHz with 75 % overlap, mel bands scaled with the window.
MEL_RESOLUTIONS: Tuple[Tuple[int, int, int], ...] = ((512, 128, 40), (1024, 256, 80), (2048, 512, 128))


def _paired(reconstruction: np.ndarray, reference: np.ndarray, sampling_rate: int, min_samples: int = 1):
    reconstruction = check_waveform(reconstruction, None, sampling_rate, name="reconstruction", min_samples=min_samples)
    reference = check_waveform(reference, None, sampling_rate, name="reference", min_samples=min_samples)
    length = min(len(reconstruction), len(reference))
    return reconstruction[:length], reference[:length]


def multi_resolution_mel_distance(
    reconstruction: np.ndarray,
    reference: np.ndarray,
    sampling_rate: int,
    resolutions: Sequence[Tuple[int, int, int]] = MEL_RESOLUTIONS,
) -> float:
    """Mean absolute difference of natural-log mel amplitude spectrograms, averaged over resolutions
    (0 for identical signals). Waveforms are `(samples,)` arrays."""
    reconstruction, reference = _paired(reconstruction, reference, sampling_rate)
    pair = torch.from_numpy(np.stack([reconstruction, reference]))
    distances = []
    for n_fft, hop_length, n_mels in resolutions:
        log_mel = mel_spectrogram(pair, sampling_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        distances.append(float((log_mel[0] - log_mel[1]).abs().mean()))
    return float(np.mean(distances))


def si_snr(reconstruction: np.ndarray, reference: np.ndarray, sampling_rate: int) -> float:
    """Scale-invariant signal-to-noise ratio in dB (Le Roux et al., 2019, "SDR — half-baked or well
    done?"): after removing the means, `10 log10(|s_t|^2 / |e|^2)` with `s_t` the projection of
    the reconstruction on the reference and `e` the rest. Rescaling the reconstruction leaves it
    unchanged."""
    reconstruction, reference = _paired(reconstruction, reference, sampling_rate)
    reconstruction = reconstruction.astype(np.float64) - reconstruction.mean()
    reference = reference.astype(np.float64) - reference.mean()
    eps = np.finfo(np.float64).eps
    target = np.dot(reconstruction, reference) / (np.dot(reference, reference) + eps) * reference
    residual = reconstruction - target
    return float(10.0 * np.log10((np.dot(target, target) + eps) / (np.dot(residual, residual) + eps)))


def pesq_wideband(reconstruction: np.ndarray, reference: np.ndarray, sampling_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.0–4.64) with the `pesq` package; audio at other rates is
    resampled to 16 kHz first.

    Raises:
        RuntimeError: (`pesq.NoUtterancesError`) when the reference holds no speech.
    """
    from pesq import pesq

    reconstruction, reference = _paired(reconstruction, reference, sampling_rate)
    if sampling_rate != PESQ_SAMPLING_RATE:
        reconstruction = load_audio(reconstruction, sampling_rate, PESQ_SAMPLING_RATE)
        reference = load_audio(reference, sampling_rate, PESQ_SAMPLING_RATE)
    return float(pesq(PESQ_SAMPLING_RATE, reference, reconstruction, "wb"))


def stoi(reconstruction: np.ndarray, reference: np.ndarray, sampling_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility in [0, 1] (ESTOI with `extended=True`), with `pystoi`."""
    from pystoi import stoi as pystoi_stoi

    reconstruction, reference = _paired(reconstruction, reference, sampling_rate)
    return float(pystoi_stoi(reference, reconstruction, sampling_rate, extended=extended))
