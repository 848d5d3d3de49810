"""Monotonic alignment search, TextGrid/festival import, and the built-in aligner (trained on the
festival utterances, checked against the synthesizer's own phone timings)."""

import itertools
import math
import time

import numpy as np
import pytest
import torch

from conftest import load_training_script
from ns2_hf.alignment import (
    AlignmentError,
    NS2AlignerConfig,
    NS2AlignerModel,
    TextGridError,
    boundary_errors,
    durations_from_segments,
    maximum_path,
    monotonic_alignment_search,
    read_alignment_json,
    read_textgrid,
)




def brute_force_best_path(log_probs):
    """Best monotonic path by enumerating every duration split (tiny inputs only)."""
    frames, tokens = log_probs.shape
    best_score, best_path = -np.inf, None
    for cuts in itertools.combinations(range(1, frames), tokens - 1):
        path = np.searchsorted(np.array(cuts), np.arange(frames), side="right")
        score = log_probs[np.arange(frames), path].sum()
        if score > best_score:
            best_score, best_path = score, path
    return best_path


# --------------------------------------------------------------------------------------------
# Monotonic alignment search
# --------------------------------------------------------------------------------------------
def test_mas_recovers_hand_made_path():
    # Frames 0-1 -> token 0, frames 2-4 -> token 1, frame 5 -> token 2: high log-prob on that path.
    truth = np.array([0, 0, 1, 1, 1, 2])
    log_probs = np.full((6, 3), -5.0)
    log_probs[np.arange(6), truth] = -0.1
    np.testing.assert_array_equal(maximum_path(log_probs), truth)


def test_mas_prefers_global_optimum_over_greedy():
    # Greedy per-frame argmax would jump to token 2 at frame 1 (-0.1) and strand token 1; the
    # best monotonic path must visit token 1 and pays less in total by staying on 0 first.
    log_probs = np.log(
        np.array(
            [
                [0.90, 0.05, 0.05],
                [0.15, 0.05, 0.80],
                [0.10, 0.80, 0.10],
                [0.05, 0.05, 0.90],
            ]
        )
    )
    path = maximum_path(log_probs)
    np.testing.assert_array_equal(path, [0, 0, 1, 2])
    np.testing.assert_array_equal(path, brute_force_best_path(log_probs))


def test_mas_matches_brute_force_on_random_matrices():
    rng = np.random.default_rng(0)
    for frames, tokens in [(5, 1), (5, 5), (7, 3), (9, 4)]:
        log_probs = rng.normal(size=(frames, tokens))
        np.testing.assert_array_equal(maximum_path(log_probs), brute_force_best_path(log_probs))


def test_batched_mas_durations_sum_to_frames_and_are_positive():
    torch.manual_seed(0)
    log_probs = torch.randn(3, 50, 12)
    token_mask = torch.arange(12)[None] < torch.tensor([[12], [5], [9]])
    frame_mask = torch.arange(50)[None] < torch.tensor([[50], [20], [9]])
    alignment = monotonic_alignment_search(log_probs, token_mask, frame_mask)
    durations = alignment.sum(1).long()
    np.testing.assert_array_equal(durations.sum(1).numpy(), [50, 20, 9])
    assert torch.all(durations[token_mask] >= 1) and torch.all(durations[~token_mask] == 0)
    assert torch.all(alignment.sum(2)[frame_mask] == 1) and torch.all(alignment.sum(2)[~frame_mask] == 0)
    # Each item's result equals aligning it alone.
    single = maximum_path(log_probs[1, :20, :5].numpy())
    np.testing.assert_array_equal(alignment[1, :20, :5].argmax(1).numpy(), single)


def test_mas_rejects_fewer_frames_than_tokens():
    with pytest.raises(AlignmentError, match="7 tokens to only 5 frames"):
        maximum_path(np.zeros((5, 7)))
    with pytest.raises(AlignmentError, match="batch item 1"):
        monotonic_alignment_search(torch.zeros(2, 5, 7), frame_mask=torch.tensor([[True] * 5, [True] * 3 + [False] * 2]),
                                   token_mask=torch.tensor([[True] * 4 + [False] * 3, [True] * 7]))


# --------------------------------------------------------------------------------------------
# TextGrid / festival import
# --------------------------------------------------------------------------------------------
LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.5
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.5
            text = "say ""hi"" [1]"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.5
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.2188
            text = "S"
        intervals [3]:
            xmin = 0.2188
            xmax = 0.4
            text = "EY1"
        intervals [4]:
            xmin = 0.4
            xmax = 0.5
            text = ""
