"""training/data.py: schema, loading errors, torch view, collation, frame-budget sampler, crops."""

import numpy as np
import pytest
import torch

from training.data import (
    DURATIONS,
    FrameBatchSampler,
    PreparedDataset,
    PreparedDatasetError,
    audio_to_pcm16,
    collate_batch,
    dataset_features,
    load_prepared,
    random_segments,
)

HOP = 200


def _rows(frame_counts, n_q=3):
    rng = np.random.default_rng(0)
    rows = []
    for index, frames in enumerate(frame_counts):
        phones = max(1, frames // 3)
        durations = [1] * phones
        durations[-1] += frames - phones
        rows.append({
            "id": f"utt{index}", "speaker_id": f"spk{index % 2}", "text": "a", "normalized_text": "a",
            "phonemes": ["a"] * phones, "phoneme_ids": list(range(1, phones + 1)),
            "audio": rng.standard_normal(frames * HOP - 7).astype(np.float32).tolist(),
            "sampling_rate": 16000, "num_frames": frames,
            "log_f0": np.full(frames, 5.0, np.float32).tolist(), "voiced": [True] * frames,
            "durations": durations, "codes": rng.integers(0, 256, (n_q, frames)).tolist(),
        })
    return rows


def _split(frame_counts, with_extras=True):
    from datasets import Dataset

    rows = _rows(frame_counts)
    for row in rows:
        row["audio"] = audio_to_pcm16(np.asarray(row["audio"])).tolist()  # the stored dtype (read back as float)
    if not with_extras:
        for row in rows:
            del row["durations"], row["codes"]
    return Dataset.from_list(rows, features=dataset_features(with_durations=with_extras, with_codes=with_extras))


def test_collate_pads_every_field_and_masks():
    dataset = PreparedDataset(_split([4, 9, 6]))
    items = [dataset[i] for i in range(3)]
    batch = collate_batch(items, pad_phoneme_id=0)
    assert batch["ids"] == ["utt0", "utt1", "utt2"]
    assert batch["frame_mask"].shape == (3, 9) and batch["log_f0"].shape == (3, 9)
    assert batch["codes"].shape == (3, 3, 9) and batch["codes"].dtype == torch.long
    assert batch["audio"].shape == (3, 9 * HOP - 7)
    for row, item in enumerate(items):
        frames, phones, samples = item["num_frames"], len(item["phoneme_ids"]), len(item["audio"])
        assert batch["frame_mask"][row].sum() == frames and batch["frame_mask"][row, :frames].all()
        assert batch["phoneme_mask"][row].sum() == phones
        assert batch["audio_mask"][row].sum() == samples
        assert torch.equal(batch["phoneme_ids"][row, :phones], item["phoneme_ids"])
        assert (batch["phoneme_ids"][row, phones:] == 0).all() and (batch["durations"][row, phones:] == 0).all()
        assert batch["durations"][row].sum() == frames  # padding adds no frames
        assert torch.equal(batch["codes"][row, :, :frames], item["codes"])
        assert (batch["codes"][row, :, frames:] == 0).all() and not batch["voiced"][row, frames:].any()
        assert torch.equal(batch["audio"][row, :samples], item["audio"])
        assert (batch["audio"][row, samples:] == 0).all()


def test_dataset_reads_only_requested_columns():
    dataset = PreparedDataset(_split([5]), columns=["audio"])
    assert set(dataset[0]) == {"id", "speaker_id", "num_frames", "audio"}
    batch = collate_batch([dataset[0]])
    assert "phoneme_ids" not in batch and batch["audio_mask"].all()


def test_missing_stage_column_names_the_stage(tmp_path):
    from datasets import DatasetDict

    split = _split([3, 4], with_extras=False)
    DatasetDict({"train": split, "validation": split}).save_to_disk(tmp_path / "prepared")
    assert set(load_prepared(tmp_path / "prepared")) == {"train", "validation"}
    with pytest.raises(PreparedDatasetError, match="--aligner"):
        load_prepared(tmp_path / "prepared", required_columns=[DURATIONS])
    with pytest.raises(PreparedDatasetError, match="--codec"):
        PreparedDataset(split, columns=["codes"])
    with pytest.raises(PreparedDatasetError, match="prepare_dataset.py"):
        load_prepared(tmp_path / "nothing")


@pytest.mark.parametrize("budget", [40, 100, 333])
def test_frame_sampler_budget_and_coverage(budget):
    lengths = np.random.default_rng(1).integers(1, 40, size=200)
    sampler = FrameBatchSampler(lengths, max_frames_per_batch=budget, seed=3)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        for batch in batches:
            assert len(batch) * max(lengths[batch]) <= budget
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(lengths)))  # every item exactly once
        orders.append(flat)
    assert orders[0] != orders[1]  # reshuffled per epoch
    sampler.set_epoch(1)
    assert [i for batch in sampler for i in batch] == orders[1]  # reproducible
    # length bucketing: batches are much less padded than random batches would be
    padded = sum(len(b) * max(lengths[b]) for b in FrameBatchSampler(lengths, budget, shuffle=False))
    assert padded < 1.25 * lengths.sum()


