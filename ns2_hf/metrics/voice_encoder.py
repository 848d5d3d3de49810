"""Resemblyzer's speaker encoder (a d-vector: 3-layer LSTM over 40-band mel frames), kept here so a plain
`pip install ns2-hf[eval]` gives it: the `resemblyzer` package on PyPI pins the `typing` backport (which
shadows the standard library on Python 3.11) and `webrtcvad` (which no longer builds).

The code follows resemblyzer 0.1.4 (Apache-2.0, Resemble AI; `resemblyzer/audio.py`, `voice_encoder.py`,
`hparams.py`) step for step; the weights are its `pretrained.pt` `model_state` (LSTM and projection, 1.4M
parameters) stored as `voice_encoder.safetensors`, converted once with
`torch.load(..., weights_only=True)` + `safetensors.torch.save_file`. The voice activity detector is
`webrtcvad` from `webrtcvad-wheels` (the same C code, prebuilt).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "voice_encoder.safetensors"
SAMPLING_RATE = 16000
MEL_WINDOW_MS, MEL_STEP_MS, MEL_CHANNELS = 25, 10, 40
PARTIAL_FRAMES = 160  # 1.6 s of mel frames per partial utterance
VAD_WINDOW_MS, VAD_AVERAGE_WIDTH, VAD_MAX_SILENCE = 30, 8, 6
TARGET_DBFS = -30
INT16_MAX = 2**15 - 1


def normalize_volume(waveform: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the loudness of `(samples,)` to `target_dbfs`."""
    rms = np.sqrt(np.mean((waveform * INT16_MAX) ** 2))
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    return waveform if change < 0 else waveform * (10 ** (change / 20))


def trim_long_silences(waveform: np.ndarray) -> np.ndarray:
    """Drop the non-speech of `(samples,)` at 16 kHz (webrtcvad, mode 3, 30 ms windows, smoothed and dilated
    so that pauses up to 6 windows stay)."""
    import webrtcvad
    from scipy.ndimage import binary_dilation

    window = VAD_WINDOW_MS * SAMPLING_RATE // 1000
    waveform = waveform[: len(waveform) - len(waveform) % window]
    pcm = np.round(waveform * INT16_MAX).astype("<i2").tobytes()
    vad = webrtcvad.Vad(mode=3)
    flags = np.array([vad.is_speech(pcm[start * 2 : (start + window) * 2], sample_rate=SAMPLING_RATE)
                      for start in range(0, len(waveform), window)], dtype=float)
    padded = np.concatenate((np.zeros((VAD_AVERAGE_WIDTH - 1) // 2), flags, np.zeros(VAD_AVERAGE_WIDTH // 2)))
    averaged = np.cumsum(padded)
    averaged[VAD_AVERAGE_WIDTH:] = averaged[VAD_AVERAGE_WIDTH:] - averaged[:-VAD_AVERAGE_WIDTH]
    mask = np.round(averaged[VAD_AVERAGE_WIDTH - 1 :] / VAD_AVERAGE_WIDTH).astype(bool)
    mask = binary_dilation(mask, np.ones(VAD_MAX_SILENCE + 1))
    return waveform[np.repeat(mask, window)]


def preprocess(waveform: np.ndarray) -> np.ndarray:
    """`(samples,)` at 16 kHz → loudness-normalised speech with long silences removed."""
    return trim_long_silences(normalize_volume(waveform))


@lru_cache(maxsize=1)
def voice_encoder():
    """The encoder on CPU in eval mode, loaded once: `(batch, frames, 40)` mel → `(batch, 256)` unit vectors."""
    import torch
    from safetensors.torch import load_file

    class VoiceEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(MEL_CHANNELS, 256, 3, batch_first=True)
            self.linear = torch.nn.Linear(256, 256)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            embeddings = torch.relu(self.linear(hidden[-1]))
            return embeddings / torch.norm(embeddings, dim=1, keepdim=True)

    encoder = VoiceEncoder()
    encoder.load_state_dict(load_file(WEIGHTS))
    return encoder.eval()


def embed_utterance(speech: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
    """Unit-norm d-vector `(256,)` of preprocessed `speech` `(samples,)`: the mean embedding of 1.6 s partial
    utterances taken `rate` times a second (the last kept if it covers `min_coverage` of a partial)."""
    import librosa
    import torch

    hop = SAMPLING_RATE * MEL_STEP_MS // 1000
    num_frames = int(np.ceil((len(speech) + 1) / hop))
    frame_step = int(np.round((SAMPLING_RATE / rate) / hop))
    starts = list(range(0, max(1, num_frames - PARTIAL_FRAMES + frame_step + 1), frame_step))
    coverage = (len(speech) - starts[-1] * hop) / (PARTIAL_FRAMES * hop)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    needed = (starts[-1] + PARTIAL_FRAMES) * hop
    if needed >= len(speech):
        speech = np.pad(speech, (0, needed - len(speech)))
    mel = librosa.feature.melspectrogram(y=speech, sr=SAMPLING_RATE, n_fft=SAMPLING_RATE * MEL_WINDOW_MS // 1000,
                                         hop_length=hop, n_mels=MEL_CHANNELS).astype(np.float32).T
    mels = torch.from_numpy(np.array([mel[start : start + PARTIAL_FRAMES] for start in starts]))
    with torch.no_grad():
        partials = voice_encoder()(mels).numpy()
    embedding = partials.mean(axis=0)
    return embedding / np.linalg.norm(embedding, 2)
