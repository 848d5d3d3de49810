"""Data-preparation throughput per stage: features, aligner (durations) and codec (codes).

    python benchmarks/bench_prepare.py [--corpus ../shared/corpus/ns2-offline-en] [--utterances 64]
        [--model pretrained/ns2-tiny-en] [--num_proc 1] [--batch_size 16]

Takes `--utterances` rows spread evenly over the corpus' `metadata.csv`, runs `training/prepare_dataset.py` on
them three times (features; `--aligner MODEL/aligner`; `--codec MODEL/codec`) into a temporary folder, and prints
each stage's wall time as the script records it in `prepare_info.json`, in utterances per second and in seconds of
audio per second (the audio is that of the prepared rows). Threads follow `OMP_NUM_THREADS`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training import prepare_dataset  # noqa: E402
from training.data import NUM_FRAMES, load_prepared, read_prepare_info  # noqa: E402


def subset_audiofolder(corpus: Path, count: int, folder: Path) -> Path:
    """An audiofolder in `folder` whose metadata lists `count` rows spread evenly over `corpus` (absolute paths)."""
    with open(corpus / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if count > len(rows):
        raise ValueError(f"--utterances {count} exceeds the {len(rows)} rows of {corpus}.")
    step = len(rows) / count
    chosen = [rows[int(index * step)] for index in range(count)]
    for row in chosen:
        row["file_name"] = str((corpus / row["file_name"]).resolve())
    folder.mkdir(parents=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(chosen[0]))
        writer.writeheader()
        writer.writerows(chosen)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(REPO_ROOT.parent / "shared" / "corpus" / "ns2-offline-en"))
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--model", default=str(REPO_ROOT / "pretrained" / "ns2-tiny-en"),
                        help="Folder with `aligner/` and `codec/` subfolders (the shipped model's by default).")
    parser.add_argument("--num_proc", type=int, default=1, help="Processes of the features stage.")
    parser.add_argument("--batch_size", type=int, default=16, help="Utterances per aligner/codec forward pass.")
    args = parser.parse_args()

    model = Path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        source = subset_audiofolder(Path(args.corpus), args.utterances, Path(tmp) / "source")
        output_dir = Path(tmp) / "prepared"
        common = ["--audiofolder", str(source), "--output_dir", str(output_dir), "--batch_size", str(args.batch_size)]
        prepare_dataset.main([*common, "--codec_config", str(model / "codec"), "--num_proc", str(args.num_proc)])
        prepare_dataset.main([*common, "--aligner", str(model / "aligner")])
        prepare_dataset.main([*common, "--codec", str(model / "codec")])
        info = read_prepare_info(output_dir)
        frames = sum(sum(split[NUM_FRAMES]) for split in load_prepared(output_dir).values())
    audio_seconds = frames * info["hop_length"] / info["sampling_rate"]
    print(f"\n{args.utterances} utterances ({audio_seconds:.0f} s of prepared audio), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, features --num_proc {args.num_proc}, "
          f"batch {args.batch_size}")
    print(f"{'stage':<10} {'seconds':>8} {'utterances/s':>13} {'audio s/s':>10}")
    for stage, label in (("features", "features"), ("durations", "aligner"), ("codes", "codec")):
        seconds = info["stages"][stage]["seconds"]
        print(f"{label:<10} {seconds:>8.1f} {info['stages'][stage]['utterances'] / seconds:>13.2f} "
              f"{audio_seconds / seconds:>10.1f}")


if __name__ == "__main__":
    main()
