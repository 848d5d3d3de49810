"""Turn a speech corpus into the prepared dataset the training scripts read.

The dataset's schema is documented in `training/data.py`. Three stages, each adding columns:

1. **features** (always): load each file (downmix, resample to the codec's rate), normalise the
   text, phonemize and tokenize it, extract frame-level pitch at the codec hop, count frames;
   drop utterances outside `--min_seconds`/`--max_seconds`; split into `train`/`validation`.
2. **durations**: `--aligner DIR` (a trained `NS2AlignerModel` folder) runs monotonic alignment
   search over each utterance; or `--alignments_dir DIR` imports reference timings (MFA
   `<id>.TextGrid` or the corpus' festival `<id>.json`): festival radio / ARPAbet labels are mapped
   to the front end's gruut IPA phones and their frames put on the utterance's own tokens
   (`ns2_hf.alignment.phone_mapping`), so `phonemes`, `phoneme_ids` and the tokenizer stay the
   pipeline's; unknown labels stop the stage with an error naming them.
3. **codes**: `--codec DIR` (a trained `NS2CodecModel` folder, or any codec of `ns2_hf.latent_codecs`: a DAC,
   EnCodec or Mimi checkpoint such as `descript/dac_16khz`) encodes every utterance; `--drop_audio` then
   removes the audio column.

Storage is compact (ours): audio as 16-bit PCM (or, with `--audio_format flac|opus`, as the bytes of a FLAC or Ogg
Opus file), pitch as float16, codes as int16 (`training/data.py`).

The aligner and codec stages run batched on `--device` (default: CUDA when there is a GPU, else the CPU).

`--shard I/N` prepares every N-th source row (from row I) of several workers or nodes, unsplit; `--merge SHARD_DIR...`
then joins the N folders into the dataset one run would have made (same rows, order, split and tokenizer).

With `--augment_speakers N` the features stage also makes N new speakers from the real ones (ours,
`training/voice_augmentation.py`): each is one real speaker's utterances with pitch, formants and
tempo changed by the same transform, under a new speaker id (`<speaker>_aug<k>`, utterance ids
`<id>_aug<k>`), so its prompts are always its own utterances. Held-out speakers are never augmented;
the transforms are listed in `prepare_info.json` (`augmented_speakers`).

Files that cannot be used (unreadable, silent, text that does not phonemize, audio too short for
its phonemes, no reference alignment) are skipped, printed and listed with the reason in
`prepare_info.json`; the job goes on.

Re-running on an existing `--output_dir` keeps what is there and only adds the stages that are
missing (a run with nothing to add writes nothing); `--overwrite` starts from scratch. Results are
written to a temporary folder beside `--output_dir` and swapped in at the end, so an interrupted
run leaves a finished dataset untouched.

The features, aligner and codec stages resume (ours; importing `--alignments_dir` is quick and runs again). The
features stage runs over chunks of `--resume_chunk_rows` source rows (default 1000, cut in source order, so the same
on every run) and keeps each finished chunk in `<output_dir>.resume-<key>`, where `<key>` hashes what changes a
chunk's rows (source and its columns, `--shard`, duration limits, `--audio_format`, the codec's rate and hop, the
tokenizer, the chunk size). The aligner and codec stages run over chunks of
`--resume_chunk_rows` rows of each split, a resume folder per stage and split holding just the new column
(`durations`, `codes`); its key hashes the split's rows (ids, frame counts, phoneme ids, audio lengths and types), the
model (a folder's path and its files' sizes and times; a Hub id as given), `--batch_size`, the device type and the
chunk size, so a retrained or other model, or other rows, never reuse them. This holds for a run of all stages and
for a run adding a stage to an existing dataset. A chunk is written in the run's work folder and moved into its
resume folder whole, so the folder never holds a half-written one. A re-run with the same arguments (with or
without `--overwrite`) reads the finished chunks back, prints how many rows of each stage it resumed and computes
only the rest; the run's resume folders are removed once the dataset is swapped in. Ctrl-C and SIGTERM remove the
run's work folder and keep the resume folders; what a killed run (SIGKILL) left beside `--output_dir` (its work
folder, unfinished results) is removed by the next run on it, which names the resume folders it keeps and what they
hold. The keys do not cover the audio files themselves (a local metadata table's size and time are): after editing
the audio of an interrupted run, remove its resume folders.

Typical flow for the shared corpus (see training/README.md)::

    python training/prepare_dataset.py --audiofolder ../shared/corpus/ns2-offline-en \\
        --output_dir data/prepared --codec_config tiny --num_proc 2
    accelerate launch training/train_aligner.py --dataset data/prepared --output_dir runs/aligner
    python training/prepare_dataset.py --audiofolder ../shared/corpus/ns2-offline-en \\
        --output_dir data/prepared --aligner runs/aligner
    # ... train the codec, then
    python training/prepare_dataset.py ... --output_dir data/prepared --codec runs/codec/best

Sources besides `--audiofolder` and `--manifest`, all through `--dataset`:

- a Hub dataset (e.g. `--dataset blabble-io/libritts_r --dataset_config clean --dataset_split train.clean.100
  --text_column text_normalized --speaker_column speaker_id`), read with `datasets.load_dataset`;
- data files: `--dataset parquet --data_files 'shards/*.parquet'` (or `arrow`, `json`, `csv`);
- a `save_to_disk` folder (read with `load_from_disk`; of a `DatasetDict`, the `--dataset_split` split);
- `--streaming` (Hub ids and data files): `load_dataset(..., streaming=True)`, rows read and prepared chunk by
  chunk without downloading the set first. A resumed stream still reads through its finished chunks (not
  processing them), `--shard I/N` keeps every N-th row of the whole stream (each shard reads all of it), and a
  duplicated utterance id stops the run when it comes rather than before the first chunk.

Their audio column is read undecoded (`Audio(decode=False)`: bytes or path) and decoded here with soundfile, so no
torchcodec is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ns2_hf.audio import AudioInputError, check_waveform, load_audio  # noqa: E402
from ns2_hf.audio.pitch import extract_pitch  # noqa: E402
from training.voice_augmentation import draw_transforms, transform_voice  # noqa: E402
from training.data import (  # noqa: E402
    AUDIO, AUDIO_FORMATS, CODES, DURATIONS, ID, LOG_F0, NORMALIZED_TEXT, NUM_FRAMES, PHONEME_IDS, PHONEMES,
    PREPARE_INFO_FILE, SAMPLING_RATE, SPEAKER_ID, TEXT, UNKNOWN_SPEAKER, VOICED,
    audio_as_float, dataset_features, encode_audio, num_frames_for, read_prepare_info,
)

TOKENIZER_DIR = "tokenizer"
"""Sub-folder of the prepared dataset holding the tokenizer that produced `phoneme_ids`."""

SKIP_REASON = "skip_reason"  # temporary column: "" for usable rows
SOURCE_INDEX = "source_index"  # temporary column: the row's place in the source, kept by --shard for --merge


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset",
                        help="Hub dataset id, a builder with --data_files (parquet, arrow, json, csv), a local dataset "
                             "folder for datasets.load_dataset, or a save_to_disk folder (read with load_from_disk).")
    source.add_argument("--audiofolder", help="Folder with metadata.csv/.jsonl (column file_name) and the audio.")
    source.add_argument("--manifest", help="CSV or JSONL file: audio path (relative to the file), text, speaker.")
    source.add_argument("--merge", nargs="+", metavar="SHARD_DIR",
                        help="Merge the folders of a --shard run (all N shards, same stages) into --output_dir: the "
                             "same rows, order, split and tokenizer as preparing the source in one run.")
    parser.add_argument("--dataset_config", default=None, help="Configuration name for --dataset.")
    parser.add_argument("--dataset_split", default="train",
                        help="Split of --dataset to read (also of a saved DatasetDict).")
    parser.add_argument("--data_files", nargs="+", default=None, metavar="FILE",
                        help="Files or globs for --dataset, e.g. --dataset parquet --data_files 'shards/*.parquet'.")
    parser.add_argument("--streaming", action="store_true",
                        help="Read --dataset with load_dataset(streaming=True): rows are read and prepared chunk by "
                             "chunk, nothing is downloaded first.")
    parser.add_argument("--audio_column", default=None,
                        help="Audio column (default: 'audio' for --dataset/--manifest, 'file_name' for --audiofolder).")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--speaker_column", default="speaker_id",
                        help="Speaker column; utterances of a source without it get speaker 'unknown'.")
    parser.add_argument("--id_column", default=None, help="Utterance id column (default: the audio file's stem).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--codec_config", default=None,
                        help="Where sampling rate and hop length come from: 'tiny', 'base' or a codec config/model "
                             "folder (default: the --codec folder if given, else 'base').")
    parser.add_argument("--min_seconds", type=float, default=0.5)
    parser.add_argument("--max_seconds", type=float, default=20.0)
    parser.add_argument("--validation_fraction", type=float, default=0.02,
                        help="Fraction of each speaker's utterances held out (at least one per speaker with 2+).")
    parser.add_argument("--holdout_speakers", default="", help="Comma-separated speakers put wholly in validation.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_proc", type=int, default=1, help="Processes for the features stage.")
    parser.add_argument("--aligner", default=None, help="Trained NS2AlignerModel folder: adds durations.")
    parser.add_argument("--alignments_dir", default=None,
                        help="Reference alignments (<id>.TextGrid or <id>.json): adds durations and replaces phonemes.")
    parser.add_argument("--textgrid_tier", default="phones")
    parser.add_argument("--codec", default=None,
                        help="Codec that adds codes: a trained NS2CodecModel folder, a saved DAC/EnCodec/Mimi adapter "
                             "folder, or a transformers DAC/EnCodec/Mimi checkpoint (Hub id or folder).")
    parser.add_argument("--drop_audio", action="store_true",
                        help="Remove the audio column once codes exist (with --codec, or on a dataset that has codes): "
                             "about 6 MB instead of 116 MB per hour; NS2 training needs only codes, but the aligner "
                             "stage, codec training and train_ns2's logged examples need the audio.")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="Prepare only source rows I, I+N, I+2N, ... (0 <= I < N), e.g. one worker or node of N; "
                             "the shard is not split into train/validation until --merge.")
    parser.add_argument("--batch_size", type=int, default=16, help="Utterances per aligner/codec forward pass.")
    parser.add_argument("--device", default=None,
                        help="Torch device of the aligner and codec stages (default: cuda if available, else cpu).")
    parser.add_argument("--audio_format", default="pcm16", choices=AUDIO_FORMATS,
                        help="How the features stage stores audio: int16 samples (pcm16), lossless FLAC bytes (about "
                             "56 %% of pcm16) or lossy Ogg Opus bytes (about 12 %%, e.g. to copy a dataset to a remote "
                             "machine); every reader decodes them the same way.")
    parser.add_argument("--overwrite", action="store_true", help="Ignore an existing --output_dir and redo everything.")
    parser.add_argument("--resume_chunk_rows", type=int, default=1000,
                        help="The features, aligner and codec stages keep each finished chunk of this many rows "
                             "(source rows; rows of a split for the aligner and codec) in a <output_dir>.resume-<key> "
                             "folder until the dataset is saved; a re-run with the same arguments skips them.")
    parser.add_argument("--augment_speakers", type=int, default=0,
                        help="Add this many augmented speakers (pitch/formant/tempo-shifted copies of real speakers, "
                             "training/voice_augmentation.py) in the features stage.")
    args = parser.parse_args(argv)
    if args.shard:
        index, _, count = args.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            parser.error(f"--shard must be I/N with 0 <= I < N, got {args.shard!r}.")
        args.shard = (int(index), int(count))
        if args.augment_speakers:
            parser.error("--augment_speakers needs every utterance of a speaker: not with --shard.")
    if args.merge and (args.shard or args.aligner or args.alignments_dir or args.codec or args.drop_audio):
        parser.error("--merge only merges; run the stages on the shards (or on the merged folder).")
    if (args.data_files or args.streaming) and not args.dataset:
        parser.error("--data_files and --streaming read a --dataset source.")
    if args.resume_chunk_rows < 1:
        parser.error("--resume_chunk_rows must be at least 1.")
    if args.aligner and args.alignments_dir:
        parser.error("give either --aligner or --alignments_dir, not both.")
    if not 0.0 <= args.validation_fraction < 1.0:
        parser.error("--validation_fraction must be in [0, 1).")
    return args


# ----------------------------------------------------------------------------------------------
# Source: any of the three inputs becomes rows of (id, speaker_id, text, path | bytes)
# ----------------------------------------------------------------------------------------------

def read_source(args: argparse.Namespace, work_dir: Path):
    """The source corpus as rows with columns `id`, `speaker_id`, `text`, `source_index`, `audio_path` (str or None)
    and `audio_bytes` (bytes or None); audio is not decoded. A `datasets.Dataset`, or with `--streaming` an iterator
    of such rows (dicts), read as they are consumed."""
    rows, audio_column, base_dir = open_source(args)
    has_speaker = args.speaker_column in rows.column_names

    def to_source_row(example, index):
        audio = example[audio_column]
        path, data = (audio.get("path"), audio.get("bytes")) if isinstance(audio, dict) else (audio, None)
        if path is not None and base_dir is not None and not os.path.isabs(path):
            path = str(base_dir / path)
        if args.id_column:
            utterance_id = str(example[args.id_column])
        else:
            utterance_id = Path(path).stem if path else f"utt{index:08d}"
        speaker = example[args.speaker_column] if has_speaker else None
        return {
            ID: utterance_id,
            SPEAKER_ID: UNKNOWN_SPEAKER if speaker in (None, "") else str(speaker),
            TEXT: example[args.text_column] or "",
            SOURCE_INDEX: index,
            "audio_path": path if data is None else None,
            "audio_bytes": data,
        }

    if args.streaming:
        return _streamed_source_rows(rows, to_source_row, args.shard)
    source = rows.map(to_source_row, with_indices=True, remove_columns=rows.column_names, features=source_features(),
                      desc="reading source", cache_file_name=str(work_dir / "source.arrow"))
    duplicates = len(source) - len(set(source[ID]))
    if duplicates:
        raise ValueError(f"{duplicates} utterance ids are duplicated; give a unique --id_column.")
    if args.shard:
        index, count = args.shard
        source = source.shard(num_shards=count, index=index, contiguous=False)  # rows index, index + count, ...
    return source


def open_source(args: argparse.Namespace):
    """`(rows, audio column, folder relative audio paths start from)` of `--dataset`, `--audiofolder` or
    `--manifest`; a `--dataset`'s audio column is cast to `Audio(decode=False)` (bytes and path, decoded later with
    soundfile: no torchcodec)."""
    from datasets import Audio, DatasetDict, load_dataset, load_from_disk

    if args.dataset:
        if is_saved_dataset(args.dataset):
            if args.streaming or args.data_files:
                raise ValueError(f"{args.dataset} is a save_to_disk folder (read memory-mapped with load_from_disk): "
                                 "--streaming and --data_files do not apply.")
            rows = load_from_disk(args.dataset)
            if isinstance(rows, DatasetDict):
                if args.dataset_split not in rows:
                    raise ValueError(f"{args.dataset} has splits {list(rows)}, not {args.dataset_split!r}; choose one "
                                     "with --dataset_split.")
                rows = rows[args.dataset_split]
        else:
            rows = load_dataset(args.dataset, args.dataset_config, data_files=_data_files(args),
                                split=args.dataset_split, streaming=args.streaming)
            if args.streaming and rows.features is None:
                rows = rows._resolve_features()  # a json/csv stream: its columns come from its first rows
        audio_column = args.audio_column or "audio"
        _require_columns(rows, [audio_column, args.text_column], args.dataset)
        return rows.cast_column(audio_column, Audio(decode=False)), audio_column, None
    table = source_table(args)
    if args.audiofolder:
        if table is None:
            raise FileNotFoundError(f"{args.audiofolder} has no metadata.csv or metadata.jsonl (audiofolder layout).")
        audio_column = args.audio_column or "file_name"
    else:
        audio_column = args.audio_column or "audio"
    # Read the table directly: datasets' audiofolder builder encodes audio, which needs torchcodec.
    rows = load_dataset("json" if table.suffix == ".jsonl" else "csv", data_files=str(table), split="train")
    _require_columns(rows, [audio_column, args.text_column], str(table))
    return rows, audio_column, table.parent


def is_saved_dataset(path: str) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return any((Path(path) / name).is_file() for name in ("state.json", "dataset_dict.json"))


def source_table(args: argparse.Namespace) -> Optional[Path]:
    """The metadata table of `--audiofolder` (None if it has none) or the `--manifest` file; None for `--dataset`."""
    if args.audiofolder:
        tables = [Path(args.audiofolder) / name for name in ("metadata.csv", "metadata.jsonl")]
        return next((path for path in tables if path.is_file()), None)
    return Path(args.manifest) if args.manifest else None


def _data_files(args: argparse.Namespace) -> Optional[List[str]]:
    """`--data_files` with local paths made absolute (what is recorded and checked on a re-run); URLs as given."""
    if not args.data_files:
        return None
    return [name if "://" in name else os.path.abspath(name) for name in args.data_files]


def source_features():
    """The columns of `read_source`'s rows."""
    from datasets import Features, Value

    return Features({ID: Value("string"), SPEAKER_ID: Value("string"), TEXT: Value("string"),
                     SOURCE_INDEX: Value("int64"), "audio_path": Value("string"), "audio_bytes": Value("binary")})


