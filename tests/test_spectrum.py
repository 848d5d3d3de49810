"""The long-term average spectrum and the equaliser that matches it (`ns2_hf.audio.spectrum`)."""

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

from ns2_hf.audio.spectrum import MAX_GAIN_DB, N_FFT, NUM_BANDS, long_term_spectrum, match_long_term_spectrum

RATE = 16000


def noise(seconds=2.0, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(int(seconds * RATE)).astype(np.float32))


def lowpassed(waveform, cutoff_hz, order=8):
    sos = scipy.signal.butter(order, cutoff_hz, fs=RATE, output="sos")
    return torch.from_numpy(scipy.signal.sosfiltfilt(sos, waveform.numpy()).astype(np.float32))


def test_long_term_spectrum_ignores_loudness_and_pauses_and_sees_a_band_limit(corpus_dir):
    speech = torch.from_numpy(sf.read(corpus_dir / "audio" / "flite_slt_0001.flac", dtype="float32")[0])
    spectrum = long_term_spectrum(speech, RATE)
    assert spectrum.shape == (NUM_BANDS,) and torch.isfinite(spectrum).all()
    torch.testing.assert_close(long_term_spectrum(3.0 * speech, RATE), spectrum, atol=1e-3, rtol=0)
    # a second of silence before and after: not speech, not counted
    padded = torch.cat([torch.zeros(RATE), speech, torch.zeros(RATE)])
    torch.testing.assert_close(long_term_spectrum(padded, RATE), spectrum, atol=0.05, rtol=0)
    # the same speech through a 4 kHz telephone-like band limit: its top bands (5 and 6.3 kHz) fall by tens of dB
    limited = long_term_spectrum(lowpassed(speech, 3800), RATE)
    assert (spectrum[-2:] - limited[-2:]).min() > 20 and (spectrum[:4] - limited[:4]).abs().max() < 3
    with pytest.raises(ValueError, match="silent"):
        long_term_spectrum(torch.zeros(RATE), RATE)
    with pytest.raises(ValueError, match="at least"):
        long_term_spectrum(torch.ones(N_FFT - 1), RATE)


def test_matching_moves_each_band_towards_the_target_within_the_gain_bound():
    source, target_audio = noise(seed=0), lowpassed(noise(seed=1), 2500, order=2)
    target = long_term_spectrum(target_audio, RATE)
    before = long_term_spectrum(source, RATE)
    matched = match_long_term_spectrum(source, target, RATE)
    after = long_term_spectrum(matched, RATE)
    assert matched.shape == source.shape and matched.dtype == source.dtype
    assert float(matched.pow(2).mean()) == pytest.approx(float(source.pow(2).mean()), rel=1e-4)  # the same loudness
    distance_before, distance_after = (target - before).abs(), (target - after).abs()
    # bands within the bound land on the target; the others move by about the bound, no further
    assert (distance_after <= torch.clamp(distance_before - MAX_GAIN_DB, min=0) + 1.5).all()
    assert ((after - before).abs() <= MAX_GAIN_DB + 1.5).all()
    inside = distance_before < MAX_GAIN_DB
    assert inside.sum() >= 6 and (distance_after[inside] < 1.0).all() and (distance_before[inside].max() > 4.0)
    # half the strength: half the way (in dB, for the bands within the bound)
    half = long_term_spectrum(match_long_term_spectrum(source, target, RATE, strength=0.5), RATE)
    torch.testing.assert_close((half - before)[inside], 0.5 * (after - before)[inside], atol=0.75, rtol=0)
    # strength 0 and a waveform's own spectrum leave it (nearly) as it is: a zero-phase filter, no delay
    torch.testing.assert_close(match_long_term_spectrum(source, target, RATE, strength=0.0), source, atol=1e-4, rtol=0)
    torch.testing.assert_close(match_long_term_spectrum(source, before, RATE), source, atol=1e-4, rtol=0)


def test_matching_leaves_what_it_cannot_measure():
    silent, short = torch.zeros(RATE), torch.ones(100)
    target = long_term_spectrum(noise(), RATE)
    assert torch.equal(match_long_term_spectrum(silent, target, RATE), silent)
    assert torch.equal(match_long_term_spectrum(short, target, RATE), short)
