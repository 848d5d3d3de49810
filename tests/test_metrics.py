"""Known-answer tests of ns2_hf.metrics and its evaluate modules (CPU, offline)."""

import evaluate
import numpy as np
import pytest
import soundfile as sf

from ns2_hf.audio import AudioInputError
from ns2_hf.metrics import (
    METRIC_NAMES,
    EvaluationItem,
    character_error_rate,
    dnsmos,
    duration_agreement,
    evaluate_items,
    frame_rate_buzz,
    metric_path,
    moments,
    multi_resolution_mel_distance,
    normalize_text,
    pesq_wideband,
    pitch_kept,
    pitch_statistics,
    sequence_agreement,
    si_snr,
    spectral_distortion,
    speaker_embedding,
    speaker_similarity,
    stoi,
    transcribe,
    word_error_rate,
)

RATE = 16000


def _read(corpus_dir, name):
    waveform, rate = sf.read(corpus_dir / "audio" / f"{name}.flac", dtype="float32")
    assert rate == RATE
    return waveform


@pytest.fixture(scope="module")
def speech(corpus_dir):
    return _read(corpus_dir, "flite_slt_0000")


# --- WER / CER ---------------------------------------------------------------------------------
def test_normalization_makes_formatting_irrelevant():
    assert normalize_text("Hello, Mr. Smith! It's twenty-five.") == normalize_text("hello mister smith it is 25")
    assert word_error_rate("hello mister smith, it is 25", "Hello, Mr. Smith! It's twenty-five.") == 0.0


def test_wer_and_cer_known_values():
    # one deletion out of six reference words
    assert word_error_rate("the cat sat on mat", "the cat sat on the mat") == pytest.approx(1 / 6)
    # corpus level: (1 substitution + 1 insertion) / (3 + 2) reference words
    assert word_error_rate(["a b x", "c d e"], ["a b c", "c d"]) == pytest.approx(2 / 5)
    assert character_error_rate("abd", "abc", normalize=False) == pytest.approx(1 / 3)
    assert character_error_rate("Hello!", "hello") == 0.0


def test_wer_rejects_bad_input():
    with pytest.raises(ValueError, match="empty after normalisation"):
        word_error_rate("hello", "uh, hmm!")
    with pytest.raises(ValueError, match="hypotheses"):
        word_error_rate(["a", "b"], ["a"])


def test_default_asr_transcribes_a_clean_corpus_utterance(corpus_dir, speech):
    # Whisper tiny.en: corpus-level WER 0.071 on 32 utterances (2 per corpus voice, 11 with errors);
    # this flite utterance comes out word-perfect after normalisation.
    text = "In the meantime, Fielding tells me, Mother Nature looks on and taps her foot and clicks her tongue."
    assert word_error_rate(transcribe(speech, RATE), text) <= 0.1
    assert word_error_rate(transcribe(corpus_dir / "audio" / "kok_alpha_0003.flac"),
                           "If parents would only realize how they bore their children.") <= 0.2


@pytest.mark.slow
def test_default_asr_hears_the_same_words_whatever_the_thread_environment(corpus_dir, tmp_path):
    """A corpus sentence in white noise at 5 dB, which Whisper heard differently on 1 and 4 CTranslate2 threads before
    the ASR was pinned to one: the transcript must not depend on OMP_NUM_THREADS."""
    import os
    import subprocess
    import sys

    clean, rate = sf.read(corpus_dir / "audio" / "flite_slt_0021.flac", dtype="float32")
    noise = np.random.default_rng(5).standard_normal(clean.shape).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10**0.5), rate)
    script = f"from ns2_hf.metrics import transcribe; print(transcribe({str(tmp_path / 'noisy.wav')!r}))"
    heard = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": threads}).stdout for threads in ("1", "4")]
    assert heard[0].strip() and heard[0] == heard[1]


# --- spectral and reconstruction --------------------------------------------------------------
def test_spectral_distortion_is_zero_on_itself_and_grows_with_noise(speech):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(speech)).astype(np.float32)
    same = spectral_distortion(speech, speech, RATE)
    assert same == {"mcd": pytest.approx(0.0, abs=1e-6), "f0_rmse_cents": pytest.approx(0.0, abs=1e-6), "vuv_error": 0.0}
    mcds = [spectral_distortion(speech + level * noise, speech, RATE, align="none")["mcd"] for level in (0.001, 0.01, 0.1)]
    assert 0 < mcds[0] < mcds[1] < mcds[2]
    # DTW finds the alignment of a delayed copy: far below the unaligned distortion
    delayed = np.concatenate([np.zeros(1600, np.float32), speech])
    assert spectral_distortion(delayed, speech, RATE)["mcd"] < 0.5 * spectral_distortion(delayed, speech, RATE, align="none")["mcd"]