def _streamed_source_rows(rows, to_source_row, shard):
    """`to_source_row` of each streamed row (every N-th from row I with `--shard I/N`: every shard reads the whole
    stream and prepares its own rows); a duplicated utterance id stops the stream when it comes."""
    seen = set()
    for index, example in enumerate(rows):
        row = to_source_row(example, index)
        if row[ID] in seen:
            raise ValueError(f"utterance id {row[ID]!r} (source row {index}) is duplicated; give a unique --id_column.")
        seen.add(row[ID])
        if not shard or index % shard[1] == shard[0]:
            yield row


def _require_columns(rows, columns, name):
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; its columns are {rows.column_names} "
                         "(choose with --audio_column/--text_column).")


def describe_source(args: argparse.Namespace) -> dict:
    """What was read, for prepare_info.json and for checking a re-run reads the same (`data_files` and
    `augment_speakers` only when given, so that folders prepared before those options existed still match)."""
    described = {
        "dataset": args.dataset, "dataset_config": args.dataset_config,
        "dataset_split": args.dataset_split if args.dataset else None,
        "audiofolder": os.path.abspath(args.audiofolder) if args.audiofolder else None,
        "manifest": os.path.abspath(args.manifest) if args.manifest else None,
        "min_seconds": args.min_seconds, "max_seconds": args.max_seconds,
        "validation_fraction": args.validation_fraction, "holdout_speakers": _holdout(args), "seed": args.seed,
    }
    if args.data_files:
        described["data_files"] = _data_files(args)
    if args.augment_speakers:
        described["augment_speakers"] = args.augment_speakers
    if args.shard:
        described["shard"] = list(args.shard)
    return described


