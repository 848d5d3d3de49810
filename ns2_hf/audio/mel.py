"""Mel spectrograms from `torch.stft` and librosa's mel filterbank (no torchaudio)."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch


@lru_cache(maxsize=16)
def _mel_basis(sampling_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: Optional[float]) -> torch.Tensor:
    import librosa

    return torch.from_numpy(
        librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
    ).float()


def mel_filterbank(
    sampling_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: Optional[float] = None
) -> torch.Tensor:
    """Slaney mel filterbank of shape `(n_mels, n_fft // 2 + 1)` (cached)."""
    return _mel_basis(int(sampling_rate), int(n_fft), int(n_mels), float(f_min), f_max)


def mel_spectrogram(
    waveform: torch.Tensor,
    sampling_rate: int,
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: Optional[int] = None,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: Optional[float] = None,
    log: bool = True,
    center: bool = True,
) -> torch.Tensor:
    """Magnitude mel spectrogram.

    Args:
        waveform: `(samples,)` or `(batch, samples)` float tensor.
        log: return `log(clamp(mel, 1e-5))` instead of linear magnitude.

    Returns:
        `(batch, n_mels, frames)` (batch dim kept as 1 for 1-D input), frames =
        `samples // hop_length + 1` when `center=True`.
    """
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, device=waveform.device, dtype=waveform.dtype)
    if not center:
        pad = (n_fft - hop_length) // 2
        waveform = torch.nn.functional.pad(waveform.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    padding_mode = "reflect" if waveform.shape[-1] > n_fft // 2 else "constant"
    spectrum = torch.stft(
        waveform,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=padding_mode,
        return_complex=True,
    )
    magnitude = spectrum.abs()
    basis = mel_filterbank(sampling_rate, n_fft, n_mels, f_min, f_max).to(magnitude.device, magnitude.dtype)
    mel = torch.matmul(basis, magnitude)
    return torch.log(torch.clamp(mel, min=1e-5)) if log else mel
