"""Pitch extraction on the codec frame grid: known tones, silence, frame counts, real speech."""

import math

import numpy as np
import pytest
import soundfile as sf

from ns2_hf.audio.io import AudioInputError
from ns2_hf.audio.pitch import extract_pitch

SAMPLING_RATE = 16000
HOP = 200


def frame_centres(num_frames):
    return (np.arange(num_frames) + 0.5) * HOP / SAMPLING_RATE


def test_pure_tone_recovered():
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    tone = (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    log_f0, voiced = extract_pitch(tone, SAMPLING_RATE, HOP)
    assert log_f0.dtype == np.float32 and voiced.dtype == bool
    assert voiced.mean() > 0.95
    np.testing.assert_allclose(np.exp(log_f0[voiced]), 220.0, rtol=0.01)


def test_chirp_tracked_frame_by_frame():
    # Linear chirp 100 -> 400 Hz over one second: f(t) = 100 + 300 t.
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    chirp = (0.5 * np.sin(2 * np.pi * (100.0 * t + 150.0 * t**2))).astype(np.float32)
    log_f0, voiced = extract_pitch(chirp, SAMPLING_RATE, HOP)
    truth = 100.0 + 300.0 * frame_centres(len(log_f0))
    assert voiced.mean() > 0.95
    np.testing.assert_allclose(np.exp(log_f0[voiced]), truth[voiced], rtol=0.02)
    # Away from the clip edges (half-empty analysis windows) the error is far smaller.
    np.testing.assert_allclose(np.exp(log_f0[3:-3]), truth[3:-3], rtol=0.005)


def test_silence_is_unvoiced_and_finite():
    log_f0, voiced = extract_pitch(np.zeros(SAMPLING_RATE, np.float32), SAMPLING_RATE, HOP, f0_min=60.0)
    assert not voiced.any()
    np.testing.assert_allclose(log_f0, math.log(60.0))


def test_unvoiced_gap_is_interpolated():
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    low = 0.5 * np.sin(2 * np.pi * 150.0 * t[:6000])
    high = 0.5 * np.sin(2 * np.pi * 300.0 * t[:6000])
    clip = np.concatenate([low, np.zeros(4000), high]).astype(np.float32)
    log_f0, voiced = extract_pitch(clip, SAMPLING_RATE, HOP)
    gap = np.flatnonzero(~voiced)
    gap = gap[(gap > 10) & (gap < len(clip) // HOP - 10)]
    assert len(gap) >= 10
    inside = log_f0[gap]
    assert np.all(np.diff(inside) > 0), "log-f0 should rise linearly across the unvoiced gap"
    assert math.log(150.0) * 0.99 < inside.min() and inside.max() < math.log(300.0) * 1.01


@pytest.mark.parametrize("num_samples", [1, HOP - 1, HOP, SAMPLING_RATE + 37])
def test_frame_count_follows_codec_convention(num_samples):
    noise = np.random.default_rng(0).normal(scale=0.1, size=num_samples).astype(np.float32)
    log_f0, voiced = extract_pitch(noise, SAMPLING_RATE, HOP)
    assert log_f0.shape == voiced.shape == (math.ceil(num_samples / HOP),)
    assert np.all(np.isfinite(log_f0))


def test_num_frames_pads_unvoiced_and_crops():
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    tone = (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    log_f0, voiced = extract_pitch(tone, SAMPLING_RATE, HOP, num_frames=90)
    assert log_f0.shape == (90,) and not voiced[80:].any() and voiced[5:75].all()
    np.testing.assert_allclose(np.exp(log_f0[80:]), 220.0, rtol=0.01)
    cropped, _ = extract_pitch(tone, SAMPLING_RATE, HOP, num_frames=10)
    assert cropped.shape == (10,)


def test_bad_input_raises():
    with pytest.raises(AudioInputError, match="empty"):
        extract_pitch(np.zeros(0, np.float32), SAMPLING_RATE, HOP)
    with pytest.raises(ValueError, match="f0_min"):
        extract_pitch(np.ones(400, np.float32), SAMPLING_RATE, HOP, f0_min=500.0, f0_max=100.0)


@pytest.mark.parametrize("utterance", ["audio/kok_alpha_0000.flac", "audio/fes_kal_0000.flac"])
def test_real_utterance_is_plausible(corpus_dir, utterance):
    waveform, sampling_rate = sf.read(corpus_dir / utterance, dtype="float32")
    assert sampling_rate == SAMPLING_RATE
    log_f0, voiced = extract_pitch(waveform, sampling_rate, HOP)
    assert len(log_f0) == math.ceil(len(waveform) / HOP)
    assert 0.3 < voiced.mean() < 0.95
    f0 = np.exp(log_f0[voiced])
    assert 70.0 < np.median(f0) < 350.0
    low, high = np.percentile(f0, [5, 95])
    assert 50.0 < low and high < 500.0 and high / low < 4.0


def test_a_lower_voicing_threshold_finds_more_of_noisy_speech_voiced_frames(corpus_dir):
    """White noise at 5 dB SNR lowers the periodicity Praat measures: with its default threshold (0.45) voiced
    frames of the clean recording are lost; 0.3 (what speech enhancement uses) finds more of them, hardly any
    false ones, and the same pitch on the frames both find."""
    clean, rate = sf.read(corpus_dir / "audio" / "kok_mix5_0003.flac", dtype="float32")
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    noisy = clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** 0.5)
    clean_log_f0, clean_voiced = extract_pitch(clean, rate, HOP)
    recall, precision = {}, {}
    for threshold in (0.45, 0.3):
        log_f0, voiced = extract_pitch(noisy, rate, HOP, num_frames=len(clean_voiced), voicing_threshold=threshold)
        both = voiced & clean_voiced
        recall[threshold], precision[threshold] = both.sum() / clean_voiced.sum(), both.sum() / voiced.sum()
        cents = 1200 * np.abs(log_f0[both] - clean_log_f0[both]) / math.log(2)
        assert np.median(cents) < 20
    assert recall[0.3] > recall[0.45] + 0.03, recall
    assert precision[0.3] > 0.95, precision