def _holdout(args) -> List[str]:
    return [s.strip() for s in args.holdout_speakers.split(",") if s.strip()]


def codec_config_from(name: Optional[str], codec_dir: Optional[str]):
    """The codec config that fixes sampling rate and hop length: 'tiny', 'base', a codec (any that
    `ns2_hf.pipelines.loading.load_latent_codec` loads: a folder or a DAC/EnCodec/Mimi Hub id), or
    (by default) the `--codec` one's config, else 'base'."""
    from ns2_hf.codec import NS2CodecConfig
    from ns2_hf.pipelines.loading import load_latent_codec_config

    name = name or codec_dir or "base"
    if name == "tiny":
        return NS2CodecConfig.tiny()
    if name == "base":
        return NS2CodecConfig()
    return load_latent_codec_config(name)


# ----------------------------------------------------------------------------------------------
# Stage 1: features
# ----------------------------------------------------------------------------------------------

def utterance_features(example, tokenizer, sampling_rate, hop_length, min_seconds, max_seconds,
                       audio_format="pcm16") -> dict:
    """Stage-1 columns of one utterance, plus `skip_reason` ("" when usable)."""
    from ns2_hf.text import normalize_text, phonemize

    # Placeholder for skipped rows, typed like the real values so that arrow can concatenate them.
    empty = {NORMALIZED_TEXT: "", PHONEMES: [], PHONEME_IDS: [], AUDIO: encode_audio(np.zeros(0), sampling_rate,
                                                                                     audio_format),
             SAMPLING_RATE: sampling_rate, NUM_FRAMES: 0, LOG_F0: np.zeros(0, np.float32), VOICED: np.zeros(0, bool)}
    source = example["audio_path"]
    try:
        if example["audio_bytes"] is not None:
            import soundfile as sf

            array, rate = sf.read(io.BytesIO(example["audio_bytes"]), dtype="float32")
            source = array.T if array.ndim == 2 else array
            waveform = load_audio(source, sampling_rate=rate, target_sampling_rate=sampling_rate)
        else:
            waveform = load_audio(source, target_sampling_rate=sampling_rate)
        waveform = check_waveform(waveform, None, sampling_rate, allow_silence=False)
    except (AudioInputError, RuntimeError) as error:  # soundfile raises RuntimeError for bad bytes
        return {**empty, SKIP_REASON: f"audio unusable: {error}"}
    seconds = len(waveform) / sampling_rate
    if not min_seconds <= seconds <= max_seconds:
        return {**empty, SKIP_REASON: f"duration {seconds:.2f} s outside [{min_seconds}, {max_seconds}] s"}
    try:
        phonemes = phonemize(example[TEXT])
    except ValueError as error:
        return {**empty, SKIP_REASON: f"text does not phonemize: {error}"}
    num_frames = num_frames_for(len(waveform), hop_length)
    if num_frames < len(phonemes):
        return {**empty, SKIP_REASON: f"{num_frames} frames for {len(phonemes)} phonemes (audio too short for text)"}
    log_f0, voiced = extract_pitch(waveform, sampling_rate, hop_length, num_frames=num_frames)
    return {
        NORMALIZED_TEXT: normalize_text(example[TEXT]),
        PHONEMES: phonemes,
        PHONEME_IDS: tokenizer.encode_phonemes(phonemes),
        AUDIO: encode_audio(waveform, sampling_rate, audio_format),
        SAMPLING_RATE: sampling_rate,
        NUM_FRAMES: num_frames,
        LOG_F0: log_f0,
        VOICED: voiced,
        SKIP_REASON: "",
    }


