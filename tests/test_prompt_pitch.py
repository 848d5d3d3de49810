"""Prompt-anchored pitch (ns2_hf.ns2.prompt_pitch, ours): the statistics, the pipeline's use of them, and the
issue-13 check that shifting a prompt's pitch up four semitones moves the output's pitch by about as much."""

import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2_hf.audio import AudioInputError
from ns2_hf.metrics import pitch_statistics
from ns2_hf.ns2 import losses
from ns2_hf.ns2.prompt_pitch import MIN_LOG_F0_STD, normalize_log_f0, prompt_pitch_statistics
from ns2_hf.pipelines import NS2Pipeline
from ns2_hf.pipelines.pipeline_ns2 import build_untrained_pipeline
from ns2_hf.pipelines.voice import NS2Voice

RATE = 16000


pytestmark = pytest.mark.usefixtures("one_thread")


def _read(corpus_dir, row):
    waveform, rate = sf.read(corpus_dir / row["file_name"], dtype="float32")
    assert rate == RATE
    return waveform


def _voice_like(f0_hz, seconds=1.5, vibrato=0.03):
    """A harmonic tone at `f0_hz` with a slow sinusoidal vibrato of relative depth `vibrato`: voiced throughout."""
    time = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + vibrato * np.sin(2 * np.pi * 3 * time))) / RATE
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 8))).astype(np.float32)


def test_statistics_count_voiced_valid_frames_only():
    log_f0 = torch.tensor([[5.0, 5.2, 9.0, 5.4, 7.0], [4.0, 4.0, 4.0, 0.0, 0.0]])
    voiced = torch.tensor([[True, True, False, True, True], [False, False, False, False, False]])
    mask = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])
    mean, std = prompt_pitch_statistics(log_f0, voiced, mask)
    # item 0: frames 0, 1, 3 (frame 2 unvoiced, frame 4 padding); item 1 has no voiced frame: all its valid frames
    assert mean.tolist() == pytest.approx([5.2, 4.0])
    assert std.tolist() == pytest.approx([math.sqrt(0.08 / 3), MIN_LOG_F0_STD])
    assert normalize_log_f0(log_f0, mean, std)[0, :2].tolist() == pytest.approx([-0.2 / std[0].item(), 0.0], abs=1e-5)


def test_a_voice_keeps_its_prompts_pitch_statistics_through_save_and_load(tmp_path):
    pipe = build_untrained_pipeline()
    voice = pipe.encode_voice(_voice_like(200.0, vibrato=0.1), RATE)
    assert math.exp(voice.log_f0_mean) == pytest.approx(200.0, rel=0.02)
    assert voice.log_f0_std == pytest.approx(0.1 / math.sqrt(2), rel=0.15)  # std of log(1 + 0.1 sin)
    voice.save(tmp_path / "v.safetensors")
    loaded = NS2Voice.load(tmp_path / "v.safetensors")
    assert (loaded.log_f0_mean, loaded.log_f0_std) == (voice.log_f0_mean, voice.log_f0_std)


def test_an_anchored_model_refuses_a_prompt_without_pitch_and_the_paper_model_does_not():
    pipe = build_untrained_pipeline()
    pipe.set_progress_bar_config(disable=True)
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)  # nothing voiced in white noise
    assert pipe.encode_voice(noise, RATE).log_f0_mean is None
    pipe("Hi.", noise, prompt_sampling_rate=RATE, num_inference_steps=2)
    pipe.model.config.pitch_normalization = "prompt"
    with pytest.raises(AudioInputError, match="no voiced frames"):
        pipe("Hi.", noise, prompt_sampling_rate=RATE, num_inference_steps=2)


def test_an_anchored_untrained_pipeline_puts_the_condition_pitch_in_the_prompts_range():
    pipe = build_untrained_pipeline()
    pipe.set_progress_bar_config(disable=True)
    pipe.model.config.pitch_normalization = "prompt"
    voices = [pipe.encode_voice(_voice_like(f0), RATE) for f0 in (120.0, 240.0)]
    phoneme_ids, phoneme_mask = pipe.encode_text(["Hello there."] * 2)
    with torch.no_grad():
        phoneme_hidden = pipe.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden, prompt_mask = pipe.encode_prompt(voices, 2)
        durations = torch.full(phoneme_ids.shape, 3)
        frame_hidden, frame_mask = pipe.model.length_regulate(phoneme_hidden, durations)
        log_f0 = pipe.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, None, voices)
    # same contour shape (the prompt hidden differs, so not identically), an octave apart on average
    octave = (log_f0[1] - log_f0[0]).mean().item()
    assert octave == pytest.approx(math.log(2.0), abs=0.15)


# --- the check: a prompt four semitones up gives output about four semitones up -------------------------
TRAIN_SPEAKERS = ("fes_kal", "flite_rms", "flite_slt", "kok_kumo", "kok_mix2", "piper_joe")
UNSEEN_SPEAKER = "kok_mix5"  # held out of the shipped model's training
TEXTS = ("The quick brown fox jumps over the lazy dog.", "Please call me when you get home tonight.")


