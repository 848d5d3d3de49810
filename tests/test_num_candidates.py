"""`NS2Pipeline(num_candidates=N)`: N samples per waveform, the aligner keeps the one that says the text most clearly.

The aligner's score (`NS2AlignerModel.text_mismatch`, the forward-sum loss per phoneme) must prefer speech that says
the text over speech that does not; the pipeline must keep, of the N samples it would have drawn anyway, exactly the
one with the lowest score, and stay reproducible item by item.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2_hf.alignment import NS2AlignerConfig, NS2AlignerModel
from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline
from ns2_hf.pipelines.arguments import MAX_CANDIDATES, GenerationArgumentError

pytestmark = pytest.mark.usefixtures("one_thread")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ALIGNER = REPO_ROOT / "pretrained" / "ns2-tiny-en" / "aligner"
EXAMPLE_PROMPT = REPO_ROOT / "examples" / "prompt.wav"
STEPS = 4


@pytest.fixture(scope="module")
def shipped_aligner():
    return NS2AlignerModel.from_pretrained(SHIPPED_ALIGNER).eval()


@pytest.fixture(scope="module")
def pipeline():
    """The tiny random-weight pipeline with a random-weight aligner at its codec's rate and hop."""
    pipe = build_untrained_pipeline("tiny", seed=0)
    config = NS2AlignerConfig(vocab_size=len(pipe.tokenizer), hidden_size=32, attention_dim=16, n_mels=40,
                              sampling_rate=pipe.sampling_rate, hop_length=pipe.hop_length, n_fft=512)
    torch.manual_seed(1)
    pipe.register_modules(aligner=NS2AlignerModel(config).eval())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def prompt(corpus_dir):
    return sf.read(corpus_dir / "audio" / "flite_slt_0001.flac", dtype="float32")


def recording(corpus_dir, utterance_id):
    waveform, _ = sf.read(corpus_dir / "audio" / f"{utterance_id}.flac", dtype="float32")
    return torch.from_numpy(waveform)


def phonemes(pipe, text):
    return pipe.encode_text([text])[0]


def test_the_aligner_scores_a_recording_of_the_text_better_than_other_speech(shipped_aligner, pipeline, corpus_dir,
                                                                             corpus_texts):
    """The shipped aligner's mismatch is lower for a recording with its own transcript than for the same recording
    with another sentence's, or for the recording played backwards (the same sounds, not the words); and it is the
    forward-sum loss `forward` reports for one item."""
    for utterance_id, other_id in (("kok_mix5_0012", "kok_mix5_0016"), ("flite_slt_0040", "fes_kal_0005")):
        waveform = recording(corpus_dir, utterance_id)
        own, other = phonemes(pipeline, corpus_texts[utterance_id]), phonemes(pipeline, corpus_texts[other_id])
        right = shipped_aligner.text_mismatch(own, waveform)
        assert right < shipped_aligner.text_mismatch(other, waveform) - 0.5
        assert right < shipped_aligner.text_mismatch(own, waveform.flip(0)) - 0.5
        with torch.no_grad():
            np.testing.assert_allclose(right, float(shipped_aligner(own, waveform=waveform).forward_sum_loss), rtol=1e-5)


def test_best_candidates_keeps_the_speech_that_says_the_text(shipped_aligner, pipeline, corpus_dir, corpus_texts):
    """Of each run of candidates the pipeline keeps the one that says its text: a recording beside the same recording
    backwards and a recording of another sentence, in any order, for two texts at once."""
    pipe = NS2Pipeline(**{**pipeline.components, "aligner": shipped_aligner})
    texts = [corpus_texts["kok_mix5_0012"], corpus_texts["flite_slt_0040"]]
    phoneme_ids, phoneme_mask = pipe.encode_text([texts[0]] * 3 + [texts[1]] * 3)
    right = [recording(corpus_dir, "kok_mix5_0012"), recording(corpus_dir, "flite_slt_0040")]
    candidates = [right[0].flip(0), recording(corpus_dir, "kok_mix5_0016"), right[0],
                  right[1], right[1].flip(0), recording(corpus_dir, "fes_kal_0005")]
    assert pipe.best_candidates(candidates, phoneme_ids, phoneme_mask, 3) == [2, 3]
    # audio with fewer frames than phonemes cannot be scored: its run keeps its first candidate
    too_short = [torch.zeros(pipe.hop_length * 3), right[0][: pipe.hop_length * 3]]
    ids, mask = pipe.encode_text([texts[0]] * 2)
    assert pipe.best_candidates(too_short, ids, mask, 2) == [0]