def features_stage(source, tokenizer, codec_config, args, work_dir: Path, resume_dir: Path):
    """Stage 1 over the whole source, in chunks of `--resume_chunk_rows` source rows kept in `resume_dir`
    (`chunks_with_resume`). Returns the usable rows and the skipped ones."""
    from datasets import Features, Value

    features = Features({**dataset_features(audio_format=args.audio_format), SKIP_REASON: Value("string"),
                         SOURCE_INDEX: Value("int64")})

    def compute(rows, cache_file_name, number):
        return rows.map(
            utterance_features,
            fn_kwargs=dict(tokenizer=tokenizer, sampling_rate=codec_config.sampling_rate,
                           hop_length=codec_config.hop_length, min_seconds=args.min_seconds,
                           max_seconds=args.max_seconds, audio_format=args.audio_format),
            remove_columns=["audio_path", "audio_bytes"],
            features=features,
            num_proc=args.num_proc if args.num_proc > 1 else None,
            writer_batch_size=100,
            cache_file_name=cache_file_name,
            new_fingerprint=_fingerprint("features", args, number),
            desc=f"features (chunk {number})",
        )

    processed = chunks_with_resume(source_chunks(source, args.resume_chunk_rows), compute, resume_dir, work_dir,
                                   "features", "source rows")
    reasons = processed[SKIP_REASON]
    skipped = [{"id": i, "stage": "features", "reason": r} for i, r in zip(processed[ID], reasons) if r]
    usable = processed.select([n for n, r in enumerate(reasons) if not r]).remove_columns(SKIP_REASON)
    return usable, skipped


def chunks_with_resume(chunks, compute, resume_dir: Path, work_dir: Path, label: str, noun: str = "rows"):
    """`compute(rows, cache_file_name, number)` (a `Dataset` written to `cache_file_name`) of every chunk of `chunks`
    (`source_chunks`), concatenated. Each finished chunk is saved in `work_dir` and then moved whole into
    `resume_dir`, so that folder never holds a half-written chunk; a chunk already there (from an interrupted run
    with the same resume key) is read back instead of computed. Used by every stage that resumes."""
    from datasets import concatenate_datasets, load_from_disk

    pieces, resumed = [], 0
    for number, chunk_rows in chunks:
        finished = resume_dir / f"chunk-{number:06d}"
        if finished.is_dir():
            pieces.append(load_from_disk(str(finished)))
            resumed += len(pieces[-1])
            continue
        stem = f"{resume_dir.name}-{number:06d}"  # the work folder is shared by every stage and split
        compute(chunk_rows(), str(work_dir / f"{stem}.arrow"), number).save_to_disk(str(work_dir / stem))
        os.rename(work_dir / stem, finished)  # atomic: the chunk appears whole or not at all
        for cache_file in work_dir.glob(f"{stem}*.arrow"):
            cache_file.unlink()
        pieces.append(load_from_disk(str(finished)))
    if not pieces:
        raise ValueError("the source has no rows.")
    processed = concatenate_datasets(pieces)
    print(f"[{label}] resumed {resumed} of {len(processed)} {noun} from {resume_dir.name}"
          if resumed else f"[{label}] finished chunks are kept in {resume_dir.name} until the dataset is saved")
    return processed


def source_chunks(source, chunk_rows: int):
    """`(number, make_chunk)` for consecutive chunks of `chunk_rows` rows of a `Dataset` or of a stream of
    `read_source`'s rows; `make_chunk()` gives the chunk as a `Dataset` (a chunk that is not needed is not made, but
    a stream is read through it)."""
    from datasets import Dataset

    if isinstance(source, Dataset):
        for number, start in enumerate(range(0, len(source), chunk_rows)):
            yield number, lambda start=start: source.select(range(start, min(start + chunk_rows, len(source))))
        return
    rows = iter(source)
    for number in itertools.count():
        chunk = list(itertools.islice(rows, chunk_rows))
        if not chunk:
            return
        yield number, lambda chunk=chunk: Dataset.from_list(chunk, features=source_features())


RESUME_FORMAT = 1
"""Version of the stages' chunks: raise it when a change of the code changes their rows, so that the resume folders of
older runs are not read."""

RESUME_NOTE = "holds.txt"
"""File of a resume folder that says what its chunks are (named by `clean_interrupted_runs`)."""


class ResumeFolders:
    """The `<output_dir>.resume-<key>` folders in which a run keeps its finished chunks until the dataset is saved:
    one for the features, one per split for each of the aligner and codec stages. `<key>` hashes what changes the
    chunks' rows (`features_resume_key`, `stage_resume_key`)."""

    def __init__(self, output_dir: Path, chunk_rows: int):
        self.output_dir, self.chunk_rows, self.used = output_dir, chunk_rows, []

    def folder(self, key: dict, holds: str) -> Path:
        """The resume folder of `key` (made if missing), noted as holding `holds`."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        path = self.output_dir.with_name(f"{self.output_dir.name}.resume-{digest}")
        path.mkdir(exist_ok=True)
        (path / RESUME_NOTE).write_text(holds + "\n", encoding="utf-8")
        self.used.append(path)
        return path

    def remove(self) -> None:
        """Remove this run's resume folders (once their chunks are in the saved dataset)."""
        for path in self.used:
            shutil.rmtree(path, ignore_errors=True)


def resume_holds(path: Path) -> str:
    """What the resume folder `path` holds: its note, or (a folder written before the aligner and codec stages
    resumed) features."""
    note = path / RESUME_NOTE
    return note.read_text(encoding="utf-8").strip() if note.is_file() else "features"


def features_resume_key(args: argparse.Namespace, codec_config, tokenizer) -> dict:
    """The resume key of the features stage: everything that changes a chunk's rows: the source (and the size and
    time of a local metadata table), its columns, `--shard`, the duration limits, the audio format, the codec's rate
    and hop, the tokenizer, the chunk size and `RESUME_FORMAT`; not the split or the augmentation, which come
    after."""
    table = source_table(args)
    key = {name: getattr(args, name) for name in (
        "dataset", "dataset_config", "dataset_split", "streaming", "audio_column", "text_column", "speaker_column",
        "id_column", "shard", "min_seconds", "max_seconds", "audio_format", "resume_chunk_rows")}
    key.update(data_files=_data_files(args), table=str(table.resolve()) if table else None,
               table_stat=[table.stat().st_size, table.stat().st_mtime_ns] if table else None,
               dataset_path=os.path.abspath(args.dataset) if args.dataset and os.path.exists(args.dataset) else None,
               sampling_rate=codec_config.sampling_rate, hop_length=codec_config.hop_length,
               tokenizer=vocab_hash(tokenizer), format=RESUME_FORMAT)
    return key


