"""NS2Pipeline end to end on tiny random-weight components."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2_hf.audio import AudioInputError
from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline
from ns2_hf.pipelines.arguments import GenerationArgumentError

STEPS = 4
EXAMPLE_PROMPT = Path(__file__).resolve().parents[1] / "examples" / "prompt.wav"


@pytest.fixture(scope="module")
def pipeline():
    pipe = build_untrained_pipeline("tiny", seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def prompt(corpus_dir):
    waveform, sampling_rate = sf.read(corpus_dir / "audio" / "flite_slt_0001.flac", dtype="float32")
    return waveform, sampling_rate


def run(pipe, text, prompt, seed=0, **kwargs):
    waveform, sampling_rate = prompt
    kwargs.setdefault("num_inference_steps", STEPS)
    return pipe(text, prompt_audio=waveform, prompt_sampling_rate=sampling_rate, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_end_to_end_audio_length_matches_durations(pipeline, prompt):
    output = run(pipeline, "The birch canoe slid on the smooth planks.", prompt)
    audio = output.audios[0]
    assert output.sampling_rate == pipeline.codec.config.sampling_rate
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.all(np.isfinite(audio))
    assert len(audio) == int(output.durations[0].sum()) * pipeline.hop_length
    assert output.durations[0].shape[0] == len(pipeline.tokenizer("The birch canoe slid on the smooth planks.")["input_ids"])


def test_same_seed_same_audio_and_other_seed_differs(pipeline, prompt):
    first = run(pipeline, "Hello world.", prompt, seed=3).audios[0]
    again = run(pipeline, "Hello world.", prompt, seed=3).audios[0]
    other = run(pipeline, "Hello world.", prompt, seed=4).audios[0]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_batch_equals_items_alone(pipeline, prompt):
    texts = ["A short one.", "This second sentence is quite a bit longer than the first."]
    waveform, sampling_rate = prompt
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    batch = pipeline(texts, prompt_audio=waveform, prompt_sampling_rate=sampling_rate, num_inference_steps=STEPS, generator=generators)
    for index, text in enumerate(texts):
        alone = run(pipeline, text, prompt, seed=11 + index)
        assert len(batch.audios[index]) == len(alone.audios[0])
        np.testing.assert_allclose(batch.audios[index], alone.audios[0], atol=1e-4)


def test_save_and_reload_gives_identical_audio(pipeline, prompt, tmp_path):
    pipeline.save_pretrained(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "pipe" / "codec" / "model.safetensors").is_file()
    assert not list((tmp_path / "pipe").rglob("*.bin"))
    reloaded = NS2Pipeline.from_pretrained(tmp_path / "pipe")
    reloaded.set_progress_bar_config(disable=True)
    expected = run(pipeline, "Save me and load me.", prompt).audios[0]
    np.testing.assert_array_equal(run(reloaded, "Save me and load me.", prompt).audios[0], expected)


def test_loads_a_hub_repo_id_from_an_offline_cache(pipeline, prompt, tmp_path, monkeypatch):
    """A folder laid out as the Hub cache lays out a downloaded repo, loaded by repo id with no network."""
    snapshot = tmp_path / "hub" / "models--someone--ns2-tiny" / "snapshots" / ("0" * 40)
    pipeline.save_pretrained(snapshot)
    refs = tmp_path / "hub" / "models--someone--ns2-tiny" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reloaded = NS2Pipeline.from_pretrained("someone/ns2-tiny", cache_dir=tmp_path / "hub", local_files_only=True)
    reloaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(reloaded, "From the hub.", prompt).audios[0], run(pipeline, "From the hub.", prompt).audios[0])


def test_given_durations_are_honoured_and_pitch_overrides(pipeline, prompt):
    num_phonemes = len(pipeline.tokenizer("Good morning.")["input_ids"])
    durations = [list(range(1, num_phonemes + 1))]
    output = run(pipeline, "Good morning.", prompt, durations=durations)
    assert output.durations[0].tolist() == durations[0]
    total_frames = sum(durations[0])
    assert len(output.audios[0]) == total_frames * pipeline.hop_length

    flat = run(pipeline, "Good morning.", prompt, durations=durations, pitch=[np.full(total_frames, 120.0)])
    high = run(pipeline, "Good morning.", prompt, durations=durations, pitch=[np.full(total_frames, 240.0)])
    assert not np.allclose(flat.audios[0], high.audios[0])
    with pytest.raises(ValueError, match="pitch"):
        run(pipeline, "Good morning.", prompt, durations=durations, pitch=[np.full(total_frames + 1, 120.0)])
    with pytest.raises(ValueError, match="durations"):
        run(pipeline, "Good morning.", prompt, durations=[[1, 2]])


@pytest.fixture(scope="module")
def fourier_pipeline(pipeline):
    """The tiny pipeline with a Fourier decoder on its codec's encoder and codebooks (the same latent space)."""
    import copy

    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

    pipe = copy.deepcopy(pipeline)
    codec = NS2CodecModel(NS2CodecConfig(**{**pipeline.codec.config.to_dict(), "decoder_type": "fourier",
                                            "decoder_hidden_size": 32, "fourier_intermediate_size": 64})).eval()
    codec.encoder.load_state_dict(pipeline.codec.encoder.state_dict())
    codec.quantizer.load_state_dict(pipeline.codec.quantizer.state_dict())
    pipe.register_modules(codec=codec)
    return pipe