def test_the_pipeline_keeps_the_candidate_with_the_lowest_mismatch(pipeline, prompt):
    """`num_candidates=3` gives exactly the sample of `num_waveforms_per_prompt=3` (the same noise draws) that the
    aligner scores lowest, with its durations; the latent output is that sample's latents."""
    waveform, rate = prompt
    text = "The birch canoe slid on the smooth planks."

    def speak(**kwargs):
        return pipeline(text, prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=STEPS,
                        generator=torch.Generator().manual_seed(5), **kwargs)

    samples = speak(num_waveforms_per_prompt=3)
    ids = phonemes(pipeline, text)
    mismatch = [pipeline.aligner.text_mismatch(ids, torch.from_numpy(audio)) for audio in samples.audios]
    assert len(set(np.round(mismatch, 6))) == 3
    best = int(np.argmin(mismatch))
    chosen = speak(num_candidates=3)
    assert len(chosen.audios) == 1
    np.testing.assert_array_equal(chosen.audios[0], samples.audios[best])
    torch.testing.assert_close(chosen.durations[0], samples.durations[best])
    latents = speak(num_waveforms_per_prompt=3, output_type="latent").audios
    torch.testing.assert_close(speak(num_candidates=3, output_type="latent").audios[0], latents[best])
    # one candidate is the plain pipeline; the config's default applies when the argument is not given
    np.testing.assert_allclose(speak(num_candidates=1).audios[0], samples.audios[0], atol=1e-5)  # a batch of one
    pipeline.model.config.num_candidates = 3
    try:
        np.testing.assert_array_equal(speak().audios[0], chosen.audios[0])
        # given initial noise fixes the sample: the default draws no others
        noise = torch.randn(1, pipeline.model.config.latent_dim, int(chosen.durations[0].sum()),
                            generator=torch.Generator().manual_seed(9))
        np.testing.assert_array_equal(speak(latents=noise).audios[0], speak(latents=noise, num_candidates=1).audios[0])
    finally:
        pipeline.model.config.num_candidates = 1


def test_drafts_choose_the_candidate_that_is_then_sampled_in_full(pipeline, prompt):
    """`candidate_steps=2`: the aligner scores each candidate's 2-step draft, and the output is the chosen noise's
    4-step sample — the sample of `num_waveforms_per_prompt=3` at 4 steps whose 2-step draft scores lowest, here not
    the one whose own 4-step sample scores lowest (so the drafts, not the full samples, chose it)."""
    waveform, rate = prompt
    text = "The birch canoe slid on the smooth planks."
    ids = phonemes(pipeline, text)

    def speak(steps=STEPS, **kwargs):
        return pipeline(text, prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(8), **kwargs)

    def best(audios):
        return int(np.argmin([pipeline.aligner.text_mismatch(ids, torch.from_numpy(audio)) for audio in audios]))

    full = speak(num_waveforms_per_prompt=3, num_candidates=1)
    chosen_on_drafts = best(speak(2, num_waveforms_per_prompt=3, num_candidates=1).audios)
    assert chosen_on_drafts != best(full.audios)
    output = speak(num_candidates=3, candidate_steps=2)
    np.testing.assert_allclose(output.audios[0], full.audios[chosen_on_drafts], atol=1e-5)
    torch.testing.assert_close(output.durations[0], full.durations[chosen_on_drafts])
    latents = speak(num_waveforms_per_prompt=3, num_candidates=1, output_type="latent").audios
    torch.testing.assert_close(speak(num_candidates=3, candidate_steps=2, output_type="latent").audios[0],
                               latents[chosen_on_drafts], atol=1e-5, rtol=0)
    # drafts as long as the full run are the full run: every candidate sampled in full, the best of those kept
    np.testing.assert_array_equal(speak(num_candidates=3, candidate_steps=STEPS).audios[0], full.audios[best(full.audios)])
    pipeline.model.config.candidate_steps = 2  # the config's default applies when the argument is not given
    try:
        np.testing.assert_array_equal(speak(num_candidates=3).audios[0], output.audios[0])
    finally:
        pipeline.model.config.candidate_steps = None


def test_the_callback_sees_the_chosen_candidates_full_run(pipeline, prompt):
    """With drafts the step callback runs on the full run of the chosen noises only (one row per waveform), and what
    it returns is used there."""
    waveform, rate = prompt
    seen = []

    def callback(pipe, step_index, timestep, callback_kwargs):
        seen.append(callback_kwargs["latents"].shape[0])
        return {"latents": callback_kwargs["latents"] * 0 if step_index == STEPS - 1 else callback_kwargs["latents"]}

    output = pipeline(["One.", "Two more."], prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=STEPS,
                      num_candidates=3, candidate_steps=2, callback_on_step_end=callback, output_type="latent")
    assert seen == [2] * STEPS
    assert all(float(latents.abs().max()) < 1e-4 for latents in output.audios)  # zero, denormalised