def stage_resume_key(column: str, split_name: str, split, input_columns: List[str], model: str, batch_size: int,
                     device: torch.device, chunk_rows: int) -> dict:
    """The resume key of the aligner or codec stage (adding `column`) on one split: the split's rows (`rows_digest`
    of its ids and the stage's input columns), the model (`model_identity`), the batch size, the device type, the
    chunk size and `RESUME_FORMAT`."""
    return {"stage": column, "split": split_name, "rows": rows_digest(split, [ID, *input_columns]),
            "model": model_identity(model), "batch_size": batch_size, "device": device.type,
            "resume_chunk_rows": chunk_rows, "format": RESUME_FORMAT}


def rows_digest(split, columns: List[str]) -> str:
    """sha256 of `split`'s `columns`: their types and values, but the audio only by each row's length (arrow offsets,
    quick on a large dataset; the samples follow from the features stage's arguments, which the stored type and
    lengths tell apart)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digest = hashlib.sha256(repr([split.features[name] for name in columns]).encode())
    for batch in split.select_columns(columns).with_format("arrow").iter(batch_size=10_000):
        for name in columns:
            values = batch.column(name).combine_chunks()
            is_list = isinstance(values, (pa.ListArray, pa.LargeListArray))
            if name == AUDIO:
                values = pc.list_value_length(values) if is_list else pc.binary_length(values)
            elif is_list:
                digest.update(pc.list_value_length(values).to_numpy().tobytes())
                values = pc.list_flatten(values)
            digest.update(json.dumps(values.to_pylist()).encode() if pa.types.is_string(values.type)
                          else values.to_numpy(zero_copy_only=False).tobytes())
    return digest.hexdigest()


def model_identity(name: str):
    """A model as a resume key sees it: a folder (or file) by its resolved path and the name, size and time of its
    files, so that a retrained or replaced model does not reuse chunks; a Hub id as given."""
    path = Path(name)
    if not path.exists():
        return name
    path = path.resolve()
    files = sorted(child for child in path.iterdir() if child.is_file()) if path.is_dir() else [path]
    return [str(path), [[file.name, file.stat().st_size, file.stat().st_mtime_ns] for file in files]]


def augmentation_stage(usable, count: int, holdout: List[str], args, sampling_rate: int, hop_length: int):
    """Stage-1 rows of `count` augmented speakers (see `training/voice_augmentation.py`), the pitch and frame count
    measured again on the transformed audio. Returns `(rows, skipped, transforms as dicts)`; a transformed utterance
    outside `--min_seconds`/`--max_seconds` or with fewer frames than phonemes is skipped."""
    from datasets import Features, Value, concatenate_datasets

    speakers = np.asarray(usable[SPEAKER_ID])
    speaker_f0 = {}
    for speaker in sorted(set(speakers.tolist()) - set(holdout) - {UNKNOWN_SPEAKER}):
        rows = usable.select(np.flatnonzero(speakers == speaker))
        log_f0 = np.concatenate([np.asarray(f0)[np.asarray(v, dtype=bool)] for f0, v in zip(rows[LOG_F0], rows[VOICED])])
        if log_f0.size:
            speaker_f0[speaker] = float(np.exp(np.median(log_f0)))
    transforms = draw_transforms(speaker_f0, count, args.seed)
    features = Features({**dataset_features(audio_format=args.audio_format), SKIP_REASON: Value("string")})
    copies, skipped = [], []
    for index, transform in enumerate(transforms):
        def augment(example):
            voiced = np.asarray(example[VOICED], dtype=bool)
            # Praat reads a median of 0 as "keep the pitch" (an utterance with no voiced frame)
            median_f0 = float(np.exp(np.median(np.asarray(example[LOG_F0])[voiced]))) if voiced.any() else 0.0
            audio = transform_voice(audio_as_float(example[AUDIO]), sampling_rate, transform, median_f0)
            num_frames = num_frames_for(len(audio), hop_length)
            log_f0, voiced = extract_pitch(audio, sampling_rate, hop_length, num_frames=num_frames)
            seconds = len(audio) / sampling_rate
            reason = ""
            if not args.min_seconds <= seconds <= args.max_seconds:
                reason = f"augmented duration {seconds:.2f} s outside [{args.min_seconds}, {args.max_seconds}] s"
            elif num_frames < len(example[PHONEMES]):
                reason = f"augmented audio has {num_frames} frames for {len(example[PHONEMES])} phonemes"
            return {ID: f"{example[ID]}_aug{index}", SPEAKER_ID: transform.speaker_id,
                    AUDIO: encode_audio(audio, sampling_rate, args.audio_format),
                    NUM_FRAMES: num_frames, LOG_F0: log_f0, VOICED: voiced, SKIP_REASON: reason}

        rows = usable.select(np.flatnonzero(speakers == transform.source_speaker)).map(
            augment, features=features, keep_in_memory=True, desc=f"augment {transform.speaker_id}")
        reasons = rows[SKIP_REASON]
        skipped += [{"id": i, "stage": "augmentation", "reason": r} for i, r in zip(rows[ID], reasons) if r]
        copies.append(rows.select([n for n, r in enumerate(reasons) if not r]).remove_columns(SKIP_REASON))
    return concatenate_datasets(copies) if copies else None, skipped, [t.as_dict() for t in transforms]


def split_by_speaker(dataset, validation_fraction: float, holdout_speakers: List[str], seed: int):
    """`DatasetDict(train, validation)`: every utterance of a held-out speaker goes to validation;
    of every other speaker with 2+ utterances, `max(1, round(fraction * n))` random ones do
    (none if the fraction is 0). Deterministic for a given seed."""
    from datasets import DatasetDict

    speakers = np.asarray(dataset[SPEAKER_ID])
    rng = np.random.default_rng(seed)
    validation: List[int] = []
    for speaker in sorted(set(speakers.tolist())):
        rows = np.flatnonzero(speakers == speaker)
        if speaker in holdout_speakers:
            validation += rows.tolist()
        elif validation_fraction > 0 and len(rows) >= 2:
            count = max(1, round(validation_fraction * len(rows)))
            validation += rng.choice(rows, size=min(count, len(rows) - 1), replace=False).tolist()
    held = set(validation)
    train = [n for n in range(len(dataset)) if n not in held]
    if not train or not held:  # datasets cannot reload an empty split
        raise ValueError(f"the split leaves {len(train)} train and {len(held)} validation utterances; both need "
                         "some: adjust --validation_fraction / --holdout_speakers (speakers with a single "
                         "utterance always stay in train).")
    return DatasetDict(train=dataset.select(train), validation=dataset.select(sorted(held)))


# ----------------------------------------------------------------------------------------------
# Stage 2: durations
# ----------------------------------------------------------------------------------------------

def aligner_stage(splits, aligner_dir: str, hop_length: int, sampling_rate: int, batch_size: int, work_dir: Path,
                  device: torch.device, resume: ResumeFolders):
    """Add `durations` from a trained aligner (MAS over its soft alignment), batches run on `device`, each split in
    resumable chunks (`add_column_in_chunks`)."""
    from ns2_hf.alignment import NS2AlignerModel

    aligner = NS2AlignerModel.from_pretrained(aligner_dir).eval().to(device)
    if (aligner.config.hop_length, aligner.config.sampling_rate) != (hop_length, sampling_rate):
        raise ValueError(f"aligner {aligner_dir} uses hop {aligner.config.hop_length} at "
                         f"{aligner.config.sampling_rate} Hz but the dataset has hop {hop_length} at "
                         f"{sampling_rate} Hz.")

    def align_batch(phoneme_ids, audio, num_frames):
        ids = [torch.as_tensor(p, dtype=torch.long) for p in phoneme_ids]
        if max(int(i.max()) for i in ids) >= aligner.config.vocab_size:
            raise ValueError(f"phoneme ids exceed the aligner's vocab_size {aligner.config.vocab_size}: "
                             "it was trained with another tokenizer.")
        padded_ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
        phoneme_mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(i), dtype=torch.bool) for i in ids],
                                                       batch_first=True)
        waveform = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(audio_as_float(a)) for a in audio],
                                                   batch_first=True)
        frames = torch.arange(num_frames_for(waveform.shape[1], hop_length))
        frame_mask = frames[None] < torch.as_tensor(num_frames)[:, None]
        durations = aligner.align(padded_ids.to(device), phoneme_mask.to(device), waveform=waveform.to(device),
                                  frame_mask=frame_mask.to(device)).cpu()
        rows = [d[: len(i)].tolist() for d, i in zip(durations, ids)]
        for row, frames in zip(rows, num_frames):
            assert sum(row) == frames, f"durations sum to {sum(row)}, not num_frames={frames}"
        return {DURATIONS: rows}

    return add_column_in_chunks(splits, DURATIONS, [PHONEME_IDS, AUDIO, NUM_FRAMES], align_batch, "aligner",
                                aligner_dir, batch_size, device, work_dir, resume)


def add_column_in_chunks(splits, column: str, input_columns: List[str], make_batch, stage: str, model: str,
                         batch_size: int, device: torch.device, work_dir: Path, resume: ResumeFolders):
    """`splits` with `column` added: `make_batch(*input_columns)` (batches of `batch_size` rows) gives its values.
    Each split runs in chunks of `resume.chunk_rows` rows kept in a resume folder of its own (`chunks_with_resume`,
    `stage_resume_key`: a re-run with the same split, `stage` model, batch size and device reads them back); a chunk
    holds only `column`, which is joined to the split's columns at the end."""
    from datasets import Features, concatenate_datasets

    features = Features({column: dataset_features(with_durations=True, with_codes=True)[column]})
    added = {}
    for name, split in splits.items():
        if split._indices is not None:  # rows selected by the split: written out, for the join by position below
            split = split.flatten_indices(cache_file_name=str(work_dir / f"{column}_{name}_rows.arrow"),
                                          new_fingerprint=_fingerprint("rows", column, name))
        key = stage_resume_key(column, name, split, input_columns, model, batch_size, device, resume.chunk_rows)
        resume_dir = resume.folder(key, f"{column} of split {name} ({stage} {model})")

        def compute(rows, cache_file_name, number, name=name, key=key):
            return rows.map(make_batch, input_columns=input_columns, batched=True, batch_size=batch_size,
                            remove_columns=rows.column_names, features=features, writer_batch_size=100,
                            cache_file_name=cache_file_name, new_fingerprint=_fingerprint(key, number),
                            desc=f"{stage} ({name}, chunk {number})")

        values = chunks_with_resume(source_chunks(split, resume.chunk_rows), compute, resume_dir, work_dir,
                                    f"{column} ({name})")
        added[name] = concatenate_datasets([split, values], axis=1)
    return added