@pytest.fixture(scope="module")
def anchored_pipeline(corpus_dir):
    """The shipped pipeline with prompt-anchored pitch switched on and its pitch predictor (alone) fitted for a few
    seconds to normalised log-f0 of 12 corpus utterances (targets: Praat on the recording; durations: the
    shipped duration predictor's, rescaled to the recording's frames; prompt: another utterance of the speaker)."""
    with open(corpus_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pipe = NS2Pipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    model = pipe.model
    model.config.pitch_normalization = "prompt"
    frame_hiddens, prompt_hiddens, means, stds, log_f0s, voiceds = [], [], [], [], [], []
    from ns2_hf.audio.pitch import extract_pitch

    with torch.no_grad():
        for speaker in TRAIN_SPEAKERS:
            utterances = [row for row in rows if row["speaker_id"] == speaker][:2]
            for index, row in enumerate(utterances):
                waveform = _read(corpus_dir, row)
                voice = pipe.encode_voice(_read(corpus_dir, utterances[1 - index]), RATE)
                phoneme_ids, phoneme_mask = pipe.encode_text([row["text"]])
                phoneme_hidden = model.encode_phonemes(phoneme_ids, phoneme_mask)
                prompt_hidden, prompt_mask = pipe.encode_prompt(voice, 1)
                num_frames = math.ceil(len(waveform) / pipe.hop_length)
                durations = model.durations_from_log(
                    model.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask), phoneme_mask
                )[0].float()
                durations = torch.floor(durations * num_frames / durations.sum()).long()
                durations[durations.argmax()] += num_frames - int(durations.sum())
                frame_hidden, _ = model.length_regulate(phoneme_hidden, durations[None])
                log_f0, voiced = extract_pitch(waveform, RATE, pipe.hop_length, num_frames=num_frames)
                frame_hiddens.append(frame_hidden[0])
                prompt_hiddens.append(prompt_hidden[0])
                means.append(voice.log_f0_mean)
                stds.append(voice.log_f0_std)
                log_f0s.append(torch.from_numpy(log_f0))
                voiceds.append(torch.from_numpy(voiced))
    pad = torch.nn.utils.rnn.pad_sequence
    frame_hidden, prompt_hidden = pad(frame_hiddens, batch_first=True), pad(prompt_hiddens, batch_first=True)
    frame_mask = pad([torch.ones(len(h), dtype=torch.bool) for h in frame_hiddens], batch_first=True)
    prompt_mask = pad([torch.ones(len(h), dtype=torch.bool) for h in prompt_hiddens], batch_first=True)
    target = normalize_log_f0(pad(log_f0s, batch_first=True), torch.tensor(means), torch.tensor(stds))
    voiced = pad(voiceds, batch_first=True) & frame_mask
    torch.manual_seed(0)  # dropout
    optimizer = torch.optim.Adam(model.pitch_predictor.parameters(), lr=2e-3)
    model.pitch_predictor.train()
    first = None
    for _ in range(40):
        loss = losses.pitch_loss(model.pitch_predictor(frame_hidden, frame_mask, prompt_hidden, prompt_mask), target, voiced)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.pitch_predictor.eval()
    assert loss.item() < first / 2, (first, loss.item())
    return pipe


def _predicted_log_f0(pipe, text, voice):
    """The pitch `(frames,)` the pipeline gives the denoiser for `text` in `voice` (predicted durations)."""
    phoneme_ids, phoneme_mask = pipe.encode_text([text])
    with torch.no_grad():
        phoneme_hidden = pipe.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden, prompt_mask = pipe.encode_prompt(voice, 1)
        durations = pipe.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask, 1.0, None)
        frame_hidden, frame_mask = pipe.model.length_regulate(phoneme_hidden, durations)
        return pipe.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, None, [voice])[0]


@pytest.mark.slow
def test_a_prompt_four_semitones_higher_gives_output_about_four_semitones_higher(anchored_pipeline, corpus_dir):
    import librosa

    with open(corpus_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        prompts = [_read(corpus_dir, row) for row in csv.DictReader(handle) if row["speaker_id"] == UNSEEN_SPEAKER][:3]
    condition_rises, output_rises = [], []
    for prompt in prompts:
        shifted = librosa.effects.pitch_shift(prompt, sr=RATE, n_steps=4)
        voices = [anchored_pipeline.encode_voice(audio, RATE) for audio in (prompt, shifted)]
        for text in TEXTS:
            low, high = (_predicted_log_f0(anchored_pipeline, text, voice) for voice in voices)
            condition_rises.append(12 / math.log(2) * float(high.mean() - low.mean()))
            outputs = [
                anchored_pipeline(text, voice=voice, num_inference_steps=20, generator=torch.Generator().manual_seed(0)).audios[0]
                for voice in voices
            ]
            low, high = (pitch_statistics(output, RATE)["pitch_mean"] for output in outputs)
            output_rises.append(12 * math.log2(high / low))
    # the pitch the denoiser is asked for rises by the prompt's shift (Praat measures 3.8–4.2 semitones on the
    # shifted prompts; the requested pitch rose 4.0–4.7), by construction ...
    assert all(3.0 < rise < 5.5 for rise in condition_rises), condition_rises
    # ... and the output follows it: the codec's harmonic phase (the pipeline's default) renders the requested pitch,
    # so each output rises 3.7–4.7 semitones, within 0.25 of its condition (measured; with the decoder's own phases,
    # which follow the pitch condition only in part, 2.7 on average, single items −3.2 to +9.5). Per item 4 ± 1.5.
    assert all(2.5 < rise < 5.5 for rise in output_rises), output_rises
    assert all(abs(out - asked) < 0.75 for out, asked in zip(output_rises, condition_rises)), (output_rises, condition_rises)