def test_frame_sampler_changes_batch_composition_every_epoch():
    lengths = np.random.default_rng(2).permutation(np.arange(5, 305))  # distinct lengths
    sampler = FrameBatchSampler(lengths, max_frames_per_batch=1200, seed=0)
    compositions = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        compositions.append({frozenset(batch) for batch in sampler})
    assert len(compositions[0] & compositions[1]) < 0.5 * len(compositions[0])  # most batches are new
    assert len(compositions[1] & compositions[2]) < 0.5 * len(compositions[1])
    # without the jitter, a sort rebuilds the same batches every epoch
    plain = FrameBatchSampler(lengths, max_frames_per_batch=1200, seed=0, length_jitter=0.0)
    plain_compositions = []
    for epoch in range(2):
        plain.set_epoch(epoch)
        plain_compositions.append({frozenset(batch) for batch in plain})
    assert plain_compositions[0] == plain_compositions[1]


def test_frame_sampler_rejects_item_over_budget():
    with pytest.raises(ValueError, match="max_frames_per_batch"):
        FrameBatchSampler([5, 50], max_frames_per_batch=20)


def test_sampler_through_accelerate_dataloader():
    from accelerate import Accelerator

    dataset = PreparedDataset(_split([3, 8, 5, 7, 2, 6]))
    sampler = FrameBatchSampler(dataset.lengths, max_frames_per_batch=16, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)
    loader = Accelerator(cpu=True).prepare(loader)
    seen = []
    for batch in loader:
        assert batch["frame_mask"].numel() <= 16
        seen += batch["ids"]
    assert sorted(seen) == sorted(f"utt{i}" for i in range(6))


def test_random_segments_are_windows_of_valid_audio():
    audio = torch.arange(2 * 1000, dtype=torch.float32).reshape(2, 1000)
    mask = torch.ones(2, 1000, dtype=torch.bool)
    mask[1, 300:] = False  # second item: 300 valid samples, shorter than the window
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(20):
        segments, segment_mask = random_segments(audio, mask, 400, generator=generator)
        start = int(segments[0, 0])
        assert start <= 600 and torch.equal(segments[0], torch.arange(start, start + 400, dtype=torch.float32))
        starts.add(start)
        assert torch.equal(segments[1, :300], audio[1, :300]) and (segments[1, 300:] == 0).all()
        assert segment_mask[0].all() and segment_mask[1].sum() == 300
    assert len(starts) > 10


def test_float32_datasets_from_before_compact_storage_read_the_same():
    from datasets import Dataset, Features, List, Value

    compact = _split([5, 8])
    old_features = Features({**compact.features, "audio": List(Value("float32")), "log_f0": List(Value("float32")),
                             "codes": List(List(Value("int32")))})
    old = Dataset.from_list(_rows([5, 8]), features=old_features)
    for new_item, old_item in zip(PreparedDataset(compact), PreparedDataset(old)):
        assert torch.equal(new_item["codes"], old_item["codes"]) and new_item["codes"].dtype == torch.long
        assert torch.equal(new_item["log_f0"], old_item["log_f0"])  # 5.0 is exact in float16
        # int16 PCM: the float32 audio within half a step (clipped at full scale, standard normal noise exceeds 1)
        expected = torch.from_numpy(audio_to_pcm16(old_item["audio"].numpy()).astype(np.float32) / 32768)
        assert torch.allclose(new_item["audio"], expected, atol=0)
        inside = old_item["audio"].abs() < 0.99
        assert (new_item["audio"] - old_item["audio"])[inside].abs().max() <= 0.5 / 32768
