"""Prosody statistics as in the NS2 paper's prosody evaluation (its Tables 3 and 4).

For pitch (f0 in Hz on voiced frames) and for phone durations, the paper computes per utterance
the mean, standard deviation, skewness and kurtosis, then reports the average absolute difference
of each statistic between the generated speech and the prompt (similarity to the prompt's
prosody) or the ground truth. Against the ground truth one can also compare the sequences
themselves: Pearson correlation and RMSE after aligning their lengths.

Conventions: `std` is the population standard deviation; `skewness` is the biased sample
skewness (0 for a symmetric distribution); `kurtosis` is the *excess* (Fisher) kurtosis, so a
Gaussian scores 0, not 3 (`scipy.stats.kurtosis` defaults).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..audio.io import AudioLike, check_waveform, load_audio
from ..audio.pitch import extract_pitch

MOMENTS = ("mean", "std", "skewness", "kurtosis")

# Default analysis step of the prosody and spectral metrics, in seconds (the usual 10 ms; pass a
# codec's hop_length to analyse on its frame grid instead).
ANALYSIS_FRAME_PERIOD = 0.01


def moments(values: Sequence[float]) -> Dict[str, float]:
    """Mean, std, skewness and excess kurtosis of a 1-D sample (see the module docstring).

    Raises:
        ValueError: for fewer than 2 values or non-finite values.
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size < 2:
        raise ValueError(f"prosody statistics need at least 2 values, got {values.size}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("prosody statistics got NaN or infinite values.")
    constant = bool(np.all(values == values[0]))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        # The shape statistics of a constant sequence are undefined; report a flat, Gaussian-like 0.
        "skewness": 0.0 if constant else float(stats.skew(values)),
        "kurtosis": 0.0 if constant else float(stats.kurtosis(values, fisher=True)),
    }


def analysis_hop_length(sampling_rate: int) -> int:
    """The default analysis step of the prosody and spectral metrics, in samples (10 ms)."""
    return max(1, int(round(ANALYSIS_FRAME_PERIOD * sampling_rate)))