def test_mel_distance_zero_on_itself_and_monotonic(speech):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(speech)).astype(np.float32)
    assert multi_resolution_mel_distance(speech, speech, RATE) == pytest.approx(0.0, abs=1e-6)
    distances = [multi_resolution_mel_distance(speech + level * noise, speech, RATE) for level in (0.001, 0.01, 0.1)]
    assert 0 < distances[0] < distances[1] < distances[2]


def test_si_snr_of_known_scaled_noise(speech):
    rng = np.random.default_rng(0)
    reference = speech - speech.mean()
    noise = rng.standard_normal(len(speech))
    noise -= noise.mean()
    noise -= np.dot(noise, reference) / np.dot(reference, reference) * reference  # orthogonal to the speech
    noise *= np.linalg.norm(reference) / np.linalg.norm(noise) / 10 ** (10 / 20)  # 10 dB below it
    estimate = (reference + noise).astype(np.float32)
    assert si_snr(estimate, reference, RATE) == pytest.approx(10.0, abs=0.01)
    assert si_snr(3.0 * estimate, reference, RATE) == pytest.approx(10.0, abs=0.01)  # scale-invariant
    assert si_snr(reference, reference, RATE) > 100


def test_pesq_and_stoi_near_max_for_identical_signals(speech):
    assert pesq_wideband(speech, speech, RATE) > 4.5
    assert stoi(speech, speech, RATE) > 0.99
    noisy = speech + 0.05 * np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32)
    assert pesq_wideband(noisy, speech, RATE) < 3.0
    assert stoi(noisy, speech, RATE) < stoi(speech, speech, RATE)


def test_dnsmos_prefers_clean_speech(speech):
    clean = dnsmos(speech, RATE)
    noisy = dnsmos(speech + 0.05 * np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32), RATE)
    assert set(clean) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert all(1.0 <= value <= 5.0 for value in clean.values())
    assert clean["dnsmos_bak"] > noisy["dnsmos_bak"] + 0.5
    with pytest.raises(AudioInputError, match="silent"):
        dnsmos(np.zeros(RATE, np.float32), RATE)


# --- speaker similarity -----------------------------------------------------------------------
def test_speaker_similarity_separates_voices(corpus_dir, speech):
    assert speaker_similarity(speech, speech, RATE) == pytest.approx(1.0, abs=1e-5)
    same_voice = speaker_similarity(speech, _read(corpus_dir, "flite_slt_0001"), RATE)
    other_voice = speaker_similarity(speech, _read(corpus_dir, "fes_kal_0000"), RATE)
    assert same_voice > other_voice + 0.2


def test_transformers_xvector_encoder_by_path(tmp_path, speech):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, conv_dim=(8, 8), conv_stride=(5, 4),
        conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, tdnn_dim=(16, 16),
        tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=12,
    )
    WavLMForXVector(config).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=RATE).save_pretrained(tmp_path)
    embedding = speaker_embedding(speech, RATE, speaker_encoder=str(tmp_path))
    assert embedding.shape == (12,) and np.linalg.norm(embedding) == pytest.approx(1.0)
    assert speaker_similarity(speech, speech, RATE, speaker_encoder=str(tmp_path)) == pytest.approx(1.0, abs=1e-5)


# --- prosody ----------------------------------------------------------------------------------
def test_moments_of_known_distributions():
    rng = np.random.default_rng(0)
    gaussian = moments(3.0 + 2.0 * rng.standard_normal(200_000))
    assert gaussian["mean"] == pytest.approx(3.0, abs=0.02) and gaussian["std"] == pytest.approx(2.0, abs=0.02)
    assert gaussian["skewness"] == pytest.approx(0.0, abs=0.03)
    assert gaussian["kurtosis"] == pytest.approx(0.0, abs=0.05)  # excess kurtosis: Gaussian = 0
    exponential = moments(rng.exponential(size=200_000))
    assert exponential["skewness"] == pytest.approx(2.0, abs=0.1) and exponential["kurtosis"] == pytest.approx(6.0, abs=0.5)
    with pytest.raises(ValueError, match="at least 2"):
        moments([1.0])


