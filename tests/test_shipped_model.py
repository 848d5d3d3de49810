"""The model that ships with the repository (pretrained/ns2-tiny-en) loads offline and keeps its
measured quality: a regression anywhere in the stack (text front end, model, scheduler, codec,
pipeline) moves these numbers.

The bounds come from `training/evaluate_tts.py` on the held-out utterances (see model_card.md),
with a margin; they are properties of the shipped weights, not of speech synthesis in general.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ns2_hf import NS2Pipeline
from ns2_hf.audio import load_audio
from ns2_hf.codec import resynthesize
from ns2_hf.metrics import frame_rate_buzz, speaker_similarity, transcribe, word_error_rate

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = REPO_ROOT / "pretrained" / "ns2-tiny-en"
# Three held-out test sentences (model_card.md): the best, the median and a weak item of the evaluation,
# each with its prompt (another recording of the speaker) and a different speaker's recording.
ITEMS = [  # (text, prompt, other speaker)
    ("Today it is drastically different, because of the social milieu.", "fes_kal_0005", "kok_alpha_0065"),
    ("In person, they are like enormous hooved rats.", "flite_slt_0040", "kok_mix3_0026"),
    ("We learn from history that we do not learn from history.", "kok_mix5_0012", "kok_mix3_0016"),  # unseen speaker
]
STEPS = 50
# measured with these items, 50 steps, seed 0, the release's phone floor (min_phone_frames 6): WER 0.14 over the
# three (0.10, 0.375, 0.0); SIM to the prompt 0.815 vs 0.645 to a different speaker (means); with the release's best
# of three candidates (num_candidates 3) the same words, SIM 0.817 vs 0.651; chosen on 10-step drafts (candidate_steps
# 10, the release) WER 0.07 (0.10, 0.125, 0.0), SIM 0.819 vs 0.648; without the floor
# WER 0.21 (0.40, 0.25, 0.0). Bounds with a margin; a random-weight pipeline scores WER >= 1 and the model before
# the longer training (WER 0.72 on the test list) scored 0.60 on the first item alone.
MAX_WER = 0.3
MIN_SIM_MARGIN = 0.1


# Two real recordings the project never trained on (examples/README.md). Measured with the shipped Fourier decoder
# (codec_cpu_fourier_decoder.yaml to its 8,000 steps): buzz share 0.114 / 0.136, grid lock 3.10 / 3.11 (the
# recordings: 0.045 / 0.080 and 1.07 / 1.08); the same decoder at 3,767 steps: 0.196 / 0.164 and 3.89 / 3.76; the
# transposed-convolution decoder before it: 0.485 / 0.665 and 6.54 / 7.03. The bounds fail both earlier decoders.
REAL_RECORDINGS = [REPO_ROOT / "examples" / "real" / f"librivox_austen_{n}.wav" for n in ("0920", "0930")]
MAX_BUZZ_SHARE = 0.17
MAX_GRID_LOCK = 3.6
# The same two recordings decoded with the harmonic phase at their own pitch (Praat at the codec hop; below
# harmonic_phase_max_hz = 2 kHz): buzz share 0.061 / 0.037, grid lock 1.51 / 1.73, median f0 0.99 / 1.00 of the
# recording's (the decoder's own phases: 0.114 / 0.136, 3.10 / 3.11, 1.24 / 1.02). And the shipped model speaking
# the three ITEMS texts with each recording as the prompt (50 steps, seed 0): grid lock 1.38–1.92 (mean 1.56) with
# the harmonic phase (the pipeline's default), 2.10–2.61 (mean 2.34) without; output median f0 0.90–1.00 of the
# prompt's.
MAX_HARMONIC_GRID_LOCK = 2.0
MAX_HARMONIC_BUZZ_SHARE = 0.1
MAX_MODEL_GRID_LOCK = 1.9


@pytest.fixture(scope="module")
def pipeline():
    assert (SHIPPED / "model_index.json").is_file(), f"the shipped model is missing at {SHIPPED}"
    pipe = NS2Pipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.slow
def test_shipped_model_speaks_in_the_prompt_voice(pipeline, corpus_dir):
    transcripts, same, different = [], [], []
    for text, prompt_id, other_id in ITEMS:
        prompt, other_speaker = (str(corpus_dir / "audio" / f"{name}.flac") for name in (prompt_id, other_id))
        output = pipeline(text, prompt_audio=prompt, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))
        audio, rate = output.audios[0], output.sampling_rate
        assert np.all(np.isfinite(audio)) and 1.0 < len(audio) / rate < 15.0
        transcripts.append(transcribe(audio, rate))
        same.append(speaker_similarity(audio, load_audio(prompt, target_sampling_rate=rate), rate))
        different.append(speaker_similarity(audio, load_audio(other_speaker, target_sampling_rate=rate), rate))

    wer = word_error_rate(transcripts, [text for text, _, _ in ITEMS])
    assert wer <= MAX_WER, f"WER {wer:.3f} > {MAX_WER}: {transcripts}"
    assert np.mean(same) > np.mean(different) + MIN_SIM_MARGIN, f"SIM to prompt {same} vs a different speaker {different}"


def test_shipped_codec_does_not_bring_its_frame_rate_buzz_back(pipeline):
    rate = pipeline.sampling_rate
    frame_rate = rate / pipeline.hop_length
    shares, locks = [], []
    for path in REAL_RECORDINGS:
        audio = load_audio(str(path), target_sampling_rate=rate)
        resynthesis = resynthesize(pipeline.codec, audio)
        measured = frame_rate_buzz(resynthesis, rate, frame_rate)
        shares.append(measured["buzz_share"])
        locks.append(measured["grid_lock"])
    assert np.mean(shares) < MAX_BUZZ_SHARE, f"buzz share {shares}"
    assert np.mean(locks) < MAX_GRID_LOCK, f"grid lock {locks}"


def test_shipped_model_loads_by_short_name_and_is_small(pipeline):
    assert NS2Pipeline.from_pretrained("ns2-tiny-en").model.config.to_dict() == pipeline.model.config.to_dict()
    total_bytes = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert total_bytes < 50 * 1024 * 1024
    assert list(SHIPPED.rglob("*.safetensors")) and not list(SHIPPED.rglob("*.bin"))


def test_harmonic_phase_removes_the_frame_grid_and_keeps_the_pitch_of_real_recordings(pipeline):
    from ns2_hf.metrics import pitch_kept

    rate = pipeline.sampling_rate
    for path in REAL_RECORDINGS:
        audio = load_audio(str(path), target_sampling_rate=rate)
        decoded = resynthesize(pipeline.codec, audio, harmonic_phase=True)
        measured = frame_rate_buzz(decoded, rate, rate / pipeline.hop_length)
        assert measured["grid_lock"] < MAX_HARMONIC_GRID_LOCK and measured["buzz_share"] < MAX_HARMONIC_BUZZ_SHARE, measured
        assert pitch_kept(decoded, audio, rate)["f0_kept"], path


@pytest.mark.slow
def test_shipped_model_speaks_a_real_low_voice_without_the_frame_grid(pipeline):
    from ns2_hf.metrics import pitch_contour

    rate = pipeline.sampling_rate
    locks = []
    for path in REAL_RECORDINGS:
        prompt_f0, prompt_voiced = pitch_contour(load_audio(str(path), target_sampling_rate=rate), rate)
        for text, _, _ in ITEMS:
            audio = pipeline(text, prompt_audio=str(path), num_inference_steps=STEPS,
                             generator=torch.Generator().manual_seed(0)).audios[0]
            locks.append(frame_rate_buzz(audio, rate, rate / pipeline.hop_length)["grid_lock"])
            f0, voiced = pitch_contour(audio, rate)
            ratio = np.median(f0[voiced]) / np.median(prompt_f0[prompt_voiced])
            assert 0.8 < ratio < 1.2, f"{path.name}: output f0 {ratio:.2f} x the prompt's"
    assert np.mean(locks) < MAX_MODEL_GRID_LOCK, f"grid lock {locks}"


# The shipped model with the two real recordings as prompts, ITEMS' first text, 50 steps, seed 0: similarity to the
# prompt 0.611 -> 0.645 and 0.542 -> 0.618 with spectrum_matching=1, the mean distance between the output's and the
# prompt's long-term spectra (24 bands) 3.76 -> 1.19 and 4.30 -> 1.36 dB (ITEMS' second text: 0.595 -> 0.620,
# 0.496 -> 0.585; 3.69 -> 1.28, 4.78 -> 1.78). Measured on one sample (num_candidates=1): the equaliser is under test,
# not which of the release's three candidates the aligner keeps (with those, the first prompt's gain was 0.001).
MIN_SPECTRUM_SIM_GAIN = 0.01
MIN_SPECTRUM_MEAN_SIM_GAIN = 0.03
MAX_MATCHED_SPECTRUM_DISTANCE_DB = 2.0


@pytest.mark.slow
def test_spectrum_matching_brings_the_output_nearer_a_real_prompt(pipeline):
    """`spectrum_matching=1` moves the output's long-term spectrum onto a real recording's (the LibriVox reader's
    brighter 2.5-5 kHz) and makes it sound more like the reader to the speaker encoder, on each prompt."""
    from ns2_hf.audio.spectrum import long_term_spectrum

    rate = pipeline.sampling_rate
    gains = []
    for path in REAL_RECORDINGS:
        prompt = load_audio(str(path), target_sampling_rate=rate)
        target = long_term_spectrum(torch.from_numpy(prompt), rate)
        similarity, distance = [], []
        for strength in (0.0, 1.0):
            audio = pipeline(ITEMS[0][0], prompt_audio=prompt, prompt_sampling_rate=rate, num_inference_steps=STEPS,
                             generator=torch.Generator().manual_seed(0), spectrum_matching=strength, num_candidates=1).audios[0]
            similarity.append(speaker_similarity(audio, prompt, rate))
            distance.append(float((long_term_spectrum(torch.from_numpy(audio), rate) - target).abs().mean()))
        assert distance[1] < MAX_MATCHED_SPECTRUM_DISTANCE_DB < distance[0], f"{path.name}: LTAS distance {distance}"
        assert similarity[1] > similarity[0] + MIN_SPECTRUM_SIM_GAIN, f"{path.name}: SIM {similarity}"
        gains.append(similarity[1] - similarity[0])
    assert np.mean(gains) > MIN_SPECTRUM_MEAN_SIM_GAIN, f"SIM gains {gains}"


def test_the_release_bounds_the_distance_between_the_output_register_and_the_prompts(pipeline, corpus_dir, monkeypatch):
    """The release's `pitch_register_tolerance` (model config): the pitch predictor learnt 15 voices and can put a
    voice outside them far from its register (a prompt an octave above its speaker, librosa: 0.48 × its register; a
    low voice seven semitones up: 1.75 ×). The release moves such a contour onto the edge of the bound, its shape
    kept; a prompt inside the bound is spoken exactly as without it."""
    import librosa

    tolerance = pipeline.model.config.pitch_register_tolerance
    assert tolerance == pytest.approx(0.1)
    rate = pipeline.sampling_rate
    contours = []
    decode = type(pipeline).decode_latents
    monkeypatch.setattr(type(pipeline), "decode_latents", lambda self, latents, frame_mask, f0=None, voiced=None:
                        contours.append((f0, voiced)) or decode(self, latents, frame_mask, f0, voiced))

    def register(voice, **kwargs):
        """The spoken contour's voiced log-mean minus the voice's, and the audio."""
        audio = pipeline(ITEMS[2][0], voice=voice, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                         **kwargs).audios[0]
        f0, voiced = contours.pop()
        return f0[0][voiced[0]].log().mean().item() - voice.log_f0_mean, audio

    for prompt_id, semitones in (("kok_mix5_0012", 12), ("fes_kal_0005", 7)):
        prompt = load_audio(str(corpus_dir / "audio" / f"{prompt_id}.flac"), target_sampling_rate=rate)
        voice = pipeline.encode_voice(librosa.effects.pitch_shift(prompt, sr=rate, n_steps=semitones), rate)
        free, _ = register(voice, pitch_register_tolerance=math.inf)
        released, _ = register(voice)
        assert abs(free) > math.log(1.4), f"{prompt_id} +{semitones}: the predictor's own register is {math.exp(free):.2f} x"
        assert abs(released) < math.log1p(tolerance) + 0.05, f"{prompt_id} +{semitones}: {math.exp(released):.2f} x"
    inside = pipeline.encode_voice(str(corpus_dir / "audio" / "kok_mix5_0012.flac"))
    free, free_audio = register(inside, pitch_register_tolerance=math.inf)
    assert abs(free) < math.log1p(tolerance)
    assert np.array_equal(register(inside)[1], free_audio)
