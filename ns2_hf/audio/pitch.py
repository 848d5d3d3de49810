"""Frame-level pitch (log-f0 and voicing) on the codec's frame grid, with Praat via parselmouth.

NaturalSpeech 2 predicts one pitch value per codec latent frame. The paper used pyworld; here the
tracker is Praat's autocorrelation method (`praat-parselmouth`), the fastest accurate tracker that
installs on these machines. Frames follow the codec convention: a clip of `n` samples has
`F = ceil(n / hop_length)` frames and frame `i` covers samples `[i * hop, (i + 1) * hop)`, so its
pitch is read at the frame's centre, `(i + 0.5) * hop / sampling_rate` seconds.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .io import check_waveform

# Praat's autocorrelation tracker analyses windows of this many periods of the pitch floor.
#: The default pitch floor (Hz) of `extract_pitch`: no voiced frame of the prepared data lies below it.
F0_MIN_HZ = 50.0
_PERIODS_PER_WINDOW = 3.0


def extract_pitch(
    waveform: np.ndarray,
    sampling_rate: int,
    hop_length: int,
    num_frames: Optional[int] = None,
    f0_min: float = F0_MIN_HZ,
    f0_max: float = 800.0,
    voicing_threshold: float = 0.45,
) -> Tuple[np.ndarray, np.ndarray]:
    """Log-f0 and voicing per codec frame.

    Args:
        waveform: `(samples,)` mono float waveform.
        sampling_rate: its rate in Hz (the codec's).
        hop_length: samples per frame (the codec's).
        num_frames: frames to return; default `ceil(samples / hop_length)`. A longer request
            pads with unvoiced frames, a shorter one crops.
        f0_min: pitch floor in Hz (also sets Praat's analysis window, 3 / f0_min seconds).
        f0_max: pitch ceiling in Hz.
        voicing_threshold: Praat's (0.45 by default): the autocorrelation peak a frame needs to count as voiced.
            Noise lowers that peak, so noisy speech is better tracked with a lower one (speech enhancement
            uses 0.3).

    Returns:
        `log_f0`: `(num_frames,)` float32, natural log of f0 in Hz on voiced frames; across
        unvoiced frames it is linearly interpolated between the neighbouring voiced frames and
        held constant before the first and after the last voiced frame. A clip with no voiced
        frame gets `log(f0_min)` everywhere. Never `log(0)`: every value is finite.
        `voiced`: `(num_frames,)` bool, True where Praat found a pitch.

    Raises:
        AudioInputError: for an empty, non-finite or multi-channel waveform.
        ValueError: for a non-positive hop length or `f0_min >= f0_max`.
    """
    import parselmouth

    waveform = check_waveform(waveform, None, sampling_rate, name="waveform for pitch extraction")
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}.")
    if not 0 < f0_min < f0_max:
        raise ValueError(f"need 0 < f0_min < f0_max, got f0_min={f0_min}, f0_max={f0_max}.")
    num_samples = waveform.shape[0]
    if num_frames is None:
        num_frames = math.ceil(num_samples / hop_length)

    # Zero-pad both ends by half an analysis window (plus a frame) so that Praat's frames, which
    # need a full window, reach the first and last samples of the clip.
    pad = int(math.ceil(_PERIODS_PER_WINDOW / f0_min * sampling_rate / 2)) + hop_length
    padded = np.pad(waveform.astype(np.float64), (pad, pad))
    pitch = parselmouth.Sound(padded, sampling_frequency=sampling_rate).to_pitch_ac(
        time_step=hop_length / sampling_rate, pitch_floor=f0_min, pitch_ceiling=f0_max,
        voicing_threshold=voicing_threshold,
    )
    praat_f0 = pitch.selected_array["frequency"]  # 0 where unvoiced
    praat_times = pitch.xs() - pad / sampling_rate  # seconds from the clip's first sample

    frame_centres = (np.arange(num_frames) + 0.5) * hop_length / sampling_rate
    nearest = np.rint((frame_centres - praat_times[0]) / pitch.dt).astype(np.int64)
    nearest = np.clip(nearest, 0, len(praat_f0) - 1)
    f0 = praat_f0[nearest]
    inside_clip = np.arange(num_frames) * hop_length < num_samples
    voiced = (f0 > 0) & inside_clip

    frame_index = np.arange(num_frames)
    if voiced.any():
        log_f0 = np.interp(frame_index, frame_index[voiced], np.log(f0[voiced]))
    else:
        log_f0 = np.full(num_frames, math.log(f0_min))
    return log_f0.astype(np.float32), voiced