def _alignment_file(alignments_dir: Path, utterance_id: str) -> Optional[Path]:
    for suffix in (".TextGrid", ".json"):
        if (alignments_dir / f"{utterance_id}{suffix}").is_file():
            return alignments_dir / f"{utterance_id}{suffix}"
    return None


def front_end_phones(tokenizer) -> set:
    """The unstressed phones of `tokenizer`'s vocabulary (no special token, word boundary or punctuation)."""
    from ns2_hf.alignment.phone_mapping import STRESS_MARKS
    from ns2_hf.text.g2p import WORD_BOUNDARY
    from ns2_hf.text.normalization import SENTENCE_PUNCTUATION

    others = {WORD_BOUNDARY, *SENTENCE_PUNCTUATION, *tokenizer.all_special_tokens}
    return {token.lstrip(STRESS_MARKS) for token in tokenizer.get_vocab() if token not in others}


def alignments_import_stage(splits, alignments_dir: str, tier: str, hop_length: int, sampling_rate: int,
                            tokenizer, work_dir: Path):
    """Add `durations` from reference alignments, put on the front end's tokens (`phonemes` and `phoneme_ids`
    stay those of the pipeline's front end, `ns2_hf.alignment.phone_mapping`). Utterances without a usable
    alignment, or whose reference phones differ too much from the front end's, are skipped. Reference labels
    outside the known phone sets raise `PhoneMappingError`. Returns (splits, skipped)."""
    from ns2_hf.alignment import durations_from_segments, read_alignment_json, read_textgrid
    from ns2_hf.alignment.phone_mapping import PhoneMappingError, check_reference_labels, durations_on_tokens

    root = Path(alignments_dir)
    phones = front_end_phones(tokenizer)
    results: Dict[str, dict] = {}  # id -> {"segments", "num_frames", "phonemes"} or {"reason"}
    for split in splits.values():
        for utterance_id, num_frames, phonemes in zip(split[ID], split[NUM_FRAMES], split[PHONEMES]):
            path = _alignment_file(root, utterance_id)
            if path is None:
                results[utterance_id] = {"reason": f"no {utterance_id}.TextGrid or .json in {root}"}
                continue
            try:
                segments = read_textgrid(path, tier=tier) if path.suffix == ".TextGrid" else read_alignment_json(path)
            except ValueError as error:
                results[utterance_id] = {"reason": f"alignment {path.name} unusable: {error}"}
                continue
            results[utterance_id] = {"segments": segments, "num_frames": num_frames, "phonemes": phonemes,
                                     "path": path}
    labels = {label for result in results.values() for label, _, _ in result.get("segments", [])}
    if not labels:
        raise ValueError(f"no utterance has a usable alignment in {root}.")
    check_reference_labels(labels, phones)  # a phone set we cannot map stops the stage with the labels named
    for utterance_id, result in results.items():
        if "reason" in result:
            continue
        segments = result.pop("segments")
        try:
            frames = durations_from_segments(segments, hop_length, sampling_rate, result["num_frames"])
            result["durations"] = durations_on_tokens(result["phonemes"], [label for label, _, _ in segments], frames,
                                                      phones)
        except (PhoneMappingError, ValueError) as error:
            results[utterance_id] = {"reason": f"alignment {result['path'].name} unusable: {error}"}

    def import_row(utterance_id):
        return {DURATIONS: results[utterance_id].get("durations", [])}

    new_splits = {}
    for name, split in splits.items():
        keep = [n for n, i in enumerate(split[ID]) if "reason" not in results[i]]
        new_splits[name] = split.select(keep).map(
            import_row, input_columns=[ID], desc=f"alignments ({name})",
            cache_file_name=str(work_dir / f"alignments_{name}.arrow"),
            features=_with_column(split, DURATIONS))
    skipped = [{"id": i, "stage": "alignments", "reason": r["reason"]} for i, r in results.items() if "reason" in r]
    return new_splits, skipped


# ----------------------------------------------------------------------------------------------
# Stage 3: codes
# ----------------------------------------------------------------------------------------------