def test_harmonic_phase_follows_the_frame_pitch_on_voiced_phonemes(pipeline, fourier_pipeline, prompt):
    """With a Fourier decoder the voiced phonemes' frames take a harmonic phase at the frame pitch (on by default):
    even random weights then speak at the pitch asked for (here 100 and 125 Hz; above ~130 Hz the untrained
    decoder's random frame-to-frame magnitudes, an 80 Hz modulation, pull Praat to a subharmonic). Voicing comes
    from the phonemes: /s/ frames keep the decoder's own phases. A convolutional codec has no harmonic phase."""
    from ns2_hf.audio.pitch import extract_pitch

    text = "We are all one."  # voiced phones only
    num_phonemes = len(fourier_pipeline.tokenizer(text)["input_ids"])
    durations = [[12] * num_phonemes]
    for f0_hz in (100.0, 125.0):
        pitch = [np.full(12 * num_phonemes, f0_hz)]
        harmonic = run(fourier_pipeline, text, prompt, durations=durations, pitch=pitch).audios[0]
        log_f0, voiced = extract_pitch(harmonic, fourier_pipeline.sampling_rate, fourier_pipeline.hop_length)
        assert voiced.mean() > 0.6 and np.median(np.exp(log_f0[voiced])) == pytest.approx(f0_hz, rel=0.03)
    plain = run(fourier_pipeline, text, prompt, durations=durations, pitch=pitch, harmonic_phase=False).audios[0]
    assert not np.allclose(plain, harmonic)

    phoneme_ids, _ = fourier_pipeline.encode_text(["sass"])  # /s æ s/ (+ punctuation-free: 3 phonemes)
    phones = fourier_pipeline.tokenizer.convert_ids_to_tokens(phoneme_ids[0].tolist())
    durations = torch.full_like(phoneme_ids, 3)
    f0, frame_voiced = fourier_pipeline.harmonic_phase_contour(torch.zeros(1, 3 * len(phones)), phoneme_ids, durations)
    expected = [phone.lstrip("ˈˌ") not in ("s",) for phone in phones for _ in range(3)]
    assert frame_voiced[0].tolist() == expected and any(expected) and not all(expected)
    assert torch.equal(f0, torch.ones_like(f0))  # exp(log f0)
    assert fourier_pipeline.uses_harmonic_phase(None) and not fourier_pipeline.uses_harmonic_phase(False)
    assert not pipeline.uses_harmonic_phase(None) and not pipeline.uses_harmonic_phase(False)
    with pytest.raises(GenerationArgumentError, match="Fourier decoder"):
        run(pipeline, text, prompt, harmonic_phase=True)