'''

SHORT_TEXTGRID = '''"ooTextFile"
"TextGrid"
0
0.5
<exists>
1
"IntervalTier"
"phones"
0
0.5
2
0
0.25
"a"
0.25
0.5
""
'''


def test_read_textgrid_long_format(tmp_path):
    path = tmp_path / "utt.TextGrid"
    path.write_text(LONG_TEXTGRID)
    assert read_textgrid(path) == [("sil", 0.0, 0.1), ("S", 0.1, 0.2188), ("EY1", 0.2188, 0.4), ("sil", 0.4, 0.5)]
    assert read_textgrid(path, tier="words", silence_label="") == [("", 0.0, 0.1), ('say "hi" [1]', 0.1, 0.5)]
    with pytest.raises(TextGridError, match=r"no interval tier 'syllables'.*\['words', 'phones'\]"):
        read_textgrid(path, tier="syllables")


def test_read_textgrid_short_format_and_utf16(tmp_path):
    path = tmp_path / "short.TextGrid"
    path.write_text(SHORT_TEXTGRID, encoding="utf-16")
    assert read_textgrid(path) == [("a", 0.0, 0.25), ("sil", 0.25, 0.5)]
    (tmp_path / "bad.TextGrid").write_text("hello")
    with pytest.raises(TextGridError, match="not a Praat TextGrid"):
        read_textgrid(tmp_path / "bad.TextGrid")


def test_durations_round_boundaries_and_sum_exactly(tmp_path):
    path = tmp_path / "utt.TextGrid"
    path.write_text(LONG_TEXTGRID)
    segments = read_textgrid(path)
    # Frames of 12.5 ms; ends 0.1, 0.2188, 0.4, 0.5 s -> 8, 17.5 (rounds up to 18), 32, 40 frames.
    assert durations_from_segments(segments, 200, 16000, num_frames=40) == [8, 10, 14, 8]
    # The codec pads the clip to a whole frame: the last segment absorbs the extra frame.
    assert durations_from_segments(segments, 200, 16000, num_frames=41) == [8, 10, 14, 9]
    # Many short segments: rounding each length would drift, cumulative rounding does not.
    many = [(f"p{i}", i * 0.0181, (i + 1) * 0.0181) for i in range(100)]
    durations = durations_from_segments(many, 200, 16000, num_frames=math.ceil(1.81 / 0.0125))
    assert sum(durations) == 145
    np.testing.assert_array_less(np.abs(np.cumsum(durations) - np.arange(1, 101) * 0.0181 / 0.0125), 0.5 + 1e-9)
    with pytest.raises(ValueError, match="do not belong to this audio"):
        durations_from_segments(segments, 200, 16000, num_frames=80)


def test_read_alignment_json_matches_corpus_audio(corpus_dir):
    import soundfile as sf

    segments = read_alignment_json(corpus_dir / "alignments" / "fes_kal_0000.json")
    assert segments[0][0] == "pau" and all(start < end for _, start, end in segments)
    num_frames = math.ceil(sf.info(corpus_dir / "audio" / "fes_kal_0000.flac").frames / 200)
    durations = durations_from_segments(segments, 200, 16000, num_frames)
    assert sum(durations) == num_frames and len(durations) == len(segments)


def test_boundary_errors():
    np.testing.assert_array_equal(boundary_errors([3, 2, 5], [2, 4, 4]), [1, 1])
    with pytest.raises(ValueError, match="differ"):
        boundary_errors([3, 2], [2, 4])


# --------------------------------------------------------------------------------------------
# The aligner
# --------------------------------------------------------------------------------------------
def test_features_follow_codec_frame_grid():
    model = NS2AlignerModel(NS2AlignerConfig.tiny(vocab_size=10))
    for num_samples in [1, 199, 200, 16037]:
        mel = model.features(torch.randn(num_samples))
        assert mel.shape == (1, 80, math.ceil(num_samples / 200))
    # Frame i is centred on samples [i*hop, (i+1)*hop): a click there lights up frame i most.
    click = torch.zeros(4000)
    click[10 * 200 + 100] = 1.0
    energy = model.features(click)[0].exp().sum(0)
    assert int(energy.argmax()) == 10
    assert torch.allclose(energy[9], energy[11], rtol=1e-3)


def test_aligner_forward_gradients_and_errors():
    model = NS2AlignerModel(NS2AlignerConfig.tiny(vocab_size=20, binarization_start_step=5))
    phoneme_ids = torch.randint(0, 20, (2, 8))
    phoneme_mask = torch.arange(8)[None] < torch.tensor([[8], [5]])
    mel = model.features(torch.randn(2, 6000) * 0.1)
    frame_mask = torch.arange(30)[None] < torch.tensor([[30], [22]])
    early = model(phoneme_ids, phoneme_mask, mel=mel, frame_mask=frame_mask, global_step=0)
    assert torch.equal(early.loss, early.forward_sum_loss)
    late = model(phoneme_ids, phoneme_mask, mel=mel, frame_mask=frame_mask, global_step=5)
    assert torch.allclose(late.loss, late.forward_sum_loss + late.binarization_loss)
    late.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert late.durations.sum(1).tolist() == [30, 22] and late.durations[1, 5:].eq(0).all()
    with pytest.raises(AlignmentError, match="8 phonemes but only 4 frames"):
        model.align(phoneme_ids, mel=mel[..., :4])
    with pytest.raises(ValueError, match="exactly one"):
        model.align(phoneme_ids)


FESTIVAL_TRAINING = ["--festival", "--size", "tiny", "--max_steps", "300", "--log_every", "100"]  # binarization loss from step 200 (tiny config)


@pytest.fixture(scope="module")
def festival_aligner(corpus_dir, tmp_path_factory):
    """`(model, its folder)`: an aligner trained on clean festival speech alone, once for the tests below."""
    folder = tmp_path_factory.mktemp("festival") / "aligner"
    started = time.monotonic()
    model = load_training_script("train_aligner").main([*FESTIVAL_TRAINING, "--corpus_dir", str(corpus_dir), "--output_dir", str(folder)])
    print(f"festival aligner: {(time.monotonic() - started) / 60:.1f} min of training")
    return model, folder


@pytest.mark.slow
def test_aligner_trained_on_festival_finds_phone_boundaries(corpus_dir, festival_aligner):
    """Unsupervised training on the 160 festival utterances (phone sequences as tokens, `pau` kept);
    the MAS durations are compared with the synthesizer's own segment times."""
    train_aligner = load_training_script("train_aligner")
    model, folder = festival_aligner
    examples, phones = train_aligner.load_festival_examples(str(corpus_dir), model.config.sampling_rate)
    for example in examples:
        example["mel"] = model.features(example["waveform"])[0]
    metrics = train_aligner.evaluate_festival(model, examples)
    print(f"festival boundary accuracy {metrics}")
    # Measured: 0.886 of 6857 boundaries within 2 frames, mean error 1.3 frames (35 s of training).
    assert metrics["within_2_frames"] >= 0.75
    assert metrics["mean_abs_error_frames"] < 3.0

    # save_pretrained / from_pretrained round trip: identical durations.
    reloaded = NS2AlignerModel.from_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    assert (folder / "phones.json").read_text().count('"') == 2 * len(phones)
    for example in examples[:5]:
        phoneme_ids = torch.tensor([example["phoneme_ids"]])
        mel = example["mel"].unsqueeze(0)
        assert torch.equal(model.align(phoneme_ids, mel=mel), reloaded.align(phoneme_ids, mel=mel))
        assert torch.equal(model.align(phoneme_ids, mel=mel), reloaded.align(phoneme_ids, waveform=example["waveform"]))


@pytest.mark.slow
def test_noise_augmented_training_aligns_noisy_speech(corpus_dir, festival_aligner, tmp_path):
    """`--noise_probability`: an aligner trained with white noise mixed into most utterances places the phone
    boundaries of speech at 5 dB SNR much closer to the synthesizer's timings than one trained on clean speech
    alone, and still aligns clean speech (speech enhancement aligns its noisy source with it)."""
    train_aligner = load_training_script("train_aligner")
    clean_trained, _ = festival_aligner
    noise_trained = train_aligner.main([*FESTIVAL_TRAINING, "--corpus_dir", str(corpus_dir), "--output_dir", str(tmp_path / "noisy"),
                                        "--noise_probability", "0.8", "--noise_snr_db", "0", "15"])
    examples, _ = train_aligner.load_festival_examples(str(corpus_dir), clean_trained.config.sampling_rate)
    rng = np.random.default_rng(0)
    noisy_examples = []
    for example in examples:
        waveform = example["waveform"]
        noise = rng.standard_normal(waveform.shape).astype(np.float32)
        noise *= np.sqrt(np.mean(waveform**2) / np.mean(noise**2) / 10 ** (5 / 10))
        noisy_examples.append({**example, "waveform": waveform + noise})
    errors = {}
    for name, model in (("clean", clean_trained), ("noisy", noise_trained)):
        for condition, items in (("clean", examples), ("noisy", noisy_examples)):
            for example in items:
                example["mel"] = model.features(example["waveform"])[0]
            errors[name, condition] = train_aligner.evaluate_festival(model, items)["mean_abs_error_frames"]
    print(f"mean boundary error (frames) by (training, test audio): {errors}")
    # measured: noise-trained 1.54 on noisy / 1.32 on clean; clean-trained 2.60 on noisy / 1.30 on clean
    assert errors["noisy", "noisy"] < 0.7 * errors["clean", "noisy"]
    assert errors["noisy", "clean"] < 3.0