def pitch_contour(audio: AudioLike, sampling_rate: int, hop_length: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """f0 in Hz `(frames,)` (interpolated across unvoiced frames) and voicing `(frames,)` bool,
    from `ns2_hf.audio.pitch.extract_pitch` (Praat).

    Args:
        audio: a `(samples,)` waveform at `sampling_rate`, or a path (resampled to `sampling_rate`).
        sampling_rate: the analysis rate.
        hop_length: analysis step in samples (default 10 ms).
    """
    waveform = load_audio(audio, sampling_rate, sampling_rate, name="audio for pitch")
    waveform = check_waveform(waveform, None, sampling_rate, name="audio for pitch")
    log_f0, voiced = extract_pitch(waveform, sampling_rate, hop_length or analysis_hop_length(sampling_rate))
    return np.exp(log_f0.astype(np.float64)), voiced


def pitch_statistics(audio: AudioLike, sampling_rate: int, hop_length: Optional[int] = None) -> Dict[str, float]:
    """`pitch_mean`, `pitch_std`, `pitch_skewness`, `pitch_kurtosis` and `pitch_median` of f0 (Hz) over voiced
    frames. The median is the robust one: a pitch track that jumps an octave on some frames (common on 8 kHz
    telephone-band recordings) moves the mean, not the median.

    Raises:
        ValueError: when fewer than 2 frames are voiced.
    """
    f0, voiced = pitch_contour(audio, sampling_rate, hop_length)
    if voiced.sum() < 2:
        raise ValueError(f"pitch statistics need at least 2 voiced frames, found {int(voiced.sum())}.")
    statistics = {f"pitch_{name}": value for name, value in moments(f0[voiced]).items()}
    return {**statistics, "pitch_median": float(np.median(f0[voiced]))}


def duration_statistics(durations: Sequence[float]) -> Dict[str, float]:
    """`duration_mean`, `duration_std`, `duration_skewness`, `duration_kurtosis` of phone durations
    (in the unit given: seconds or frames)."""
    return {f"duration_{name}": value for name, value in moments(durations).items()}


def statistics_difference(statistics: Dict[str, float], reference_statistics: Dict[str, float]) -> Dict[str, float]:
    """Absolute difference `|s - s_ref|` of each statistic present in both, keys suffixed `_diff`."""
    return {f"{key}_diff": abs(value - reference_statistics[key]) for key, value in statistics.items() if key in reference_statistics}


def pitch_against_prompt(statistics: Dict[str, float], prompt_statistics: Dict[str, float]) -> Dict[str, float]:
    """The output's f0 against the prompt's (from :func:`pitch_statistics` of each): `f0_prompt_ratio` = output /
    prompt mean f0, `f0_prompt_diff_hz` = output − prompt mean f0 (signed: negative is lower than the prompt), and
    `f0_prompt_median_ratio` = output / prompt median f0, which octave jumps of either pitch track do not move."""
    output, prompt = statistics["pitch_mean"], prompt_statistics["pitch_mean"]
    return {"f0_prompt_ratio": output / prompt, "f0_prompt_diff_hz": output - prompt,
            "f0_prompt_median_ratio": statistics["pitch_median"] / prompt_statistics["pitch_median"]}


def sequence_agreement(
    sequence: Sequence[float],
    reference: Sequence[float],
    mask: Optional[Sequence[bool]] = None,
    reference_mask: Optional[Sequence[bool]] = None,
) -> Dict[str, float]:
    """Pearson correlation and RMSE of a sequence against a reference sequence.

    A sequence of a different length is first stretched linearly in time to the reference's
    length (its mask by nearest neighbour); then only positions valid in both masks count.

    Returns:
        `{"pearson": r, "rmse": e}` (RMSE in the sequences' unit; `pearson` is NaN when either
        side is constant).

    Raises:
        ValueError: for fewer than 2 positions valid in both.
    """
    sequence = np.asarray(sequence, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    mask = np.ones(sequence.shape, bool) if mask is None else np.asarray(mask, bool)
    reference_mask = np.ones(reference.shape, bool) if reference_mask is None else np.asarray(reference_mask, bool)
    if sequence.size < 2 or reference.size < 2:
        raise ValueError("sequence agreement needs at least 2 values on each side.")
    if sequence.size != reference.size:
        positions = np.linspace(0, sequence.size - 1, reference.size)
        sequence = np.interp(positions, np.arange(sequence.size), sequence)
        mask = mask[np.rint(positions).astype(np.int64)]
    valid = mask & reference_mask
    if valid.sum() < 2:
        raise ValueError(f"sequence agreement needs at least 2 positions valid in both, found {int(valid.sum())}.")
    first, second = sequence[valid], reference[valid]
    constant = np.all(first == first[0]) or np.all(second == second[0])
    pearson = float("nan") if constant else float(np.corrcoef(first, second)[0, 1])
    return {"pearson": pearson, "rmse": float(np.sqrt(np.mean((first - second) ** 2)))}


def pitch_agreement(
    audio: AudioLike, reference_audio: AudioLike, sampling_rate: int, hop_length: Optional[int] = None
) -> Dict[str, float]:
    """`pitch_pearson` and `pitch_rmse_hz` of f0 against a reference utterance of the same text,
    over frames voiced in both after stretching to the reference's length (see
    :func:`sequence_agreement`)."""
    f0, voiced = pitch_contour(audio, sampling_rate, hop_length)
    reference_f0, reference_voiced = pitch_contour(reference_audio, sampling_rate, hop_length)
    agreement = sequence_agreement(f0, reference_f0, voiced, reference_voiced)
    return {"pitch_pearson": agreement["pearson"], "pitch_rmse_hz": agreement["rmse"]}


#: `pitch_kept` counts a resynthesis's pitch as kept when its median voiced f0 is within this fraction of the
#: recording's (the issue's "within 10 %").
F0_KEPT_TOLERANCE = 0.1


def pitch_kept(
    audio: AudioLike, reference_audio: AudioLike, sampling_rate: int, hop_length: Optional[int] = None
) -> Dict[str, float]:
    """Does a resynthesis (a codec's, say) keep the recording's pitch and voicing?

    Returns:
        `f0_ratio`: median voiced f0 of `audio` over the reference's (1 = kept; near 2 or 0.5 = an octave off);
        `f0_kept`: 1.0 when `f0_ratio` is within `F0_KEPT_TOLERANCE` of 1, else 0.0 (its mean over items is the
        share of items kept); `voiced_ratio`: share of voiced frames of `audio` over the reference's (below 1:
        periodicity lost). Medians of whole utterances, no frame alignment: a few octave jumps do not decide it,
        unlike `pitch_agreement`'s RMSE.

    Raises:
        ValueError: when either has fewer than 2 voiced frames.
    """
    f0, voiced = pitch_contour(audio, sampling_rate, hop_length)
    reference_f0, reference_voiced = pitch_contour(reference_audio, sampling_rate, hop_length)
    if voiced.sum() < 2 or reference_voiced.sum() < 2:
        raise ValueError(f"pitch kept needs at least 2 voiced frames on each side, found {int(voiced.sum())} and "
                         f"{int(reference_voiced.sum())}.")
    ratio = float(np.median(f0[voiced]) / np.median(reference_f0[reference_voiced]))
    return {"f0_ratio": ratio, "f0_kept": float(abs(ratio - 1.0) <= F0_KEPT_TOLERANCE),
            "voiced_ratio": float(voiced.mean() / reference_voiced.mean())}


def duration_agreement(durations: Sequence[float], reference_durations: Sequence[float]) -> Dict[str, float]:
    """`duration_pearson` and `duration_rmse` of phone durations against the reference's.

    Raises:
        ValueError: when the phone counts differ (the two must come from the same phone sequence).
    """
    if len(durations) != len(reference_durations):
        raise ValueError(
            f"duration agreement needs the same phone sequence: got {len(durations)} and {len(reference_durations)} phones."
        )
    agreement = sequence_agreement(durations, reference_durations)
    return {"duration_pearson": agreement["pearson"], "duration_rmse": agreement["rmse"]}