def test_match_prompt_pitch_puts_the_predicted_contour_in_the_prompts_register(fourier_pipeline, prompt, monkeypatch):
    """`match_prompt_pitch=True`: each item's contour is shifted so that its mean is its voice's voiced mean
    log-f0 (shape kept, padding zero, a voice without pitch statistics untouched), and that contour is what the
    denoiser and the codec's harmonic phase get."""
    import dataclasses

    voice = fourier_pipeline.encode_voice(*prompt)
    low, high = (dataclasses.replace(voice, log_f0_mean=math.log(hz)) for hz in (100.0, 125.0))
    unmeasured = dataclasses.replace(voice, log_f0_mean=None, log_f0_std=None)
    log_f0 = torch.log(torch.tensor([[150.0, 160.0, 170.0, 1.0], [150.0, 160.0, 170.0, 180.0], [150.0, 160.0, 170.0, 180.0]]))
    mask = torch.tensor([[True, True, True, False], [True] * 4, [True] * 4])
    matched = fourier_pipeline.match_prompt_pitch(log_f0, mask, [low, high, unmeasured])
    assert matched[0, :3].mean() == pytest.approx(math.log(100.0), abs=1e-5) and matched[0, 3] == 0
    assert matched[1].mean() == pytest.approx(math.log(125.0), abs=1e-5)
    assert torch.allclose(matched[:2, 1:3] - matched[:2, :2], log_f0[:2, 1:3] - log_f0[:2, :2])  # same shape
    assert torch.equal(matched[2], log_f0[2])

    given = []
    decode = type(fourier_pipeline).decode_latents
    monkeypatch.setattr(type(fourier_pipeline), "decode_latents",
                        lambda self, latents, frame_mask, f0=None, voiced=None: given.append(f0) or decode(self, latents, frame_mask, f0, voiced))
    for matching in (True, False):
        fourier_pipeline("We are all one.", voice=low, num_inference_steps=STEPS, match_prompt_pitch=matching,
                         generator=torch.Generator().manual_seed(0))
    assert given[0].log().mean() == pytest.approx(math.log(100.0), abs=1e-4)
    assert given[1].log().mean() != pytest.approx(math.log(100.0), abs=1e-2)  # the untrained predictor's own


def test_pitch_register_tolerance_moves_the_contour_only_as_far_as_needed(fourier_pipeline, prompt, monkeypatch):
    """`pitch_register_tolerance=x`: a contour whose mean f0 lies beyond ×(1 + x) or ÷(1 + x) of the prompt's is
    shifted onto that edge (its shape kept), one inside is left as predicted; 0 is `match_prompt_pitch`, inf never
    moves it; the model config's value is the default, and a bad value is refused by name."""
    import dataclasses

    voice = dataclasses.replace(fourier_pipeline.encode_voice(*prompt), log_f0_mean=math.log(100.0))
    log_f0 = torch.log(torch.tensor([[150.0, 160.0, 170.0], [60.0, 64.0, 68.0], [95.0, 100.0, 105.0]]))
    mask = torch.ones(3, 3, dtype=torch.bool)
    voices = [voice] * 3
    moved = fourier_pipeline.match_prompt_pitch(log_f0, mask, voices, tolerance=0.1)
    assert moved[0].mean() == pytest.approx(math.log(110.0), abs=1e-5)  # too high: down to the upper edge
    assert moved[1].mean() == pytest.approx(math.log(100.0 / 1.1), abs=1e-5)  # too low: up to the lower edge
    assert torch.equal(moved[2], log_f0[2])  # inside: untouched
    assert torch.allclose(moved[:, 1:] - moved[:, :-1], log_f0[:, 1:] - log_f0[:, :-1])
    assert torch.allclose(fourier_pipeline.match_prompt_pitch(log_f0, mask, voices, tolerance=0.0),
                          fourier_pipeline.match_prompt_pitch(log_f0, mask, voices))
    assert torch.equal(fourier_pipeline.match_prompt_pitch(log_f0, mask, voices, tolerance=math.inf), log_f0)

    given = []
    decode = type(fourier_pipeline).decode_latents
    monkeypatch.setattr(type(fourier_pipeline), "decode_latents",
                        lambda self, latents, frame_mask, f0=None, voiced=None: given.append(f0) or decode(self, latents, frame_mask, f0, voiced))

    def register(**kwargs):
        fourier_pipeline("We are all one.", voice=voice, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), **kwargs)
        return given.pop().log().mean().item()

    free = register(pitch_register_tolerance=math.inf)
    assert abs(free - math.log(100.0)) > math.log(1.2)  # the untrained predictor's register is far from the prompt's
    assert abs(register(pitch_register_tolerance=0.1) - math.log(100.0)) == pytest.approx(math.log(1.1), abs=1e-4)
    monkeypatch.setattr(fourier_pipeline.model.config, "pitch_register_tolerance", 0.1)
    assert register() == pytest.approx(register(pitch_register_tolerance=0.1))
    assert register(pitch_register_tolerance=math.inf) == pytest.approx(free)
    assert register(match_prompt_pitch=True) == pytest.approx(math.log(100.0), abs=1e-4)
    for bad in (-0.1, math.nan, "0.1", True):
        with pytest.raises(GenerationArgumentError, match="pitch_register_tolerance"):
            fourier_pipeline("We are all one.", voice=voice, num_inference_steps=STEPS, pitch_register_tolerance=bad)