def codec_stage(splits, codec_dir: str, hop_length: int, sampling_rate: int, batch_size: int, work_dir: Path,
                device: torch.device, resume: ResumeFolders):
    """Add `codes` `(n_q, num_frames)` from a codec (`load_latent_codec`: ns2-hf's own, or DAC/EnCodec/Mimi), batches
    encoded on `device`, each split in resumable chunks (`add_column_in_chunks`)."""
    from ns2_hf.pipelines.loading import load_latent_codec

    codec = load_latent_codec(codec_dir).to(device)
    if codec.config.codebook_size > np.iinfo(np.int16).max + 1:
        raise ValueError(f"codec {codec_dir} has codebook_size {codec.config.codebook_size}; the int16 `codes` column "
                         f"holds at most {np.iinfo(np.int16).max + 1} entries per codebook.")
    if (codec.config.hop_length, codec.config.sampling_rate) != (hop_length, sampling_rate):
        raise ValueError(f"codec {codec_dir} uses hop {codec.config.hop_length} at {codec.config.sampling_rate} Hz "
                         f"but the dataset has hop {hop_length} at {sampling_rate} Hz; prepare it with "
                         f"--codec_config {codec_dir} --overwrite.")

    @torch.no_grad()
    def encode_batch(audio, num_frames):
        waveforms = [torch.from_numpy(audio_as_float(a)) for a in audio]
        input_values = torch.nn.utils.rnn.pad_sequence(waveforms, batch_first=True)
        padding_mask = torch.arange(input_values.shape[1])[None] < torch.tensor([len(w) for w in waveforms])[:, None]
        codes = codec.encode(input_values.to(device), padding_mask=padding_mask.to(device)).audio_codes.cpu()
        return {CODES: [c[:, :frames].tolist() for c, frames in zip(codes, num_frames)]}

    return add_column_in_chunks(splits, CODES, [AUDIO, NUM_FRAMES], encode_batch, "codec", codec_dir, batch_size,
                                device, work_dir, resume)


# ----------------------------------------------------------------------------------------------
# Bookkeeping
# ----------------------------------------------------------------------------------------------

def stage_device(name: Optional[str]) -> torch.device:
    """`--device`, or CUDA when there is a GPU, else the CPU."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def _with_column(split, column: str):
    """`split`'s features plus the prepared schema's `column`: the existing columns keep their stored dtypes, so a
    stage added to a dataset prepared before the compact storage (float32 audio) does not convert it."""
    from datasets import Features

    return Features({**split.features, column: dataset_features(with_durations=True, with_codes=True)[column]})


def _fingerprint(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def vocab_hash(tokenizer) -> str:
    """sha256 of the tokenizer's vocabulary (token → id), to tie `phoneme_ids` to a tokenizer."""
    return hashlib.sha256(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()).hexdigest()


def timed(stage: str, count: int, started: float, info: dict) -> None:
    seconds = time.perf_counter() - started
    rate = count / seconds if seconds > 0 else float("inf")
    info.setdefault("stages", {})[stage] = {"utterances": count, "seconds": round(seconds, 2),
                                            "utterances_per_second": round(rate, 2)}
    print(f"[{stage}] {count} utterances in {seconds:.1f} s ({rate:.2f} utterances/s)")


def report_skipped(skipped: List[dict]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} utterance(s):")
        for entry in skipped:
            print(f"  {entry['id']} ({entry['stage']}): {entry['reason']}")