@pytest.mark.parametrize("candidate_steps", [None, 2])
def test_candidates_of_a_batch_equal_each_item_alone(pipeline, prompt, candidate_steps):
    """Two texts × two waveforms, three candidates each, one generator per waveform: each output is what its text
    alone with its generator gives — whether the candidates are sampled in full or chosen on drafts."""
    waveform, rate = prompt
    texts = ["A short one.", "This second sentence is a little longer."]
    seeds = [21, 22, 23, 24]
    batch = pipeline(texts, prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=STEPS,
                     num_waveforms_per_prompt=2, num_candidates=3, candidate_steps=candidate_steps,
                     generator=[torch.Generator().manual_seed(seed) for seed in seeds]).audios
    for index, seed in enumerate(seeds):
        alone = pipeline(texts[index // 2], prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=STEPS,
                         num_candidates=3, candidate_steps=candidate_steps,
                         generator=torch.Generator().manual_seed(seed)).audios[0]
        np.testing.assert_allclose(batch[index], alone, atol=1e-5)


def test_bad_num_candidates_and_a_missing_aligner_are_refused(pipeline, prompt):
    waveform, rate = prompt

    def speak(pipe=pipeline, **kwargs):
        return pipe("Hello.", prompt_audio=waveform, prompt_sampling_rate=rate, num_inference_steps=STEPS, **kwargs)

    for bad in (0, MAX_CANDIDATES + 1, 2.0, True):
        with pytest.raises(GenerationArgumentError, match="num_candidates"):
            speak(num_candidates=bad)
    for bad in (1, 0, 2.0, True, 1001):
        with pytest.raises(GenerationArgumentError, match="candidate_steps"):
            speak(num_candidates=2, candidate_steps=bad)
    with pytest.raises(ValueError, match="num_candidates=1 with `latents`"):
        speak(num_candidates=2, latents=torch.randn(1, pipeline.model.config.latent_dim, 40))
    without_aligner = NS2Pipeline(**{**pipeline.components, "aligner": None})
    with pytest.raises(GenerationArgumentError, match="no aligner for choosing among candidates"):
        speak(without_aligner, num_candidates=2)
    assert len(speak(without_aligner, num_candidates=1).audios) == 1
    from ns2_hf.ns2 import NS2Config

    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="num_candidates"):
            NS2Config(num_candidates=bad)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="candidate_steps"):
            NS2Config(candidate_steps=bad)


def test_a_saved_pipeline_brings_its_aligner(pipeline, tmp_path):
    """`save_pretrained` writes the aligner as a component, `from_pretrained` loads it with the same weights; a
    folder without one loads with none."""
    pipeline.save_pretrained(tmp_path / "with")
    loaded = NS2Pipeline.from_pretrained(tmp_path / "with")
    for name, tensor in pipeline.aligner.state_dict().items():
        torch.testing.assert_close(loaded.aligner.state_dict()[name], tensor, rtol=0, atol=0)
    NS2Pipeline(**{**pipeline.components, "aligner": None}).save_pretrained(tmp_path / "without")
    assert NS2Pipeline.from_pretrained(tmp_path / "without").aligner is None


def test_cli_takes_the_best_of_n(pipeline, tmp_path):
    """`ns2-tts --num-candidates 3` writes the pipeline's best of three; out of range is refused before any model
    loads, and a folder without an aligner is a one-line error (exit 2)."""
    from ns2_hf.cli import main

    pipeline.save_pretrained(tmp_path / "pipe")
    NS2Pipeline(**{**pipeline.components, "aligner": None}).save_pretrained(tmp_path / "no_aligner")
    out = tmp_path / "out.wav"
    common = ["--text", "Command line.", "--prompt", str(EXAMPLE_PROMPT), "--out", str(out), "--steps", str(STEPS), "--seed", "7"]
    assert main(["--model", str(tmp_path / "pipe"), *common, "--num-candidates", "3"]) == 0
    expected = pipeline("Command line.", prompt_audio=str(EXAMPLE_PROMPT), num_inference_steps=STEPS, num_candidates=3,
                        generator=torch.Generator().manual_seed(7)).audios[0]
    np.testing.assert_allclose(sf.read(out, dtype="float32")[0], np.clip(expected, -1, 1), atol=2 / 32767)
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "pipe"), *common, "--num-candidates", "0"])
    assert main(["--model", str(tmp_path / "pipe"), *common, "--num-candidates", "3", "--candidate-steps", "2"]) == 0
    expected = pipeline("Command line.", prompt_audio=str(EXAMPLE_PROMPT), num_inference_steps=STEPS, num_candidates=3,
                        candidate_steps=2, generator=torch.Generator().manual_seed(7)).audios[0]
    np.testing.assert_allclose(sf.read(out, dtype="float32")[0], np.clip(expected, -1, 1), atol=2 / 32767)
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "pipe"), *common, "--num-candidates", "3", "--candidate-steps", "1"])
    assert main(["--model", str(tmp_path / "no_aligner"), *common, "--num-candidates", "2"]) == 2
