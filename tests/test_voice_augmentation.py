"""training/voice_augmentation.py: the voice transforms move pitch, formants and tempo by what they say, and the
draws are reproducible (the prepare_dataset.py side is in test_prepare_dataset.py)."""

import math

import numpy as np
import pytest
import soundfile as sf

from ns2_hf.metrics import pitch_contour
from training.voice_augmentation import (
    DURATION_FACTOR_RANGE,
    FORMANT_RATIO_RANGE,
    SEMITONE_RANGE,
    VoiceTransform,
    draw_transforms,
    transform_voice,
)

RATE = 16000


def median_f0(waveform):
    """Median f0 in Hz over voiced frames (the statistic Praat's "Change gender" moves; a mean is pulled by the
    tracker's occasional octave errors on a short utterance)."""
    f0, voiced = pitch_contour(waveform, RATE)
    return float(np.median(f0[voiced]))


@pytest.fixture(scope="module")
def utterances(corpus_dir):
    """Two corpus utterances (a low and a high voice) with their median f0 (Praat, as prepare_dataset measures)."""
    from ns2_hf.audio.pitch import extract_pitch

    picked = []
    for name in ("flite_awb_0001", "kok_alpha_0001"):
        waveform, rate = sf.read(corpus_dir / "audio" / f"{name}.flac", dtype="float32")
        assert rate == RATE
        log_f0, voiced = extract_pitch(waveform, RATE, 200)
        picked.append((waveform, float(np.exp(np.median(log_f0[voiced])))))
    return picked


@pytest.mark.parametrize("semitones,duration_factor", [(4.0, 1.0), (-3.0, 1.1), (5.0, 0.9)])
def test_pitch_moves_by_the_semitones_and_the_length_by_the_duration_factor(utterances, semitones, duration_factor):
    for waveform, source_f0 in utterances:
        transform = VoiceTransform("x_aug0", "x", semitones, 1.0, duration_factor)
        augmented = transform_voice(waveform, RATE, transform, source_f0)
        measured = 12 * math.log2(median_f0(augmented) / median_f0(waveform))
        assert measured == pytest.approx(semitones, abs=0.3)
        assert len(augmented) / len(waveform) == pytest.approx(duration_factor, rel=0.01)
        assert np.abs(augmented).max() <= 0.99


def test_formant_ratio_moves_the_spectrum_and_not_the_pitch(utterances):
    import librosa

    waveform, source_f0 = utterances[0]
    centroids, medians = [], []
    for ratio in (0.88, 1.12):
        augmented = transform_voice(waveform, RATE, VoiceTransform("x_aug0", "x", 0.0, ratio, 1.0), source_f0)
        centroids.append(float(librosa.feature.spectral_centroid(y=augmented, sr=RATE).mean()))
        medians.append(median_f0(augmented))
    assert centroids[1] / centroids[0] > 1.1
    assert medians[1] / medians[0] == pytest.approx(1.0, abs=0.02)


def test_draws_are_reproducible_cycle_the_speakers_and_stay_in_range():
    transforms = draw_transforms({"b": 120.0, "a": 200.0}, 5, seed=3)
    assert transforms == draw_transforms({"a": 200.0, "b": 120.0}, 5, seed=3)
    assert [t.source_speaker for t in transforms] == ["a", "b", "a", "b", "a"]
    assert [t.speaker_id for t in transforms] == ["a_aug0", "b_aug1", "a_aug2", "b_aug3", "a_aug4"]
    for transform in transforms:
        assert SEMITONE_RANGE[0] <= abs(transform.semitones) <= SEMITONE_RANGE[1]
        assert FORMANT_RATIO_RANGE[0] <= transform.formant_ratio <= FORMANT_RATIO_RANGE[1]
        assert DURATION_FACTOR_RANGE[0] <= transform.duration_factor <= DURATION_FACTOR_RANGE[1]
    # a voice near the bottom of the range only goes up, one near the top only down
    assert all(t.semitones > 0 for t in draw_transforms({"low": 85.0}, 20, seed=0))
    assert all(t.semitones < 0 for t in draw_transforms({"high": 340.0}, 20, seed=0))
    assert draw_transforms({"a": 100.0}, 0, seed=0) == []
    with pytest.raises(ValueError, match="no speaker"):
        draw_transforms({}, 2, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        draw_transforms({"a": 100.0}, -1, seed=0)
