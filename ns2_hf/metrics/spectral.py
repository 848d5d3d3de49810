"""Spectral distortion between a synthesized utterance and a reference: mel-cepstral distortion
(MCD), f0 RMSE in cents and the voiced/unvoiced decision error, on one frame alignment.

Mel cepstrum: the DCT-II (orthonormal) of the natural-log mel *amplitude* spectrum from
`ns2_hf.audio.mel_spectrogram`, coefficients 1..`num_coefficients - 1` (c0, the energy, left
out). MCD per frame is `10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)` dB, the usual definition,
averaged over aligned frame pairs. Because the cepstrum here comes from a mel filterbank rather
than SPTK's mel-generalised analysis, values are comparable between systems scored with this
function, not with numbers from papers.

Frame alignment: `align="dtw"` (default, for utterances of different lengths, e.g. TTS output vs
ground truth) pairs frames along the `librosa.sequence.dtw` path on the mel cepstra (Euclidean
cost); `align="none"` pairs frame i with frame i over the shorter length (reconstructions).
f0 (Praat, `ns2_hf.audio.pitch.extract_pitch`) is read on the same frame grid; its RMSE is
over pairs voiced in both, in cents (`1200 * log2(f0 / f0_ref)`), so it does not depend on the
speaker's register; the V/UV error is the fraction of pairs whose voicing decisions differ.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch

from ..audio.io import AudioLike, check_waveform, load_audio
from ..audio.mel import mel_spectrogram
from ..audio.pitch import extract_pitch
from .prosody_stats import analysis_hop_length


def mel_cepstrum(
    waveform: np.ndarray, sampling_rate: int, hop_length: int, n_fft: int = 512, n_mels: int = 80, num_coefficients: int = 25
) -> np.ndarray:
    """Mel cepstrum `(frames, num_coefficients - 1)` (c1 onwards) of a `(samples,)` waveform.

    Frames follow `mel_spectrogram(center=True)`: frame i is centred on sample `i * hop_length`.
    """
    from scipy.fft import dct

    log_mel = mel_spectrogram(
        torch.from_numpy(np.asarray(waveform, dtype=np.float32)), sampling_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
    )[0].numpy()  # (n_mels, frames), natural log of amplitude
    cepstrum = dct(log_mel, type=2, norm="ortho", axis=0)[1:num_coefficients]
    return cepstrum.T.astype(np.float64)


def spectral_distortion(
    audio: AudioLike,
    reference_audio: AudioLike,
    sampling_rate: int,
    align: str = "dtw",
    hop_length: Optional[int] = None,
    n_fft: int = 512,
) -> Dict[str, float]:
    """MCD, f0 RMSE and V/UV error of `audio` against `reference_audio` (see the module docstring).

    Args:
        audio, reference_audio: paths or `(samples,)` waveforms at `sampling_rate` (paths are
            resampled to it).
        align: `"dtw"` or `"none"`.
        hop_length: analysis step in samples (default 10 ms).

    Returns:
        `{"mcd": dB, "f0_rmse_cents": cents (NaN if no pair is voiced in both), "vuv_error": fraction}`.
    """
    if align not in ("dtw", "none"):
        raise ValueError(f"align must be 'dtw' or 'none', got {align!r}.")
    hop_length = hop_length or analysis_hop_length(sampling_rate)
    waveforms = []
    for name, item in (("audio", audio), ("reference audio", reference_audio)):
        waveform = load_audio(item, sampling_rate, sampling_rate, name=name)
        waveforms.append(check_waveform(waveform, None, sampling_rate, name=name, min_samples=n_fft // 2 + 1))
    cepstra = [mel_cepstrum(waveform, sampling_rate, hop_length, n_fft) for waveform in waveforms]
    # mel frame i is centred on sample i * hop; extract_pitch's frame i on (i + 0.5) * hop, close enough
    # at a 10 ms step, and both give the same count up to one frame, which we crop.
    pitches = [extract_pitch(waveform, sampling_rate, hop_length, num_frames=len(cepstrum)) for waveform, cepstrum in zip(waveforms, cepstra)]

    if align == "dtw":
        import librosa

        _, path = librosa.sequence.dtw(X=cepstra[0].T, Y=cepstra[1].T, metric="euclidean")
        first, second = path[::-1, 0], path[::-1, 1]
    else:
        length = min(len(cepstra[0]), len(cepstra[1]))
        first = second = np.arange(length)

    differences = cepstra[0][first] - cepstra[1][second]
    mcd = 10.0 / math.log(10.0) * np.sqrt(2.0 * np.sum(differences**2, axis=1))
    (log_f0, voiced), (reference_log_f0, reference_voiced) = pitches
    both_voiced = voiced[first] & reference_voiced[second]
    cents = 1200.0 / math.log(2.0) * (log_f0[first] - reference_log_f0[second])
    f0_rmse = float(np.sqrt(np.mean(cents[both_voiced] ** 2))) if both_voiced.any() else float("nan")
    return {
        "mcd": float(mcd.mean()),
        "f0_rmse_cents": f0_rmse,
        "vuv_error": float(np.mean(voiced[first] != reference_voiced[second])),
    }
