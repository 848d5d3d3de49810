"""DNSMOS (Reddy et al., 2022): a non-intrusive MOS predictor, the project's offline stand-in for
listening tests. Scores (1–5) follow ITU-T P.835: `sig` (speech signal quality), `bak`
(background noise), `ovrl` (overall), plus the P.808 overall score. Computed with `speechmos`'
shipped ONNX models on 9 s windows (shorter clips are looped to 9 s).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from ..audio.io import check_waveform, load_audio

# The DNSMOS models take 16 kHz audio.
DNSMOS_SAMPLING_RATE = 16000


def dnsmos(audio: np.ndarray, sampling_rate: int) -> Dict[str, float]:
    """DNSMOS of a `(samples,)` waveform (resampled to 16 kHz when needed).

    A waveform whose peak exceeds 1 (DNSMOS refuses it) is scaled down to peak 1 first.

    Returns:
        `{"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}`.
    """
    from speechmos import dnsmos as speechmos_dnsmos

    waveform = load_audio(audio, sampling_rate, DNSMOS_SAMPLING_RATE, name="audio for DNSMOS")
    waveform = check_waveform(waveform, None, DNSMOS_SAMPLING_RATE, name="audio for DNSMOS", allow_silence=False)
    peak = float(np.max(np.abs(waveform)))
    if peak > 1.0:
        waveform = waveform / peak
    scores = speechmos_dnsmos.run(waveform, DNSMOS_SAMPLING_RATE)
    return {f"dnsmos_{key}": float(scores[f"{key}_mos"]) for key in ("ovrl", "sig", "bak", "p808")}
