"""What the training processes do to each batch before the model sees it, against the step it feeds.

    python benchmarks/bench_training_input.py [--model pretrained/ns2-tiny-en] [--dataset data/corpus] [--frames 9600]
        [--crops 32] [--repeats 5] [--threads 1] [--read DATASET ...]

`train_ns2.py` cuts a prompt out of every utterance of every batch (`NS2SpeechPrompter`), in the DataLoader's
worker processes when `num_workers` > 0 (`NS2TrainingPrompts`). This prints, for batches of real prepared
utterances (`prepare_dataset.py` output, up to `--frames` codec frames each: `ns2_gpu.yaml`'s
`max_frames_per_batch`), the prompter's milliseconds per batch (the span search alone, and the whole cut-and-pad)
next to one forward and backward pass of the shipped NS2 model on the same batch, on this CPU. A GPU makes the
model step faster, not the prompter: what the prompter costs here, it costs there too, beside a step many times
shorter — beside it in the workers, in it with `num_workers: 0`.

`train_codec.py` perturbs every crop of a batch (`training.codec_data.augment`: speed, gain, noise) and, with
`harmonic_phase`, tracks its pitch (`crop_pitch`, Praat); it prints the milliseconds of both for `--crops`
one-second crops (`codec_gpu.yaml`'s batch; the augmentation with `codec_gpu.yaml`'s ranges, and without the
speed perturbation, the part resampled row by row). `CodecTrainingCrops` does this work in the DataLoader's
worker processes (`num_workers` > 0), so these milliseconds run beside the training step, not in it.

`--read` prints, for each prepared dataset named, what reading `--crops` random training utterances costs
(`PreparedDataset`: the stored audio decoded to float; the datasets alternate on the same utterance indices, median
of `--repeats` batches): e.g. one prepared with `--audio_format opus` and its copy by `training/decode_audio.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the training package


def batch_of_utterances(dataset_path: str, max_frames: int, latent_dim: int, num_quantizers: int, codebook_size: int):
    """Utterances of the prepared training split, up to `max_frames` frames in all: their phones, frame counts
    and pitch, with random latents and codes of the codec's shape (their values do not change the cost)."""
    from datasets import load_from_disk

    if not Path(dataset_path).is_dir():
        raise SystemExit(f"no prepared dataset at {dataset_path}: make one with training/prepare_dataset.py "
                         "(training/README.md, 'The shared corpus, stage by stage', step 1) or pass --dataset")
    rows = load_from_disk(dataset_path)["train"].select_columns(["phoneme_ids", "num_frames", "log_f0", "voiced"])
    utterances, frames = [], 0
    for row in rows:
        num_frames, num_phones = row["num_frames"], len(row["phoneme_ids"])
        if frames + num_frames > max_frames:
            break
        # the frames spread evenly over the phones (the aligner's durations, where the dataset has none yet)
        durations = torch.diff(torch.linspace(0, num_frames, num_phones + 1).round().long())
        frames += num_frames
        utterances.append({
            "phoneme_ids": torch.tensor(row["phoneme_ids"]), "durations": durations,
            "latents": torch.randn(latent_dim, num_frames),
            "codes": torch.randint(0, codebook_size, (num_quantizers, num_frames)),
            "log_f0": torch.tensor(row["log_f0"], dtype=torch.float32), "voiced": torch.tensor(row["voiced"], dtype=torch.bool),
        })
    return utterances


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pretrained/ns2-tiny-en")
    parser.add_argument("--dataset", default="data/corpus")
    parser.add_argument("--frames", type=int, default=9600)
    parser.add_argument("--crops", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--read", nargs="*", default=[], metavar="DATASET",
                        help="prepared datasets whose utterance reading to time (e.g. Opus and its decoded copy)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from ns2_hf.codec import NS2CodecModel
    from ns2_hf.ns2 import NS2Model, NS2SpeechPrompter
    from ns2_hf.schedulers import NS2Scheduler

    model = NS2Model.from_pretrained(f"{args.model}/model")
    model.config.pitch_normalization = "prompt"
    codebooks = NS2CodecModel.from_pretrained(f"{args.model}/codec").get_codebooks()
    num_quantizers, codebook_size, latent_dim = codebooks.shape
    utterances = batch_of_utterances(args.dataset, args.frames, latent_dim, num_quantizers, codebook_size)
    prompter = NS2SpeechPrompter(0.1, 0.5, generator=torch.Generator().manual_seed(0))
    scheduler = NS2Scheduler()

    def step():
        output = model(**prompter(utterances), codebooks=codebooks, noise_scheduler=scheduler)
        output.loss.backward()
        model.zero_grad()

    span_ms = median_ms(lambda: [prompter.choose_span(u["durations"]) for u in utterances], args.repeats)
    prompter_ms = median_ms(lambda: prompter(utterances), args.repeats)
    step_ms = median_ms(step, args.repeats)
    frames = sum(int(u["durations"].sum()) for u in utterances)
    print(f"{len(utterances)} utterances, {frames} frames, {args.threads} thread(s): span search {span_ms:.1f} ms, "
          f"whole prompter {prompter_ms:.1f} ms, {args.model} forward + backward {step_ms:.0f} ms (prompter "
          f"included); prompter / step = {prompter_ms / step_ms:.3f}")

    import numpy as np
    import yaml

    from training.codec_data import augment, crop_pitch

    np.random.seed(0)
    crops = 0.1 * torch.randn(args.crops, sampling_rate := 16000)
    mask = torch.ones_like(crops, dtype=torch.bool)
    ranges = yaml.safe_load((REPO_ROOT / "training" / "configs" / "codec_gpu.yaml").read_text())["augmentation"]
    augment_ms = median_ms(lambda: augment(crops, mask, sampling_rate, **ranges), args.repeats)
    no_speed_ms = median_ms(lambda: augment(crops, mask, sampling_rate, **{**ranges, "speed": None}), args.repeats)
    pitch_ms = median_ms(lambda: crop_pitch(crops, mask, sampling_rate, 200), args.repeats)
    print(f"codec augmentation of {args.crops} one-second crops: {augment_ms:.1f} ms ({no_speed_ms:.1f} ms without "
          f"the speed perturbation); their pitch (harmonic_phase): {pitch_ms:.1f} ms")

    from training.data import AUDIO, PreparedDataset, load_prepared, read_prepare_info

    # the datasets take turns on the same batches of utterance indices, so a change of load hits them alike
    datasets = {path: PreparedDataset(load_prepared(path)["train"], columns=(AUDIO,)) for path in args.read}
    if datasets:
        smallest = min(len(items) for items in datasets.values())
        chosen = np.random.default_rng(0).choice(smallest, (args.repeats, args.crops)).tolist()
        times = {path: [] for path in datasets}
        for row in chosen:
            for path, items in datasets.items():
                start = time.perf_counter()
                [items[index] for index in row]
                times[path].append(1000 * (time.perf_counter() - start))
        for path, items in datasets.items():
            seconds = np.mean([sum(len(items[index][AUDIO]) for index in row) for row in chosen]) / sampling_rate
            print(f"reading {args.crops} utterances ({seconds:.0f} s of audio) of {path} "
                  f"({read_prepare_info(path).get('audio_format', 'pcm16')}): {statistics.median(times[path]):.0f} ms")


if __name__ == "__main__":
    main()