def test_pitch_statistics_of_a_two_tone_contour():
    # half the frames at 150 Hz, half at 250 Hz: mean 200, std 50, skewness 0, excess kurtosis -2
    time = np.arange(RATE) / RATE
    tone = np.concatenate([np.sin(2 * np.pi * 150 * time), np.sin(2 * np.pi * 250 * time)])
    tone = (0.5 * (tone + 0.3 * np.sign(tone))).astype(np.float32)  # add harmonics, as in speech
    stats = pitch_statistics(tone, RATE)
    assert stats["pitch_mean"] == pytest.approx(200.0, abs=3.0)
    assert stats["pitch_std"] == pytest.approx(50.0, abs=3.0)
    assert stats["pitch_skewness"] == pytest.approx(0.0, abs=0.1)
    assert stats["pitch_kurtosis"] == pytest.approx(-2.0, abs=0.15)


def test_sequence_agreement_aligns_lengths_and_masks():
    contour = np.sin(np.linspace(0, 6, 100))
    assert sequence_agreement(contour, contour) == {"pearson": pytest.approx(1.0), "rmse": pytest.approx(0.0)}
    stretched = np.interp(np.linspace(0, 99, 230), np.arange(100), contour)
    agreement = sequence_agreement(stretched, contour)
    assert agreement["pearson"] > 0.999 and agreement["rmse"] < 0.01
    corrupted = contour.copy()
    corrupted[:10] = 50.0
    mask = np.arange(100) >= 10
    assert sequence_agreement(corrupted, contour, mask=mask)["rmse"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same phone sequence"):
        duration_agreement([1, 2, 3], [1, 2])


def test_pitch_kept_tells_a_resynthesis_a_fifth_off_or_half_unvoiced_from_one_that_keeps_the_pitch():
    voice = _voice(120.0)
    assert pitch_kept(voice, voice, RATE) == {"f0_ratio": pytest.approx(1.0), "f0_kept": 1.0, "voiced_ratio": pytest.approx(1.0)}
    near = pitch_kept(_voice(126.0, seed=1), voice, RATE)  # 5 % higher: within the 10 % tolerance
    assert near["f0_ratio"] == pytest.approx(1.05, abs=0.02) and near["f0_kept"] == 1.0
    fifth = pitch_kept(_voice(180.0, seed=2), voice, RATE)
    assert fifth["f0_ratio"] == pytest.approx(1.5, abs=0.04) and fifth["f0_kept"] == 0.0
    noise = 0.05 * np.random.default_rng(3).standard_normal(voice.size).astype(np.float32)
    half_voiced = np.concatenate([noise[: voice.size // 2], voice[voice.size // 2 :]])
    assert pitch_kept(half_voiced, voice, RATE)["voiced_ratio"] == pytest.approx(0.5, abs=0.08)
    with pytest.raises(ValueError, match="voiced frames"):
        pitch_kept(noise, voice, RATE)


# --- frame-rate buzz ---------------------------------------------------------------------------
def _voice(f0_hz, seconds=2.0, vibrato=0.04, seed=0):
    """A harmonic voice whose f0 wanders around `f0_hz` (±`vibrato`, 5 Hz) like a real one, `(samples,)`."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = f0_hz * (1 + vibrato * np.sin(2 * np.pi * 5 * t) + 0.01 * np.cumsum(rng.standard_normal(t.size)) / np.sqrt(t.size))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.1 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def _imprint(waveform, hop=200, strength=0.3):
    """Add a decoder-like imprint: the same short click every `hop` samples, scaled by the local loudness."""
    click = np.zeros(hop, np.float32)
    click[:6] = [1.0, -0.8, 0.5, -0.3, 0.15, -0.05]
    n = waveform.size // hop
    loudness = np.sqrt(np.mean(waveform[: n * hop].reshape(n, hop) ** 2, axis=1, keepdims=True))
    out = waveform.copy()
    out[: n * hop] += (strength * 4 * loudness * click[None, :]).reshape(-1)
    return out


def test_grid_lock_separates_an_imprinted_frame_grid_from_a_voice_at_the_frame_rate():
    for f0 in (80.0, 130.0, 210.0):  # 80 Hz: a low voice sitting on the frame rate, but not locked to the grid
        clean = frame_rate_buzz(_voice(f0), RATE, frame_rate=80.0)
        buzzy = frame_rate_buzz(_imprint(_voice(f0)), RATE, frame_rate=80.0)
        assert clean["grid_lock"] < 1.5, f0
        assert buzzy["grid_lock"] > 3.0, f0
    # the f0 share sees the 80 Hz voice as buzz (its limitation, hence grid_lock) but not the others
    assert frame_rate_buzz(_voice(80.0), RATE, 80.0)["buzz_share"] > 0.3
    assert frame_rate_buzz(_voice(130.0), RATE, 80.0)["buzz_share"] == 0.0


def test_grid_lock_of_real_speech_is_near_one(speech):
    measured = frame_rate_buzz(speech, RATE, frame_rate=80.0)
    assert 0.7 < measured["grid_lock"] < 1.3 and measured["buzz_share"] < 0.05 and measured["voiced_frames"] > 50
    with pytest.raises(ValueError, match="no voiced frame"):
        frame_rate_buzz(0.01 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32), RATE, 80.0)
    with pytest.raises(ValueError):
        frame_rate_buzz(speech, RATE, frame_rate=0.0)


# --- evaluate modules -------------------------------------------------------------------------
def test_evaluate_modules_load_offline(speech):
    modules = {name: evaluate.load(metric_path(name)) for name in METRIC_NAMES}
    assert modules["wer"].compute(predictions=["hello world", "a b"], references=["Hello, world!", "a c"]) == {
        "wer": pytest.approx(0.25),
        "cer": pytest.approx(1 / 14),
    }
    short = speech[: RATE * 2]
    assert modules["mcd"].compute(predictions=[short], references=[short], sampling_rate=RATE)["mcd"] == pytest.approx(0.0, abs=1e-6)
    quality = modules["codec_quality"].compute(predictions=[short], references=[short], sampling_rate=RATE)
    assert quality["mel_distance"] == pytest.approx(0.0, abs=1e-6) and quality["pesq"] > 4.5
    prosody = modules["prosody"].compute(predictions=[short], references=[short], sampling_rate=RATE, reference="ground_truth")
    assert prosody["pitch_mean_diff"] == 0.0 and prosody["pitch_pearson"] == pytest.approx(1.0)
    buzz = modules["buzz"].compute(predictions=[short], sampling_rate=RATE, frame_rate=80.0)
    assert set(buzz) == {"buzz_share", "grid_lock"} and buzz["grid_lock"] < 1.5
    with pytest.raises(ValueError, match="unknown metric"):
        metric_path("bleu")


def test_evaluation_reports_the_outputs_mean_f0_against_the_prompts(speech):
    import librosa

    four_semitones_up = librosa.effects.pitch_shift(speech, sr=RATE, n_steps=4)
    rows = evaluate_items([EvaluationItem(id="shifted", prompt=speech, audio=four_semitones_up, ground_truth=speech)],
                          RATE, metrics=["prosody"])
    model, ground_truth = (next(row for row in rows if row["system"] == system) for system in ("model", "ground_truth"))
    prompt_mean = pitch_statistics(speech, RATE)["pitch_mean"]
    assert model["f0_prompt_ratio"] == pytest.approx(2 ** (4 / 12), rel=0.04)
    assert model["f0_prompt_diff_hz"] == pytest.approx((model["f0_prompt_ratio"] - 1) * prompt_mean, rel=1e-6)
    assert ground_truth["f0_prompt_ratio"] == pytest.approx(1.0) and ground_truth["f0_prompt_diff_hz"] == pytest.approx(0.0)
    assert model["f0_prompt_median_ratio"] == pytest.approx(2 ** (4 / 12), rel=0.04)


def test_median_f0_ratio_ignores_octave_jumps_that_move_the_mean(speech):
    """A prompt whose pitch track is an octave up on a fifth of its frames (as Praat's is on some 8 kHz
    recordings) moves its mean f0, not its median: the output, the same voice, stays at median ratio 1."""
    import librosa

    octave_up = librosa.effects.pitch_shift(speech[: len(speech) // 4], sr=RATE, n_steps=12)
    prompt = np.concatenate([speech, octave_up])
    row = next(row for row in evaluate_items([EvaluationItem(id="jumps", prompt=prompt, audio=speech)], RATE,
                                             metrics=["prosody"]) if row["system"] == "model")
    assert row["f0_prompt_ratio"] < 0.85
    assert row["f0_prompt_median_ratio"] == pytest.approx(1.0, rel=0.05)