def test_prompt_guidance_mixes_the_conditional_and_null_prompt_predictions(pipeline, prompt, monkeypatch):
    """`prompt_guidance_scale=w`: ẑ₀(∅) + w·(ẑ₀(prompt) − ẑ₀(∅)). With durations and pitch given (so the predictors,
    which see the prompt, play no part), w = 0 leaves only the null prompt: two different voices give the same audio;
    w = 1 is the plain denoiser; a batch with guidance equals its items alone; a model trained without prompt
    dropout refuses it."""
    with pytest.raises(GenerationArgumentError, match="prompt dropout"):
        run(pipeline, "Guide me.", prompt, prompt_guidance_scale=2.0)
    monkeypatch.setattr(pipeline.model.config, "prompt_dropout", 0.2)
    with pytest.raises(GenerationArgumentError, match="prompt_guidance_scale"):
        run(pipeline, "Guide me.", prompt, prompt_guidance_scale=-1.0)
    num_phonemes = len(pipeline.tokenizer("Guide me.")["input_ids"])
    durations = [[3] * num_phonemes]
    pitch = [np.full(3 * num_phonemes, 150.0)]
    waveform, sampling_rate = prompt
    other_voice = (np.roll(waveform, 4000) * 0.5 + 0.01 * np.sin(np.arange(len(waveform)) * 0.3)).astype(np.float32), sampling_rate

    def audio(voice, scale, **kwargs):
        return run(pipeline, "Guide me.", voice, durations=durations, pitch=pitch, prompt_guidance_scale=scale, **kwargs).audios[0]

    np.testing.assert_allclose(audio(prompt, 0.0), audio(other_voice, 0.0), atol=1e-6)
    assert not np.allclose(audio(prompt, 1.0), audio(other_voice, 1.0), atol=1e-3)
    plain = run(pipeline, "Guide me.", prompt, durations=durations, pitch=pitch).audios[0]
    np.testing.assert_array_equal(audio(prompt, 1.0), plain)
    guided = audio(prompt, 3.0)
    assert not np.allclose(guided, plain, atol=1e-3)

    texts = ["Guide me.", "A longer sentence to guide as well."]
    generators = [torch.Generator().manual_seed(21), torch.Generator().manual_seed(22)]
    batch = pipeline(texts, prompt_audio=waveform, prompt_sampling_rate=sampling_rate, num_inference_steps=STEPS,
                     generator=generators, prompt_guidance_scale=2.5)
    for index, text in enumerate(texts):
        alone = run(pipeline, text, prompt, seed=21 + index, prompt_guidance_scale=2.5).audios[0]
        np.testing.assert_allclose(batch.audios[index], alone, atol=1e-4)