def save_atomically(splits, tokenizer, info: dict, output_dir: Path) -> None:
    """Write everything to `<output_dir>.tmp-<pid>`, then swap it in for `output_dir`."""
    from datasets import DatasetDict

    staging = output_dir.with_name(f"{output_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    DatasetDict(splits).save_to_disk(str(staging))
    tokenizer.save_pretrained(str(staging / TOKENIZER_DIR))
    (staging / PREPARE_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    previous = output_dir.with_name(f"{output_dir.name}.old-{os.getpid()}")
    if output_dir.exists():
        output_dir.rename(previous)  # until the next line, the finished dataset survives under this name
    staging.rename(output_dir)
    shutil.rmtree(previous, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_interrupted_runs(output_dir: Path) -> None:
    """Removes what runs on `output_dir` that were killed (SIGKILL, power loss) left beside it: their work folders
    (`.work-<pid>`) and unfinished results (`.tmp-<pid>`); a finished dataset parked as `.old-<pid>` during the
    final swap is put back when `output_dir` is missing. Folders of a live process are left alone, and so are the
    finished chunks of interrupted runs (`.resume-<key>`: features, durations or codes), which are named."""
    for path in sorted(output_dir.parent.glob(f"{output_dir.name}.*-*")):
        kind, _, pid = path.name[len(output_dir.name) + 1:].partition("-")
        if kind == "resume":
            print(f"kept {path.name}: finished {resume_holds(path)} of an interrupted run, resumed by a run with its "
                  "arguments (remove it if that run is abandoned)")
        if kind not in ("work", "tmp", "old") or not pid.isdigit() or _process_alive(int(pid)):
            continue
        if kind == "old" and not output_dir.exists():
            path.rename(output_dir)
            print(f"restored {output_dir} from {path.name}, left by an interrupted run")
        else:
            shutil.rmtree(path, ignore_errors=True)
            print(f"removed {path.name}, left by an interrupted run")


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_as_exit():
    """Within the block SIGTERM (`kill`, a batch scheduler's stop) raises SystemExit, so the `finally` clean-ups
    run as they do for Ctrl-C; the previous handler comes back after."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def merge_shards(shard_dirs: List[str], output_dir: Path) -> None:
    """Concatenate the folders of a `--shard I/N` run (all N, prepared with the same source arguments and stages) in
    source order, split them as one run would, and save the result to `output_dir`."""
    from datasets import concatenate_datasets, load_from_disk

    from ns2_hf.text import NS2PhonemeTokenizer

    infos = [read_prepare_info(folder) for folder in shard_dirs]
    if not all(info.get("source", {}).get("shard") for info in infos):
        raise ValueError(f"--merge takes folders prepared with --shard; {shard_dirs} are not all such folders.")
    count = infos[0]["source"]["shard"][1]
    if sorted(info["source"]["shard"][0] for info in infos) != list(range(count)) or \
            any(info["source"]["shard"][1] != count for info in infos):
        raise ValueError(f"--merge needs the shards 0..{count - 1} of one run, each once; got "
                         f"{[info['source']['shard'] for info in infos]}.")
    source = {key: value for key, value in infos[0]["source"].items() if key != "shard"}
    keys = ("sampling_rate", "hop_length", "aligner", "alignments_dir", "codec", "tokenizer_vocab_hash",
            "dropped_columns")
    for folder, info in zip(shard_dirs, infos):
        differing = [key for key in keys if info.get(key) != infos[0].get(key)]
        if {k: v for k, v in info["source"].items() if k != "shard"} != source:
            differing.append("source")
        if differing:
            raise ValueError(f"shard {folder} differs from {shard_dirs[0]} in {differing}: prepare all shards with "
                             "the same arguments and stages.")
    rows = concatenate_datasets([load_from_disk(folder)["train"] for folder in shard_dirs])
    rows = rows.sort(SOURCE_INDEX).remove_columns(SOURCE_INDEX)
    unknown = sorted(set(source["holdout_speakers"]) - set(rows[SPEAKER_ID]))
    if unknown:
        raise ValueError(f"--holdout_speakers {unknown} are not speakers of the merged shards.")
    splits = dict(split_by_speaker(rows, source["validation_fraction"], source["holdout_speakers"], source["seed"]))
    info = {**infos[0], "source": source, "shards": [os.path.abspath(folder) for folder in shard_dirs],
            "num_source_utterances": sum(info["num_source_utterances"] for info in infos),
            "skipped": [entry for info in infos for entry in info["skipped"]],
            "splits": {name: len(split) for name, split in splits.items()},
            "speakers": {name: sorted(set(split[SPEAKER_ID])) for name, split in splits.items()}}
    info["num_skipped"] = len(info["skipped"])
    info.pop("stages", None)
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(Path(shard_dirs[0]) / TOKENIZER_DIR))
    save_atomically(splits, tokenizer, info, output_dir)
    print(f"merged {len(shard_dirs)} shards into {output_dir}: {info['splits']}, {info['num_skipped']} skipped")


def main(argv: Optional[List[str]] = None) -> None:
    with sigterm_as_exit():
        prepare(argv)


def prepare(argv: Optional[List[str]] = None) -> None:
    from datasets import load_from_disk

    from ns2_hf.text import NS2PhonemeTokenizer

    args = parse_args(argv)
    output_dir = Path(args.output_dir).resolve()
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / PREPARE_INFO_FILE).is_file() \
            and not args.overwrite:
        raise FileExistsError(f"{output_dir} exists and is not a prepared dataset; choose another --output_dir "
                              "or pass --overwrite to replace it.")
    if args.merge:
        clean_interrupted_runs(output_dir)
        merge_shards(args.merge, output_dir)
        return
    codec_config = codec_config_from(args.codec_config, args.codec)
    hop_length, sampling_rate = codec_config.hop_length, codec_config.sampling_rate
    clean_interrupted_runs(output_dir)
    work_dir = output_dir.with_name(f"{output_dir.name}.work-{os.getpid()}")
    work_dir.mkdir(parents=True)
    resume = ResumeFolders(output_dir, args.resume_chunk_rows)
    try:
        existing = (output_dir / PREPARE_INFO_FILE).is_file() and not args.overwrite
        if existing:
            info = read_prepare_info(output_dir)
            if info["source"] != describe_source(args):
                raise ValueError(f"{output_dir} was prepared from {info['source']}, not {describe_source(args)}; "
                                 "use --overwrite or another --output_dir.")
            if (info["hop_length"], info["sampling_rate"]) != (hop_length, sampling_rate) and args.codec_config:
                raise ValueError(f"{output_dir} has hop {info['hop_length']} at {info['sampling_rate']} Hz; "
                                 f"--codec_config {args.codec_config} differs. Use --overwrite to redo it.")
            hop_length, sampling_rate = info["hop_length"], info["sampling_rate"]
            loaded = load_from_disk(str(output_dir))
            splits = {name: loaded[name] for name in loaded}  # a shard has its rows in one split, "train"
            tokenizer = NS2PhonemeTokenizer.from_pretrained(str(output_dir / TOKENIZER_DIR))
            added: List[str] = []
        else:
            tokenizer = NS2PhonemeTokenizer()
            started = time.perf_counter()
            source = read_source(args, work_dir)
            resume_dir = resume.folder(features_resume_key(args, codec_config, tokenizer), "features")
            usable, skipped = features_stage(source, tokenizer, codec_config, args, work_dir, resume_dir)
            holdout = _holdout(args)
            unknown = sorted(set(holdout) - set(usable[SPEAKER_ID]))
            if unknown and not args.shard:  # a shard need not hold every speaker: --merge checks
                raise ValueError(f"--holdout_speakers {unknown} are not speakers of the source's usable utterances "
                                 "(the finished features are kept: a corrected re-run resumes them).")
            if not args.shard:
                usable = usable.remove_columns(SOURCE_INDEX)
            augmented_speakers = []
            if args.augment_speakers:
                augmented, augment_skipped, augmented_speakers = augmentation_stage(
                    usable, args.augment_speakers, holdout, args, sampling_rate, hop_length)
                skipped += augment_skipped
                if augmented is not None:
                    from datasets import concatenate_datasets

                    usable = concatenate_datasets([usable, augmented])
            report_skipped(skipped)
            splits = {"train": usable} if args.shard else dict(
                split_by_speaker(usable, args.validation_fraction, holdout, args.seed))
            info = {"source": describe_source(args), "num_source_utterances": len(usable) + len(skipped),
                    "sampling_rate": sampling_rate, "hop_length": hop_length, "skipped": skipped,
                    "aligner": None, "alignments_dir": None, "codec": None, "audio_format": args.audio_format,
                    "augmented_speakers": augmented_speakers}
            timed("features", info["num_source_utterances"], started, info)
            added = list(splits["train"].column_names)

        columns = splits["train"].column_names
        needs_audio = (args.aligner and DURATIONS not in columns) or (args.codec and CODES not in columns)
        if AUDIO not in columns and needs_audio:
            raise ValueError(f"{output_dir} was prepared with --drop_audio: the aligner and codec stages need the "
                             "audio; prepare it again with --overwrite.")
        if (args.aligner or args.alignments_dir) and DURATIONS not in columns:
            started, count = time.perf_counter(), sum(len(s) for s in splits.values())
            if args.aligner:
                splits = aligner_stage(splits, args.aligner, hop_length, sampling_rate, args.batch_size, work_dir,
                                       stage_device(args.device), resume)
                info["aligner"] = os.path.abspath(args.aligner)
            else:
                splits, skipped = alignments_import_stage(
                    splits, args.alignments_dir, args.textgrid_tier, hop_length, sampling_rate, tokenizer, work_dir)
                report_skipped(skipped)
                info["skipped"] = info["skipped"] + skipped
                info["alignments_dir"] = os.path.abspath(args.alignments_dir)
            timed("durations", count, started, info)
            added.append(DURATIONS)
        elif args.aligner or args.alignments_dir:
            print(f"durations already present (from {info['aligner'] or info['alignments_dir']}); "
                  "--overwrite to recompute them.")
        if args.codec and CODES not in columns:
            started, count = time.perf_counter(), sum(len(s) for s in splits.values())
            splits = codec_stage(splits, args.codec, hop_length, sampling_rate, args.batch_size, work_dir,
                                 stage_device(args.device), resume)
            info["codec"] = os.path.abspath(args.codec) if os.path.isdir(args.codec) else args.codec  # or a Hub id
            timed("codes", count, started, info)
            added.append(CODES)
        elif args.codec:
            print(f"codes already present (from {info['codec']}); --overwrite to recompute them.")
        dropped = []
        if args.drop_audio and AUDIO in splits["train"].column_names:
            if CODES not in splits["train"].column_names:
                raise ValueError("--drop_audio removes the audio once codes exist; give --codec too.")
            splits = {name: split.remove_columns(AUDIO) for name, split in splits.items()}
            dropped.append(AUDIO)
            info["dropped_columns"] = dropped

        if not added and not dropped:
            print(f"{output_dir}: nothing to do, every requested stage is done.")
            return
        info["splits"] = {name: len(split) for name, split in splits.items()}
        info["speakers"] = {name: sorted(set(split[SPEAKER_ID])) for name, split in splits.items()}
        info["num_skipped"] = len(info["skipped"])
        info["tokenizer_vocab_hash"] = vocab_hash(tokenizer)
        info["last_run_added"] = added
        save_atomically(splits, tokenizer, info, output_dir)
        resume.remove()  # their chunks are in the saved dataset now
        print(f"wrote {output_dir}: {info['splits']}, {info['num_skipped']} skipped, added {added}, dropped {dropped}")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
