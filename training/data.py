"""The prepared dataset: its schema, loading, a torch view, collation and frame-budget batching.

`training/prepare_dataset.py` writes the dataset; the training scripts (`train_aligner.py`,
`train_codec.py`, `train_ns2.py`) read it through this module, so the contract lives here once.

The prepared dataset is a `datasets.DatasetDict` saved with `save_to_disk(out_dir)`, splits
`train` and `validation`, one row per utterance:

======================  ===========================  ============================================
column                  type                         meaning
======================  ===========================  ============================================
`id`                    str                          utterance id (the audio file's stem)
`speaker_id`            str                          speaker, `"unknown"` when the source has none
`text`                  str                          transcript as given
`normalized_text`       str                          `ns2_hf.text.normalize_text(text)`
`phonemes`              list[str]                    phone tokens, one per duration
`phoneme_ids`           list[int]                    their tokenizer ids
`audio`                 list[int16] or binary        16 kHz mono waveform as 16-bit PCM (the array, not a
                                                     path), or with `--audio_format flac|opus` the bytes
                                                     of such a file; `audio_as_float` reads either back.
                                                     Absent when prepared with `--drop_audio`
`sampling_rate`         int                          rate of `audio` (the codec's)
`num_frames`            int                          `ceil(len(audio) / hop_length)` codec frames
`log_f0`                list[float16] (num_frames)   natural log of f0, interpolated when unvoiced
`voiced`                list[bool] (num_frames)      voicing per frame
`durations`             list[int] (len(phonemes))    frames per phoneme, **sum == num_frames**
                                                     (added by the aligner stage)
`codes`                 list[list[int16]] (n_q, F)   codec codes (added by the codec stage)
======================  ===========================  ============================================

Storage is compact (ours, for hundreds of hours): 16-bit audio, float16 pitch and int16 codes take
116 MB per hour with audio (PCM), 66 MB with FLAC and 14 MB with Opus audio, and 6 MB per hour without
it (measured on the shared corpus, training/README.md).
Datasets prepared before, with float32 `audio`/`log_f0` and int32 `codes`, read the same: the
readers below convert whatever dtype is stored.

Codec latents are not stored: a training script gets them with `codec.codes_to_latents(codes)`.
Beside the splits, `prepare_info.json` records the source, counts, skipped files with reasons,
hop length and sampling rate, the tokenizer's vocabulary hash and the aligner/codec used.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

ID = "id"
SPEAKER_ID = "speaker_id"
TEXT = "text"
NORMALIZED_TEXT = "normalized_text"
PHONEMES = "phonemes"
PHONEME_IDS = "phoneme_ids"
AUDIO = "audio"
SAMPLING_RATE = "sampling_rate"
NUM_FRAMES = "num_frames"
LOG_F0 = "log_f0"
VOICED = "voiced"
DURATIONS = "durations"
CODES = "codes"

UNKNOWN_SPEAKER = "unknown"
SPLITS = ("train", "validation")
PREPARE_INFO_FILE = "prepare_info.json"

FEATURE_COLUMNS = (
    ID, SPEAKER_ID, TEXT, NORMALIZED_TEXT, PHONEMES, PHONEME_IDS, SAMPLING_RATE, NUM_FRAMES, LOG_F0, VOICED,
)
"""Columns every prepared split has (`audio` too, unless it was dropped after the codec stage)."""

PCM_SCALE = 32768
"""Full scale of the int16 `audio` column: a stored sample `s` is the waveform value `s / PCM_SCALE` (soundfile's
scale, so a 16-bit source file is stored exactly)."""

AUDIO_FORMATS = ("pcm16", "flac", "opus")
"""How the `audio` column stores each waveform: `pcm16` int16 samples (116 MB per hour at 16 kHz), `flac` the bytes
of a 16-bit FLAC file (lossless, about 56 % of that), `opus` the bytes of an Ogg Opus file (lossy, about 12 %: for
moving a dataset to a remote machine, not for a reference copy)."""

_SOUNDFILE_FORMATS = {"flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def audio_to_pcm16(waveform: np.ndarray) -> np.ndarray:
    """`(samples,)` float waveform in [-1, 1] → `(samples,)` int16 PCM (rounded, clipped at full scale)."""
    scaled = np.round(np.asarray(waveform, dtype=np.float32) * PCM_SCALE)
    return np.clip(scaled, -PCM_SCALE, PCM_SCALE - 1).astype(np.int16)


def encode_audio(waveform: np.ndarray, sampling_rate: int, audio_format: str = "pcm16"):
    """`(samples,)` float waveform in [-1, 1] → the stored `audio` value of `audio_format` (see `AUDIO_FORMATS`):
    int16 samples, or the bytes of a FLAC / Ogg Opus file (empty bytes for an empty waveform)."""
    if audio_format == "pcm16":
        return audio_to_pcm16(waveform)
    if audio_format not in _SOUNDFILE_FORMATS:
        raise ValueError(f"unknown audio format {audio_format!r}; choose from {AUDIO_FORMATS}.")
    if audio_format == "opus" and sampling_rate not in _OPUS_RATES:
        raise ValueError(f"Opus stores only {_OPUS_RATES} Hz audio, not {sampling_rate} Hz; use --audio_format flac.")
    if len(waveform) == 0:
        return b""
    import soundfile as sf

    file_format, subtype = _SOUNDFILE_FORMATS[audio_format]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0), sampling_rate, format=file_format,
             subtype=subtype)
    return buffer.getvalue()


def audio_as_float(stored) -> np.ndarray:
    """A stored `audio` value (int16 PCM, FLAC/Opus bytes, or the float32 of datasets prepared before) →
    `(samples,)` float32."""
    if isinstance(stored, bytes):
        if not stored:
            return np.zeros(0, np.float32)
        import soundfile as sf

        waveform, _ = sf.read(io.BytesIO(stored), dtype="float32")
        return waveform
    array = np.asarray(stored)
    if array.dtype.kind in "iu":
        return array.astype(np.float32) / PCM_SCALE
    return array.astype(np.float32)


# The stage that adds each optional column, for error messages.
STAGE_OF_COLUMN = {DURATIONS: "--aligner (or --alignments_dir)", CODES: "--codec",
                   AUDIO: "--overwrite and without --drop_audio"}


def dataset_features(with_durations: bool = False, with_codes: bool = False, audio_format: str = "pcm16"):
    """The `datasets.Features` of a prepared split (stage-1 columns plus the optional ones; `audio` as int16 samples
    or, for the `flac`/`opus` `audio_format`, as the bytes of a file)."""
    from datasets import Features, List, Value

    features = {
        ID: Value("string"),
        SPEAKER_ID: Value("string"),
        TEXT: Value("string"),
        NORMALIZED_TEXT: Value("string"),
        PHONEMES: List(Value("string")),
        PHONEME_IDS: List(Value("int32")),
        AUDIO: List(Value("int16")) if audio_format == "pcm16" else Value("binary"),
        SAMPLING_RATE: Value("int32"),
        NUM_FRAMES: Value("int32"),
        LOG_F0: List(Value("float16")),
        VOICED: List(Value("bool")),
    }
    if with_durations:
        features[DURATIONS] = List(Value("int32"))
    if with_codes:
        features[CODES] = List(List(Value("int16")))  # codebook sizes stay below 2**15 (checked by the codec stage)
    return Features(features)


class PreparedDatasetError(ValueError):
    """A prepared dataset is missing, incomplete or inconsistent."""


def load_prepared(path: str | os.PathLike, required_columns: Sequence[str] = ()):
    """Load a dataset written by `prepare_dataset.py`.

    Args:
        path: the `out_dir` given to `prepare_dataset.py`.
        required_columns: columns the caller needs beyond the stage-1 ones, e.g. `("durations",
            "codes")` for NS2 training.

    Returns:
        `datasets.DatasetDict` with splits `train` and `validation`.

    Raises:
        PreparedDatasetError: the folder is not a prepared dataset, or a needed column is missing
            (the message names the `prepare_dataset.py` stage that adds it).
    """
    from datasets import DatasetDict, load_from_disk

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise PreparedDatasetError(f"no prepared dataset at {path!r}; run training/prepare_dataset.py first.")
    try:
        dataset = load_from_disk(path)
    except FileNotFoundError as error:
        raise PreparedDatasetError(
            f"{path!r} is not a saved dataset ({error}); run training/prepare_dataset.py first."
        ) from error
    if not isinstance(dataset, DatasetDict) or set(SPLITS) - set(dataset):
        raise PreparedDatasetError(f"{path!r} must hold a DatasetDict with splits {SPLITS}.")
    for split in SPLITS:
        missing = [c for c in (*FEATURE_COLUMNS, *required_columns) if c not in dataset[split].column_names]
        if missing:
            stages = sorted({STAGE_OF_COLUMN.get(c, "(features)") for c in missing})
            raise PreparedDatasetError(
                f"the {split!r} split of {path!r} lacks column(s) {missing}; "
                f"run prepare_dataset.py with {' and '.join(stages)} first."
            )
    return dataset


def read_prepare_info(path: str | os.PathLike) -> dict:
    """The `prepare_info.json` of a prepared dataset (empty dict if absent)."""
    info_path = os.path.join(os.fspath(path), PREPARE_INFO_FILE)
    if not os.path.isfile(info_path):
        return {}
    with open(info_path, encoding="utf-8") as handle:
        return json.load(handle)


class PreparedDataset(torch.utils.data.Dataset):
    """A torch view of one prepared split: each item is a dict of tensors.

    Item fields (those whose columns exist and are requested): `id`, `speaker_id` (str),
    `phoneme_ids` `(L,)` long, `durations` `(L,)` long, `log_f0` `(F,)` float32, `voiced` `(F,)`
    bool, `codes` `(n_q, F)` long, `audio` `(T,)` float32, `num_frames` int (whatever the compact dtype
    on disk: int16 PCM audio is scaled back to [-1, 1]).

    Args:
        split: a `datasets.Dataset` (one split of `load_prepared`'s result).
        columns: the tensor columns to read (default: all present of the above). Reading fewer,
            e.g. `("audio",)` for codec training, avoids converting the rest.
    """

    TENSOR_COLUMNS = (PHONEME_IDS, DURATIONS, LOG_F0, VOICED, CODES, AUDIO)
    _DTYPES = {PHONEME_IDS: torch.long, DURATIONS: torch.long, LOG_F0: torch.float32, VOICED: torch.bool,
               CODES: torch.long, AUDIO: torch.float32}

    def __init__(self, split, columns: Optional[Sequence[str]] = None):
        present = set(split.column_names)
        if columns is None:
            columns = [c for c in self.TENSOR_COLUMNS if c in present]
        unknown = [c for c in columns if c not in self.TENSOR_COLUMNS]
        if unknown:
            raise ValueError(f"columns {unknown} are not tensor columns; choose from {self.TENSOR_COLUMNS}.")
        missing = [c for c in columns if c not in present]
        if missing:
            stages = sorted({STAGE_OF_COLUMN.get(c, "(features)") for c in missing})
            raise PreparedDatasetError(
                f"the dataset lacks column(s) {missing}; run prepare_dataset.py with {' and '.join(stages)} first."
            )
        self.columns = tuple(columns)
        self.split = split
        self._rows = split.with_format("numpy", columns=[ID, SPEAKER_ID, NUM_FRAMES, *self.columns])
        self.lengths: List[int] = [int(n) for n in split[NUM_FRAMES]]
        """Codec frames per item (for :class:`FrameBatchSampler`)."""

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> Dict[str, object]:
        row = self._rows[int(index)]
        item = {ID: str(row[ID]), SPEAKER_ID: str(row[SPEAKER_ID]), NUM_FRAMES: int(row[NUM_FRAMES])}
        for column in self.columns:
            value = audio_as_float(row[column]) if column == AUDIO else np.asarray(row[column])
            item[column] = torch.as_tensor(value, dtype=self._DTYPES[column])
        return item


def _pad_stack(tensors: Sequence[torch.Tensor], length: int, value=0) -> torch.Tensor:
    """Right-pad each tensor's last axis to `length` and stack."""
    return torch.stack([torch.nn.functional.pad(t, (0, length - t.shape[-1]), value=value) for t in tensors])


def _lengths_mask(lengths: Sequence[int], length: int) -> torch.Tensor:
    return torch.arange(length)[None, :] < torch.as_tensor(lengths)[:, None]


def collate_batch(items: Sequence[Dict[str, object]], pad_phoneme_id: int = 0) -> Dict[str, object]:
    """Pad a list of :class:`PreparedDataset` items into a batch (masks: True = valid).

    Returns a dict with `ids`, `speaker_ids` (lists of str), `num_frames` `(B,)` long,
    `frame_mask` `(B, F)` bool, and for the columns the items carry:
    `phoneme_ids` `(B, L)` long (padded with `pad_phoneme_id`), `phoneme_mask` `(B, L)` bool,
    `durations` `(B, L)` long (0 on padding), `log_f0` `(B, F)` float32, `voiced` `(B, F)` bool,
    `codes` `(B, n_q, F)` long, `audio` `(B, T)` float32, `audio_mask` `(B, T)` bool
    (0 / False on padding). `F` is the longest `num_frames`, `T` the longest audio.
    """
    if not items:
        raise ValueError("cannot collate an empty batch.")
    num_frames = [int(item[NUM_FRAMES]) for item in items]
    max_frames = max(num_frames)
    batch: Dict[str, object] = {
        "ids": [item[ID] for item in items],
        "speaker_ids": [item[SPEAKER_ID] for item in items],
        NUM_FRAMES: torch.tensor(num_frames, dtype=torch.long),
        "frame_mask": _lengths_mask(num_frames, max_frames),
    }
    first = items[0]
    if PHONEME_IDS in first:
        phoneme_lengths = [len(item[PHONEME_IDS]) for item in items]
        batch[PHONEME_IDS] = _pad_stack([item[PHONEME_IDS] for item in items], max(phoneme_lengths), pad_phoneme_id)
        batch["phoneme_mask"] = _lengths_mask(phoneme_lengths, max(phoneme_lengths))
    if DURATIONS in first:
        batch[DURATIONS] = _pad_stack([item[DURATIONS] for item in items], batch[PHONEME_IDS].shape[1])
    for column in (LOG_F0, VOICED, CODES):
        if column in first:
            batch[column] = _pad_stack([item[column] for item in items], max_frames)
    if AUDIO in first:
        audio_lengths = [len(item[AUDIO]) for item in items]
        batch[AUDIO] = _pad_stack([item[AUDIO] for item in items], max(audio_lengths))
        batch["audio_mask"] = _lengths_mask(audio_lengths, max(audio_lengths))
    return batch


class FrameBatchSampler(torch.utils.data.Sampler):
    """Batches of indices whose *padded* size, `len(batch) * longest num_frames`, stays within
    `max_frames_per_batch`.

    Each epoch (everything drawn from `seed + epoch`): sort by length times a random factor in
    `[1 - length_jitter, 1 + length_jitter]`, cut greedily into batches within the budget (counted on the
    true lengths), shuffle the batch order. The jitter makes batches of similar lengths whose composition
    changes from epoch to epoch (a plain sort would rebuild the same batches every epoch; ours, in the spirit
    of lhotse's bucketing samplers). Every index appears exactly once per epoch; the number of batches can
    differ a little between epochs (`num_batches(epoch)`; `len()` is the current epoch's).

    Pass it to `DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)`. With
    accelerate on several processes, build the `Accelerator` with
    `dataloader_config=DataLoaderConfiguration(even_batches=False)` (batch sizes vary), and call
    `sampler.set_epoch(epoch)` before each epoch (also after `--resume`, before skipping batches;
    `trainer_utils.batches_from` does both).

    Args:
        lengths: frames per item (`PreparedDataset.lengths`).
        max_frames_per_batch: budget on padded frames per batch.
        shuffle: False gives sorted batches in sorted order (validation).
        seed: base seed of the per-epoch shuffles.
        length_jitter: relative noise on the lengths before sorting (0 = plain sort: the same batches every
            epoch, only their order shuffled). The default 0.1 pads about 6% more frames than a plain sort
            (0.05: 3%; measured on 5000 lengths of 1-20 s, 6000-frame batches).

    Raises:
        ValueError: if an item alone exceeds the budget (filter with `--max_seconds` or raise it).
    """

    def __init__(self, lengths: Sequence[int], max_frames_per_batch: int, shuffle: bool = True, seed: int = 0,
                 length_jitter: float = 0.1):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if max_frames_per_batch <= 0:
            raise ValueError(f"max_frames_per_batch must be positive, got {max_frames_per_batch}.")
        if not 0.0 <= length_jitter < 1.0:
            raise ValueError(f"length_jitter must be in [0, 1), got {length_jitter}.")
        if len(self.lengths) and self.lengths.max() > max_frames_per_batch:
            longest = int(np.argmax(self.lengths))
            raise ValueError(
                f"item {longest} has {self.lengths[longest]} frames, more than max_frames_per_batch="
                f"{max_frames_per_batch}; raise the budget or drop long utterances (prepare_dataset.py --max_seconds)."
            )
        self.max_frames_per_batch = int(max_frames_per_batch)
        self.shuffle = shuffle
        self.seed = seed
        self.length_jitter = float(length_jitter)
        self.epoch = 0
        self._epoch_batches: Dict[int, List[List[int]]] = {}  # the last epoch built, by epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle `__iter__` yields."""
        self.epoch = int(epoch)

    def _make_batches(self, ordered_indices: np.ndarray) -> List[List[int]]:
        batches: List[List[int]] = []
        current: List[int] = []
        longest = 0
        for index in ordered_indices:  # (nearly) ascending length
            length = int(self.lengths[index])
            if current and (len(current) + 1) * max(longest, length) > self.max_frames_per_batch:
                batches.append(current)
                current, longest = [], 0
            current.append(int(index))
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def batches(self, epoch: int) -> List[List[int]]:
        """The batches of `epoch`, in the order they are yielded (depends on `seed` and `epoch` only)."""
        if not self.shuffle:
            return self._make_batches(np.argsort(self.lengths, kind="stable"))
        if epoch not in self._epoch_batches:
            rng = np.random.default_rng(self.seed + epoch)
            order = rng.permutation(len(self.lengths))
            jitter = rng.uniform(1 - self.length_jitter, 1 + self.length_jitter, len(order))
            batches = self._make_batches(order[np.argsort(self.lengths[order] * jitter, kind="stable")])
            self._epoch_batches = {epoch: [batches[index] for index in rng.permutation(len(batches))]}
        return self._epoch_batches[epoch]

    def num_batches(self, epoch: int) -> int:
        return len(self.batches(epoch))

    def __iter__(self) -> Iterator[List[int]]:
        yield from self.batches(self.epoch)

    def __len__(self) -> int:
        return self.num_batches(self.epoch)


BATCH_SEED = "batch_seed"


class SeededBatches(torch.utils.data.Sampler):
    """A batch sampler whose batches carry their own seed, for random work done in the `collate_fn`.

    Yields each batch of `batch_sampler` as `[(batch_seed, index), ...]` (the dataset wrapped in `SeededItems`
    hands `batch_seed` to the collate function with every item). `batch_seed` comes from `(seed, epoch, batch
    number)` alone, so a batch gets the same random draws whichever DataLoader worker collates it, on any
    process (the batch number counts the batches of all processes), and after a resume that skips the batches
    before it. The sampler runs in the training process, the collate function in the workers: random crops
    and augmentation there run beside the training step.

    Args:
        batch_sampler: yields lists of dataset indices, has `set_epoch` (e.g. `FrameBatchSampler`).
        seed: the run's seed.
    """

    def __init__(self, batch_sampler, seed: int = 0):
        self.batch_sampler = batch_sampler
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[List[tuple]]:
        for number, batch in enumerate(self.batch_sampler):
            batch_seed = int(np.random.SeedSequence([self.seed, self.epoch, number]).generate_state(1)[0])
            yield [(batch_seed, index) for index in batch]

    def __len__(self) -> int:
        return len(self.batch_sampler)


class SeededItems(torch.utils.data.Dataset):
    """`dataset[(batch_seed, index)]` = `dataset[index]` with `batch_seed` added (see `SeededBatches`)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple) -> Dict[str, object]:
        batch_seed, index = key
        return {**self.dataset[index], BATCH_SEED: batch_seed}


def random_segments(
    audio: torch.Tensor,
    audio_mask: torch.Tensor,
    segment_samples: int,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop a random window of `segment_samples` from each item's valid audio (codec training).

    Args:
        audio: `(batch, samples)` padded waveforms.
        audio_mask: `(batch, samples)` bool, True on valid samples.
        segment_samples: window length.
        generator: for reproducible window starts.

    Returns:
        `segments` `(batch, segment_samples)` float and `segment_mask` `(batch, segment_samples)`
        bool. An item shorter than the window is taken whole and zero-padded (mask False there).
    """
    if segment_samples <= 0:
        raise ValueError(f"segment_samples must be positive, got {segment_samples}.")
    valid = audio_mask.sum(dim=1)
    segments = audio.new_zeros(audio.shape[0], segment_samples)
    segment_mask = torch.zeros(audio.shape[0], segment_samples, dtype=torch.bool, device=audio.device)
    for row, length in enumerate(valid.tolist()):
        span = max(length - segment_samples, 0)
        start = int(torch.randint(span + 1, (1,), generator=generator)) if span else 0
        taken = min(segment_samples, length)
        segments[row, :taken] = audio[row, start:start + taken]
        segment_mask[row, :taken] = True
    return segments, segment_mask


def num_frames_for(num_samples: int, hop_length: int) -> int:
    """Codec frames for `num_samples` samples: `ceil(num_samples / hop_length)`."""
    return math.ceil(num_samples / hop_length)