def test_content_guidance_mixes_the_conditional_and_null_content_predictions(pipeline, prompt, monkeypatch):
    """`content_guidance_scale=w`: ẑ₀(∅) + w·(ẑ₀(c) − ẑ₀(∅)), ∅ a zero frame condition. w = 0 leaves only the null
    content: two pitch contours give the same audio; w = 1 is the plain denoiser; with prompt guidance too, each step is
    ẑ₀ + Σ (w − 1)·(ẑ₀ − ẑ₀(∅)); a guided batch equals its items alone; a model trained without condition dropout
    refuses it."""
    with pytest.raises(GenerationArgumentError, match="condition dropout"):
        run(pipeline, "Guide me.", prompt, content_guidance_scale=2.0)
    monkeypatch.setattr(pipeline.model.config, "condition_dropout", 0.2)
    with pytest.raises(GenerationArgumentError, match="content_guidance_scale"):
        run(pipeline, "Guide me.", prompt, content_guidance_scale=11.0)
    num_phonemes = len(pipeline.tokenizer("Guide me.")["input_ids"])
    durations = [[3] * num_phonemes]

    def audio(f0, scale):
        return run(pipeline, "Guide me.", prompt, durations=durations, pitch=[np.full(3 * num_phonemes, f0)],
                   content_guidance_scale=scale).audios[0]

    np.testing.assert_allclose(audio(150.0, 0.0), audio(220.0, 0.0), atol=1e-6)
    assert not np.allclose(audio(150.0, 1.0), audio(220.0, 1.0), atol=1e-3)
    plain = run(pipeline, "Guide me.", prompt, durations=durations, pitch=[np.full(3 * num_phonemes, 150.0)]).audios[0]
    np.testing.assert_array_equal(audio(150.0, 1.0), plain)
    assert not np.allclose(audio(150.0, 3.0), plain, atol=1e-3)

    # one step's prediction with both guidances against the three denoiser calls made one by one
    model, generator = pipeline.model, torch.Generator().manual_seed(5)
    frames, prompt_frames = 17, 9
    inputs = (torch.randn(2, model.config.latent_dim, frames, generator=generator), torch.tensor([0.3, 0.7]),
              torch.randn(2, model.config.hidden_size, frames, generator=generator), torch.ones(2, frames, dtype=torch.bool),
              torch.randn(2, prompt_frames, model.config.hidden_size, generator=generator), torch.ones(2, prompt_frames, dtype=torch.bool))
    everything = torch.ones(2, dtype=torch.bool)
    with torch.no_grad():
        conditional = model.denoise(*inputs)
        null_prompt = model.denoise(*inputs, drop_prompt=everything)
        null_content = model.denoise(*inputs, drop_condition=everything)
        guided = pipeline.guided_denoise(*inputs, prompt_guidance_scale=2.0, content_guidance_scale=3.0)
        content_only = pipeline.guided_denoise(*inputs, prompt_guidance_scale=1.0, content_guidance_scale=3.0)
    torch.testing.assert_close(guided, conditional + 1.0 * (conditional - null_prompt) + 2.0 * (conditional - null_content))
    torch.testing.assert_close(content_only, null_content + 3.0 * (conditional - null_content))

    monkeypatch.setattr(pipeline.model.config, "prompt_dropout", 0.2)
    waveform, sampling_rate = prompt
    texts = ["Guide me.", "A longer sentence to guide as well."]
    generators = [torch.Generator().manual_seed(21), torch.Generator().manual_seed(22)]
    batch = pipeline(texts, prompt_audio=waveform, prompt_sampling_rate=sampling_rate, num_inference_steps=STEPS,
                     generator=generators, content_guidance_scale=2.5, prompt_guidance_scale=1.5)
    for index, text in enumerate(texts):
        alone = run(pipeline, text, prompt, seed=21 + index, content_guidance_scale=2.5, prompt_guidance_scale=1.5).audios[0]
        np.testing.assert_allclose(batch.audios[index], alone, atol=1e-4)


def test_speed_scales_predicted_length(pipeline, prompt, monkeypatch):
    # a duration predictor that says 6 frames for every phoneme: log(6 + 1)
    monkeypatch.setattr(
        pipeline.model, "predict_durations", lambda hidden, mask, *args: torch.full(mask.shape, math.log(7.0)) * mask
    )
    normal = run(pipeline, "Speed it up please.", prompt).durations[0]
    fast = run(pipeline, "Speed it up please.", prompt, speed=2.0).durations[0]
    slow = run(pipeline, "Speed it up please.", prompt, speed=0.5).durations[0]
    assert normal.sum() == 6 * len(normal)
    assert abs(fast.sum().item() - normal.sum().item() / 2) <= len(normal)
    assert abs(slow.sum().item() - normal.sum().item() * 2) <= len(normal)


def test_min_phone_frames_lengthens_short_phones_only(pipeline, prompt, monkeypatch):
    from ns2_hf.text import is_phone

    text = "A short one, then more."
    plain = run(pipeline, text, prompt)
    floored = run(pipeline, text, prompt, min_phone_frames=4)
    tokens = pipeline.tokenizer.convert_ids_to_tokens(pipeline.tokenizer(text)["input_ids"])
    phone = torch.tensor([is_phone(token) for token in tokens])
    before, after = plain.durations[0], floored.durations[0]
    assert (before[phone] < 4).any()  # the untrained predictor leaves some short: the floor has work to do
    assert torch.equal(after[phone], before[phone].clamp(min=4)) and torch.equal(after[~phone], before[~phone])
    # the same as giving those durations
    given = run(pipeline, text, prompt, durations=[after])
    np.testing.assert_array_equal(floored.audios[0], given.audios[0])
    with pytest.raises(ValueError, match="min_phone_frames"):
        run(pipeline, text, prompt, min_phone_frames=0)
    # by default the model's config says (a release setting; the shipped model's is 6)
    monkeypatch.setattr(pipeline.model.config, "min_phone_frames", 4)
    assert torch.equal(run(pipeline, text, prompt).durations[0], after)
    assert torch.equal(run(pipeline, text, prompt, min_phone_frames=1).durations[0], before)


