"""The long-term average spectrum (LTAS) of speech, and an equaliser that moves one recording's towards another's.

Used by `NS2Pipeline(spectrum_matching=)` (ours, not in the paper): a recording's LTAS carries its microphone, room
and band limit and the speaker's spectral tilt, which a small codec and denoiser trained on a few voices do not
reproduce from the prompt. The output is passed through the smooth zero-phase equaliser that brings its LTAS
towards the prompt's, band by band on a mel scale, within ±`max_gain_db`, at the same loudness.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

#: STFT of the analysis and of the equaliser: 32 ms frames, 8 ms hop at 16 kHz.
N_FFT = 512
HOP_LENGTH = 128
#: Mel bands of the LTAS, 50 Hz to Nyquist (about 1/4 octave above 1 kHz): broad enough to follow the channel and the
#: voice's tilt rather than which phones a short prompt holds (12 and 8 bands measured worse, training/README.md).
NUM_BANDS = 24
#: Largest boost or cut per band, in dB: 12 dB cost words on the voices the model reads well (training/README.md).
MAX_GAIN_DB = 6.0
#: Frames more than this far below the loudest frame are not speech and do not count in the LTAS.
SPEECH_RANGE_DB = 40.0
FMIN = 50.0


@lru_cache(maxsize=8)
def _bands(sampling_rate: int, num_bands: int):
    """`(mel filterbank (num_bands, N_FFT / 2 + 1), band centres (num_bands,) Hz, bin frequencies (N_FFT / 2 + 1,))`."""
    import librosa

    filterbank = librosa.filters.mel(sr=sampling_rate, n_fft=N_FFT, n_mels=num_bands, fmin=FMIN, fmax=sampling_rate / 2, norm=None)
    centres = librosa.mel_frequencies(n_mels=num_bands + 2, fmin=FMIN, fmax=sampling_rate / 2)[1:-1]
    return filterbank, centres, librosa.fft_frequencies(sr=sampling_rate, n_fft=N_FFT)


def _stft(waveform: torch.Tensor) -> torch.Tensor:
    """`(samples,)` float → complex `(N_FFT / 2 + 1, frames)`."""
    window = torch.hann_window(N_FFT, device=waveform.device)
    return torch.stft(waveform, N_FFT, HOP_LENGTH, window=window, center=True, return_complex=True)


def _checked_stft(waveform: torch.Tensor) -> torch.Tensor:
    """`(samples,)` → complex `(N_FFT / 2 + 1, frames)` on the CPU; raises ValueError below one STFT frame."""
    waveform = torch.as_tensor(waveform, dtype=torch.float32).cpu()
    if waveform.ndim != 1 or waveform.shape[0] < N_FFT:
        raise ValueError(f"long_term_spectrum needs a (samples,) waveform of at least {N_FFT} samples, got {tuple(waveform.shape)}.")
    return _stft(waveform)


def _spectrogram_ltas(spectrogram: torch.Tensor, sampling_rate: int, num_bands: int) -> torch.Tensor:
    """[`long_term_spectrum`] of a complex STFT `(N_FFT / 2 + 1, frames)`; raises ValueError if it is silent."""
    power = spectrogram.abs().double() ** 2
    frame_energy = power.sum(dim=0)
    if not frame_energy.max() > 0:
        raise ValueError("long_term_spectrum of a silent waveform.")
    speech = frame_energy >= frame_energy.max() * 10 ** (-SPEECH_RANGE_DB / 10)
    filterbank, _, _ = _bands(sampling_rate, num_bands)
    band_power = torch.from_numpy(filterbank).double() @ power[:, speech].mean(dim=1)
    return (10 * torch.log10(band_power / band_power.sum() + 1e-12)).float()


def long_term_spectrum(waveform: torch.Tensor, sampling_rate: int, num_bands: int = NUM_BANDS) -> torch.Tensor:
    """The LTAS of `waveform` `(samples,)`: mean power of its speech frames (within `SPEECH_RANGE_DB` of the loudest)
    in `num_bands` mel bands, normalised to a total of 1, in dB — `(num_bands,)` float32, independent of loudness.

    Raises:
        ValueError: the waveform is shorter than one STFT frame (`N_FFT` samples) or silent.
    """
    return _spectrogram_ltas(_checked_stft(waveform), sampling_rate, num_bands)


def match_long_term_spectrum(
    waveform: torch.Tensor,
    target_spectrum: torch.Tensor,
    sampling_rate: int,
    strength: float = 1.0,
    max_gain_db: float = MAX_GAIN_DB,
) -> torch.Tensor:
    """`waveform` `(samples,)` equalised so that its LTAS moves `strength` of the way (0 = unchanged, 1 = all of it)
    towards `target_spectrum` (`(num_bands,)` dB from [`long_term_spectrum`]), each band's gain within ±`max_gain_db`
    and interpolated in dB between band centres; zero phase, the same length and RMS. A waveform too short or silent to
    measure is returned as it is."""
    waveform = torch.as_tensor(waveform)
    try:
        spectrogram = _checked_stft(waveform)  # one STFT: measured, then filtered
        source_spectrum = _spectrogram_ltas(spectrogram, sampling_rate, target_spectrum.shape[0])
    except ValueError:
        return waveform
    _, centres, frequencies = _bands(sampling_rate, target_spectrum.shape[0])
    band_gain_db = strength * (target_spectrum.cpu().double() - source_spectrum.double()).clamp(-max_gain_db, max_gain_db)
    gain = torch.from_numpy(10 ** (np.interp(frequencies, centres, band_gain_db.numpy()) / 20)).float()
    samples = waveform.float().cpu()
    equalised = torch.istft(spectrogram * gain[:, None], N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT),
                            center=True, length=samples.shape[0])
    equalised = equalised * (samples.pow(2).mean() / equalised.pow(2).mean().clamp(min=1e-20)).sqrt()
    return equalised.to(waveform.device, waveform.dtype)
