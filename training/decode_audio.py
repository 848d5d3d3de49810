"""Decode a prepared dataset's audio once: a copy of it with the `audio` column stored as 16-bit PCM.

    python training/decode_audio.py DATA OUTPUT_DIR [--num_proc N]

`prepare_dataset.py --audio_format opus` keeps a dataset small enough to travel to a training machine (the
corpus with 20 augmented speakers: 40 MB), but a codec run then decodes every utterance each time a batch
takes it — about steps x batch / utterances times (22 times in 2,000 steps of `codec_gpu.yaml` on those 2,880
utterances) — and only keeps a one-second crop of it. On one CPU thread, reading a batch of 32 corpus utterances
costs 271 ms from Opus and 16 ms from 16-bit PCM (`benchmarks/bench_training_input.py --read`); decoding the
1,280 corpus utterances once takes 12 s with `--num_proc 2`. This script decodes each utterance once, into OUTPUT_DIR:
what the Opus (or FLAC) bytes decode to, rounded to 16 bits (the Opus coding itself is not undone). Every other
column, the tokenizer and `prepare_info.json` (its `audio_format` now `pcm16`) are copied unchanged. Nothing is
written to DATA, and OUTPUT_DIR appears only once it is complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from training.data import (  # noqa: E402
    AUDIO,
    PREPARE_INFO_FILE,
    SPLITS,
    audio_as_float,
    audio_to_pcm16,
    load_prepared,
    read_prepare_info,
)


def decoded_row(row: dict) -> dict:
    """One row's stored audio (Opus/FLAC bytes) → int16 samples."""
    return {AUDIO: audio_to_pcm16(audio_as_float(row[AUDIO]))}


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a prepared dataset (prepare_dataset.py --output_dir) with FLAC or Opus audio")
    parser.add_argument("output_dir", help="where the copy with 16-bit PCM audio goes (must not exist)")
    parser.add_argument("--num_proc", type=int, default=1, help="processes that decode (default: 1)")
    args = parser.parse_args(argv)
    from datasets import DatasetDict, List, Value

    data, output_dir = Path(args.data), Path(args.output_dir)
    dataset = load_prepared(data, required_columns=(AUDIO,))
    info = read_prepare_info(data)
    if info.get("audio_format", "pcm16") == "pcm16":
        raise SystemExit(f"{data} already stores its audio as 16-bit PCM: there is nothing to decode.")
    if output_dir.exists():
        raise SystemExit(f"{output_dir} exists; remove it or choose another folder.")
    decoded = DatasetDict()
    for split in SPLITS:
        features = dataset[split].features.copy()
        features[AUDIO] = List(Value("int16"))
        decoded[split] = dataset[split].map(decoded_row, features=features, num_proc=args.num_proc,
                                            desc=f"decoding the {split} audio")
    work_dir = output_dir.with_name(output_dir.name + ".incomplete")
    shutil.rmtree(work_dir, ignore_errors=True)  # what an interrupted run left
    decoded.save_to_disk(str(work_dir))
    for entry in data.iterdir():  # the tokenizer and any other file prepare_dataset.py keeps beside the splits
        if entry.name in (*SPLITS, "dataset_dict.json", PREPARE_INFO_FILE):
            continue
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, work_dir / entry.name)
    (work_dir / PREPARE_INFO_FILE).write_text(json.dumps({**info, "audio_format": "pcm16"}, indent=2), encoding="utf-8")
    work_dir.rename(output_dir)
    print(f"decoded {sum(len(decoded[split]) for split in SPLITS)} utterances of {data} into {output_dir}")
    return output_dir


if __name__ == "__main__":
    main()