def test_spectrum_matching_equalises_each_output_towards_its_prompts_spectrum(pipeline, prompt, corpus_dir, monkeypatch):
    """`spectrum_matching=s`: each decoded waveform through `match_long_term_spectrum` towards its own voice's LTAS
    (recorded by `encode_voice`), in a batch as alone; 0 leaves the output bit for bit; the model's config gives the
    default; a voice without the spectrum (saved by an older version) is left as decoded."""
    import dataclasses

    from ns2_hf.audio.spectrum import long_term_spectrum, match_long_term_spectrum

    waveform, sampling_rate = prompt
    other_waveform, other_rate = sf.read(corpus_dir / "audio" / "kok_alpha_0001.flac", dtype="float32")
    voices = [pipeline.encode_voice(waveform, sampling_rate), pipeline.encode_voice(other_waveform, other_rate)]
    measured = long_term_spectrum(torch.from_numpy(pipeline.load_prompt(waveform, sampling_rate)), pipeline.sampling_rate)
    torch.testing.assert_close(voices[0].long_term_spectrum, measured)
    assert (voices[0].long_term_spectrum - voices[1].long_term_spectrum).abs().max() > 3  # two voices, two spectra
    texts = ["We are all one.", "The birch canoe slid on the smooth planks."]

    def speak(voice=voices, **kwargs):
        generators = [torch.Generator().manual_seed(seed) for seed in (5, 6)]
        return pipeline(texts, voice=voice, num_inference_steps=STEPS, generator=generators, **kwargs).audios

    plain, matched = speak(), speak(spectrum_matching=0.7)
    for audio, decoded, voice in zip(matched, plain, voices):
        expected = match_long_term_spectrum(torch.from_numpy(decoded), voice.long_term_spectrum, pipeline.sampling_rate, 0.7)
        np.testing.assert_allclose(audio, expected.numpy(), atol=1e-6)
        assert np.abs(audio - decoded).max() > 1e-3 * np.abs(decoded).max()
    np.testing.assert_array_equal(speak(spectrum_matching=0.0)[1], plain[1])
    monkeypatch.setattr(pipeline.model.config, "spectrum_matching", 0.7)
    np.testing.assert_array_equal(speak()[1], matched[1])
    old = [dataclasses.replace(voice, long_term_spectrum=None) for voice in voices]
    np.testing.assert_array_equal(speak(old)[0], plain[0])
    for bad in (-0.1, 1.5, math.nan, "1"):
        with pytest.raises(GenerationArgumentError, match="spectrum_matching"):
            speak(spectrum_matching=bad)


def test_output_types(pipeline, prompt):
    latent = run(pipeline, "Latent please.", prompt, output_type="latent")
    assert latent.audios[0].shape == (pipeline.model.config.latent_dim, int(latent.durations[0].sum()))
    pt = run(pipeline, "Latent please.", prompt, output_type="pt")
    assert isinstance(pt.audios[0], torch.Tensor)
    decoded = pipeline.codec.decode(quantized_latents=latent.audios[0][None]).audio_values[0]
    torch.testing.assert_close(decoded[: pt.audios[0].shape[0]], pt.audios[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="output_type"):
        run(pipeline, "x", prompt, output_type="mp3")


def test_prompt_is_downmixed_resampled_and_cropped(pipeline, prompt):
    waveform, sampling_rate = prompt
    stereo_44k = np.stack([waveform, waveform])
    import librosa

    stereo_44k = librosa.resample(stereo_44k, orig_sr=sampling_rate, target_sr=44100)
    output = pipeline("Stereo prompt.", prompt_audio=stereo_44k, prompt_sampling_rate=44100, num_inference_steps=2)
    assert np.all(np.isfinite(output.audios[0]))
    long_prompt = np.tile(waveform, 5)
    cropped = pipeline.load_prompt(long_prompt, sampling_rate)
    assert len(cropped) == int(pipeline.max_prompt_seconds * pipeline.sampling_rate)


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros(32000, dtype=np.float32), "silent"),
        (np.full(32000, np.nan, dtype=np.float32), "NaN"),
        (0.5 * np.sin(np.arange(800) / 5.0).astype(np.float32), "too short"),
        (np.zeros(0, dtype=np.float32), "empty"),
    ],
)
def test_bad_prompts_raise_clear_errors(pipeline, audio, message):
    with pytest.raises(AudioInputError, match=message):
        pipeline("Hello.", prompt_audio=audio, prompt_sampling_rate=16000, num_inference_steps=2)


