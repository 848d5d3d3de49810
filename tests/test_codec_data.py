"""Codec training data beyond the corpus: real recordings from Debian (scripts/fetch_real_speech.py),
untranscribed audio folders and per-crop voice augmentation (training/codec_data.py)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.codec_data import CodecTrainingCrops, UntranscribedAudio, augment, crop_pitch  # noqa: E402
from training.data import FrameBatchSampler, SeededBatches, SeededItems, collate_batch  # noqa: E402

RATE = 16000


@pytest.fixture(scope="module")
def real_speech(tmp_path_factory):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import fetch_real_speech

    output = tmp_path_factory.mktemp("real_speech")
    fetch_real_speech.main(["--output_dir", str(output), "--klettres"])
    return output


def test_real_speech_splits_train_from_test_and_lists_the_transcribed_utterances(real_speech):
    train = sorted(p.name for p in (real_speech / "train").glob("*.wav"))
    test = sorted(p.name for p in (real_speech / "test").rglob("*.wav"))
    assert len(train) == 5 and len(test) == 12 and not set(train) & set(test)
    for path in (real_speech / "train").glob("*.wav"):
        info = sf.info(path)
        assert info.samplerate == RATE and info.channels == 1 and info.duration > 3
    rows = [json.loads(line) for line in (real_speech / "test_list.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(row["text"] and row["prompt_audio"] != row["audio"] for row in rows)
    for row in rows:
        for column in ("audio", "prompt_audio", "other_prompt_audio"):
            assert (real_speech / row[column]).is_file()
    prompt_rows = [json.loads(line) for line in (real_speech / "codec2_prompt_list.jsonl").read_text().splitlines()]
    assert len({row["prompt_audio"] for row in prompt_rows}) == 7 and all(row["text"] for row in prompt_rows)
    for row in prompt_rows:
        assert row["prompt_audio"] != row["other_prompt_audio"] and (real_speech / row["other_prompt_audio"]).is_file()
    # the real tuning list: 5 prompts of pocketsphinx's two other speakers, the floor always the other speaker
    tuning_rows = [json.loads(line) for line in (real_speech / "real_tuning_list.jsonl").read_text().splitlines()]
    assert len(tuning_rows) == 10 and len({row["text"] for row in tuning_rows}) == 10
    speaker_of = {row["prompt_audio"]: row["speaker"] for row in tuning_rows}
    assert len(speaker_of) == 5 and len(set(speaker_of.values())) == 2
    for row in tuning_rows:
        assert speaker_of[row["other_prompt_audio"]] != row["speaker"] and not row["prompt_audio"].startswith("test/")
        info = sf.info(real_speech / row["prompt_audio"])
        assert info.samplerate == RATE and info.channels == 1 and info.duration > 1.5


def test_klettres_adds_twenty_real_voices_trimmed_of_silence(real_speech):
    """`--klettres`: one folder per language (one native speaker each), 16 kHz mono clips that start and end with
    sound, not with the silence around each recording (the first and last 32 ms frames within 42 dB of the
    loudest; in the packaged recordings half are further below, many digital silence), 35+ minutes in all."""
    import librosa

    languages = sorted(path for path in (real_speech / "train" / "klettres").iterdir() if path.is_dir())
    assert len(languages) == 20
    clips = sorted((real_speech / "train" / "klettres").rglob("*.wav"))
    for path in clips[::50]:
        waveform, rate = sf.read(path)
        assert rate == RATE and waveform.ndim == 1
        rms = librosa.feature.rms(y=waveform, frame_length=512, hop_length=128, center=False)[0]
        assert min(rms[0], rms[-1]) > rms.max() * 10 ** (-42 / 20), path
    seconds = sum(sf.info(path).duration for path in clips)
    assert len(clips) > 1500 and seconds > 35 * 60


def test_untranscribed_audio_batches_with_the_corpus_collate(real_speech):
    dataset = UntranscribedAudio([str(real_speech / "train")], RATE, hop_length=200)
    assert len(dataset) == 5 + len(list((real_speech / "train" / "klettres").rglob("*.wav")))
    assert {dataset[i]["speaker_id"] for i in range(len(dataset))} >= {"train", "en", "ru"}  # the folder names
    batch = collate_batch([dataset[0], dataset[1]])
    lengths = [len(dataset[i]["audio"]) for i in (0, 1)]
    assert batch["audio"].shape == (2, max(lengths)) and batch["audio_mask"].sum(1).tolist() == lengths
    assert batch["num_frames"].tolist() == [int(np.ceil(n / 200)) for n in lengths]
    with pytest.raises(FileNotFoundError, match="no audio files"):
        UntranscribedAudio([str(real_speech / "nothing_here")], RATE, 200)


def _tone_batch():
    t = torch.arange(8000) / RATE
    audio = torch.stack([0.3 * torch.sin(2 * torch.pi * 200 * t), 0.3 * torch.sin(2 * torch.pi * 300 * t)])
    mask = torch.ones_like(audio, dtype=torch.bool)
    mask[1, 6000:] = False
    audio[1, 6000:] = 0
    return audio, mask


def _peak_frequency(waveform):
    spectrum = np.abs(np.fft.rfft(waveform.numpy()))
    return np.argmax(spectrum) * RATE / waveform.numel()


def test_augmentation_moves_pitch_loudness_and_noise_and_keeps_masks_right():
    audio, mask = _tone_batch()
    np.random.seed(0)
    faster, faster_mask = augment(audio, mask, RATE, probability=1.0, speed=(1.2, 1.2), gain_db=None, noise_snr_db=None)
    valid = int(faster_mask[0].sum())
    assert valid == pytest.approx(8000 / 1.2, abs=2) and not faster_mask[0, valid:].any()
    assert _peak_frequency(faster[0, :valid]) == pytest.approx(240, abs=5)  # 200 Hz played 1.2x faster
    assert torch.all(faster[0, valid:] == 0)
    assert int(faster_mask[1].sum()) == pytest.approx(6000 / 1.2, abs=2)  # the padded item keeps its own length

    louder, _ = augment(audio, mask, RATE, probability=1.0, speed=None, gain_db=(6.0, 6.0), noise_snr_db=None)
    assert torch.allclose(louder[0], audio[0] * 10 ** (6 / 20), atol=1e-6)
    noisy, _ = augment(audio, mask, RATE, probability=1.0, speed=None, gain_db=None, noise_snr_db=(20.0, 20.0))
    noise = noisy[0] - audio[0]
    snr = 10 * torch.log10(audio[0].pow(2).mean() / noise.pow(2).mean())
    assert float(snr) == pytest.approx(20.0, abs=0.5)
    loud, _ = augment(audio, mask, RATE, probability=1.0, speed=None, gain_db=(20.0, 20.0), noise_snr_db=None)
    assert float(loud.abs().max()) <= 1.0  # never clipped: peaks are normalised
    untouched, untouched_mask = augment(audio, mask, RATE, probability=0.0)
    assert torch.equal(untouched, audio) and torch.equal(untouched_mask, mask)


def test_augmentation_is_reproducible_from_the_seed():
    audio, mask = _tone_batch()
    results = []
    for _ in range(2):
        np.random.seed(7)
        results.append(augment(audio, mask, RATE))
    results.append(augment(audio, mask, RATE, rng=np.random.RandomState(7)))  # its own RNG, the same draws
    for result in results[1:]:
        assert torch.equal(results[0][0], result[0]) and torch.equal(results[0][1], result[1])


def _crop_loader(num_workers, harmonic_phase=False):
    """train_codec.py's DataLoader on 12 tone utterances of 0.5-1.6 s: 4 crops of 0.25 s per batch."""
    rng = np.random.default_rng(0)
    items = []
    for index in range(12):
        samples = int(rng.integers(8000, 25600))
        tone = np.sin(2 * np.pi * (120 + 20 * index) * np.arange(samples) / RATE) * 0.5
        items.append({"id": f"u{index}", "speaker_id": "s", "num_frames": -(-samples // 200),
                      "audio": torch.from_numpy((tone + 0.01 * rng.standard_normal(samples)).astype(np.float32))})
    sampler = SeededBatches(FrameBatchSampler([20] * len(items), 80, seed=3), seed=3)
    crops = CodecTrainingCrops(4000, RATE, 200, {"probability": 0.7, "speed": (0.85, 1.15), "gain_db": (-10.0, 6.0),
                                                 "noise_snr_db": (30.0, 50.0)}, harmonic_phase)
    return torch.utils.data.DataLoader(SeededItems(items), batch_sampler=sampler, collate_fn=crops, num_workers=num_workers)


def _epoch(loader, epoch):
    loader.batch_sampler.set_epoch(epoch)
    return list(loader)


def test_codec_crops_depend_on_the_batch_alone_not_on_the_worker_or_a_resume():
    """train_codec.py crops, augments and tracks the pitch in the DataLoader workers: each batch draws from
    (seed, epoch, batch number), so two workers give the batches one process gives, a loader that skips the first
    batch (a resume) gives the rest unchanged, and an utterance is cut and perturbed anew in the next epoch."""
    from accelerate.data_loader import skip_first_batches

    alone = _epoch(_crop_loader(0, harmonic_phase=True), 0)
    in_workers = _epoch(_crop_loader(2, harmonic_phase=True), 0)
    skipping = _crop_loader(0, harmonic_phase=True)
    skipping.batch_sampler.set_epoch(0)
    resumed = list(skip_first_batches(skipping, 1))
    assert len(alone) == 3 and len(resumed) == 2
    for one, other in [*zip(alone, in_workers), *zip(alone[1:], resumed)]:
        assert one["ids"] == other["ids"]
        for key in ("audio", "audio_mask", "f0", "voiced"):
            assert torch.equal(one[key], other[key]), key
    assert alone[0]["audio"].shape == (4, 4000) and alone[0]["f0"].shape == (4, 20)
    next_epoch = _epoch(_crop_loader(0), 1)
    first = {name: batch["audio"][row] for batch in alone for row, name in enumerate(batch["ids"])}
    second = {name: batch["audio"][row] for batch in next_epoch for row, name in enumerate(batch["ids"])}
    assert first.keys() == second.keys() and not any(torch.equal(first[name], second[name]) for name in first)


def test_crop_pitch_tracks_each_crop_and_leaves_its_padding_unvoiced():
    """What `harmonic_phase: true` decodes training crops with: each crop's own f0 per codec frame (200 and
    300 Hz tones), positive everywhere, and no voicing on the masked tail of the shorter crop."""
    audio, mask = _tone_batch()
    f0, voiced = crop_pitch(audio, mask, RATE, 200)
    assert f0.shape == voiced.shape == (2, 40) and bool((f0 > 0).all())
    assert voiced[0, 2:-2].all() and voiced[1, 2:28].all() and not voiced[1, 31:].any()
    assert torch.allclose(f0[0][voiced[0]], torch.tensor(200.0), rtol=0.02)
    assert torch.allclose(f0[1][voiced[1]], torch.tensor(300.0), rtol=0.02)