def test_unreadable_prompt_file_and_bad_text(pipeline, prompt, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF0000WAVEjunkjunkjunk")
    with pytest.raises(AudioInputError, match="cannot decode"):
        pipeline("Hello.", prompt_audio=str(corrupt), num_inference_steps=2)
    with pytest.raises(AudioInputError, match="no such file"):
        pipeline("Hello.", prompt_audio=str(tmp_path / "missing.wav"), num_inference_steps=2)
    with pytest.raises(ValueError, match="empty"):
        run(pipeline, "   ", prompt)
    with pytest.raises(ValueError, match="num_inference_steps"):
        run(pipeline, "Hello.", prompt, num_inference_steps=0)


def test_cli_writes_speech(tmp_path, pipeline):
    from ns2_hf.cli import main

    pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out.wav"
    code = main(["--model", str(tmp_path / "pipe"), "--text", "Command line.", "--prompt", str(EXAMPLE_PROMPT), "--out", str(out), "--steps", "2"])
    assert code == 0
    audio, sampling_rate = sf.read(out)
    assert sampling_rate == pipeline.sampling_rate and len(audio) > 0
    assert main(["--model", str(tmp_path / "pipe"), "--text", "", "--prompt", str(EXAMPLE_PROMPT), "--out", str(out)]) == 2
    # this codec has no Fourier decoder: no harmonic phase to turn on (refused before any synthesis), off is fine
    arguments = ["--model", str(tmp_path / "pipe"), "--text", "Command line.", "--prompt", str(EXAMPLE_PROMPT), "--out", str(out),
                 "--steps", "2", "--harmonic-phase"]
    assert main([*arguments, "on"]) == 2 and main([*arguments, "off", "--match-prompt-pitch"]) == 0
    # prompt and content guidance: out of range and a model without the dropout are user errors; with it, it speaks
    common = ["--text", "Command line.", "--prompt", str(EXAMPLE_PROMPT), "--out", str(out), "--steps", "2"]
    for flag, dropout in (("--prompt-guidance", "prompt_dropout"), ("--content-guidance", "condition_dropout")):
        assert main(["--model", str(tmp_path / "pipe"), *common, flag, "11"]) == 2
        assert main(["--model", str(tmp_path / "pipe"), *common, flag, "2"]) == 2
        setattr(pipeline.model.config, dropout, 0.2)
        try:
            pipeline.save_pretrained(tmp_path / dropout)
        finally:
            setattr(pipeline.model.config, dropout, 0.0)
        assert main(["--model", str(tmp_path / dropout), *common, flag, "2"]) == 0
    # the phone floor: a longer output than the predicted durations give
    assert main(["--model", str(tmp_path / "pipe"), *common, "--min-phone-frames", "1"]) == 0
    short_length = len(sf.read(out)[0])
    assert main(["--model", str(tmp_path / "pipe"), *common, "--min-phone-frames", "8"]) == 0
    assert len(sf.read(out)[0]) > short_length
    # the register bound: the same seed, another pitch contour (the untrained predictor's lies far from the prompt's)
    assert main(["--model", str(tmp_path / "pipe"), *common, "--pitch-register-tolerance", "inf"]) == 0
    free = sf.read(out)[0]
    assert main(["--model", str(tmp_path / "pipe"), *common, "--pitch-register-tolerance", "0.05"]) == 0
    assert len(sf.read(out)[0]) == len(free) and not np.allclose(sf.read(out)[0], free)
    with pytest.raises(SystemExit):  # argparse: exit 2 with the message
        main(["--model", str(tmp_path / "pipe"), *common, "--pitch-register-tolerance", "-1"])
    # the prompt's spectrum: the same length, another waveform; out of range is refused before any model loads
    assert main(["--model", str(tmp_path / "pipe"), *common, "--spectrum-matching", "1"]) == 0
    assert len(sf.read(out)[0]) == len(free) and not np.allclose(sf.read(out)[0], free)
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "pipe"), *common, "--spectrum-matching", "1.5"])
