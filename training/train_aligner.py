"""Train the built-in phoneme aligner (`ns2_hf.alignment.NS2AlignerModel`) with accelerate.

The aligner is unsupervised: it needs only (phoneme ids, waveform) pairs and learns which frames
belong to which phoneme. Its durations then feed the NS2 duration predictor and the length
regulator. Two data sources:

* `--dataset DIR`: a `datasets` folder (`save_to_disk`) with columns `phoneme_ids` (list of int)
  and `audio` (`{"array", "sampling_rate"}`, or an `Audio` feature: decoded here with soundfile).
* `--festival --corpus_dir DIR`: the shared corpus's festival utterances, with their ground-truth
  phone sequences (`alignments/*.json`, `pau` kept) as tokens. The phone list is saved as
  `phones.json` and, at the end, the boundary accuracy against the festival timings is printed
  and saved as `festival_eval.json`.

Examples:
    python training/train_aligner.py --festival --corpus_dir ../shared/corpus/ns2-offline-en \
        --output_dir runs/aligner_festival --size tiny --max_steps 400
    accelerate launch training/train_aligner.py --dataset data/prepared --output_dir runs/aligner
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from ns2_hf.alignment import (  # noqa: E402
    NS2AlignerConfig,
    NS2AlignerModel,
    boundary_errors,
    durations_from_segments,
    read_alignment_json,
)
from ns2_hf.audio.io import load_audio  # noqa: E402
from training.data import audio_as_float, read_prepare_info  # noqa: E402
from training.trainer_utils import mean_over_processes  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="`datasets` folder with columns phoneme_ids and audio")
    source.add_argument("--festival", action="store_true", help="train on the corpus's festival utterances")
    parser.add_argument("--corpus_dir", help="the shared corpus (with --festival)")
    parser.add_argument("--output_dir", required=True, help="where save_pretrained writes the aligner")
    parser.add_argument("--size", choices=["base", "tiny"], default="base", help="config preset (default: base)")
    parser.add_argument("--vocab_size", type=int, default=None, help="default: largest phoneme id + 1 in the data")
    parser.add_argument("--batch_size", type=int, default=16, help="utterances per step (default: 16)")
    parser.add_argument("--learning_rate", type=float, default=5e-3, help="AdamW learning rate (default: 5e-3)")
    parser.add_argument("--weight_decay", type=float, default=1e-6, help="AdamW weight decay (default: 1e-6)")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping (default: 1.0)")
    parser.add_argument("--max_steps", type=int, default=10000, help="optimizer steps (default: 10000)")
    parser.add_argument("--max_minutes", type=float, default=None, help="stop after this many minutes (default: none)")
    parser.add_argument(
        "--binarization_start_step", type=int, default=None, help="override the config's warm-up before the binarization loss"
    )
    parser.add_argument("--log_every", type=int, default=50, help="steps between printed loss lines (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--noise_probability", type=float, default=0.0,
                        help="share of utterances mixed with white noise at each step, so that the aligner also "
                        "aligns noisy speech (speech enhancement; default 0: clean only)")
    parser.add_argument("--noise_snr_db", type=float, nargs=2, default=(0.0, 20.0), metavar=("LOW", "HIGH"),
                        help="SNR range of that noise in dB (default: 0 20)")
    args = parser.parse_args(argv)
    if args.festival and not args.corpus_dir:
        parser.error("--festival needs --corpus_dir")
    if Path(args.output_dir).is_dir() and any(Path(args.output_dir).iterdir()):
        parser.error(f"--output_dir {args.output_dir} is not empty: give a new folder (a trained aligner is never overwritten)")
    return args


def load_festival_examples(corpus_dir: str, sampling_rate: int) -> Tuple[List[Dict], List[str]]:
    """The corpus's festival utterances with their reference phone segments.

    Returns:
        `(examples, phones)`: each example has `phoneme_ids` (list of int, indices into `phones`),
        `waveform` (`(samples,)` float32 at `sampling_rate`) and `segments` (`[(phone, start_s,
        end_s), ...]`); `phones` is the sorted phone inventory.
    """
    corpus_dir = Path(corpus_dir)
    with open(corpus_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["voice"].startswith("festival:")]
    utterances = []
    for row in rows:
        alignment_path = corpus_dir / "alignments" / (Path(row["file_name"]).stem + ".json")
        utterances.append((corpus_dir / row["file_name"], read_alignment_json(alignment_path)))
    if not utterances:
        raise FileNotFoundError(f"no festival utterances with alignments in {corpus_dir}")
    phones = sorted({phone for _, segments in utterances for phone, _, _ in segments})
    index = {phone: i for i, phone in enumerate(phones)}
    examples = [
        {
            "phoneme_ids": [index[phone] for phone, _, _ in segments],
            "waveform": load_audio(audio_path, target_sampling_rate=sampling_rate),
            "segments": segments,
        }
        for audio_path, segments in utterances
    ]
    return examples, phones


def load_dataset_examples(dataset_dir: str, sampling_rate: int) -> List[Dict]:
    """`phoneme_ids` and `waveform` of every row of a `datasets` folder (audio resampled)."""
    import datasets
    import soundfile as sf

    dataset = datasets.load_from_disk(dataset_dir)
    if isinstance(dataset, datasets.DatasetDict):
        dataset = dataset["train"]
    missing = {"phoneme_ids", "audio"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"{dataset_dir} lacks the column(s) {sorted(missing)}; it has {dataset.column_names}.")
    if isinstance(dataset.features["audio"], datasets.Audio):  # decode with soundfile, not torchcodec
        dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    examples = []
    for row in dataset:
        audio = row["audio"]
        if isinstance(audio, list):  # training/prepare_dataset.py stores the array and a sampling_rate column
            waveform = load_audio(audio_as_float(audio), row["sampling_rate"], sampling_rate)
        elif "array" in audio:
            waveform = load_audio(np.asarray(audio["array"]), audio["sampling_rate"], sampling_rate)
        else:
            source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio["path"]
            array, rate = sf.read(source, dtype="float32")
            waveform = load_audio(array, rate, sampling_rate)
        examples.append({"phoneme_ids": list(row["phoneme_ids"]), "waveform": waveform})
    return examples


def collate(examples: List[Dict], features=None, sampling_rate: int = 16000, noise_probability: float = 0.0,
            noise_snr_db: Tuple[float, float] = (0.0, 20.0)) -> Dict[str, torch.Tensor]:
    """Pads a list of `{"phoneme_ids": (tokens,), "mel": (n_mels, frames), "waveform": (samples,)}` into a batch
    with masks. With `noise_probability`, that share of the utterances (drawn from numpy's global generator) is
    mixed with white noise at an SNR in `noise_snr_db` (`training.codec_data.augment`) and its log-mel recomputed
    with `features` (the aligner's `features`)."""
    phoneme_ids = [torch.as_tensor(example["phoneme_ids"], dtype=torch.long) for example in examples]
    mels = [example["mel"].T for example in examples]  # (frames, n_mels)
    if noise_probability > 0:
        from training.codec_data import augment

        for index, example in enumerate(examples):
            waveform = torch.as_tensor(example["waveform"], dtype=torch.float32)[None]
            noisy, _ = augment(waveform, torch.ones_like(waveform, dtype=torch.bool), sampling_rate, probability=noise_probability,
                               speed=None, gain_db=None, noise_snr_db=noise_snr_db)
            if not torch.equal(noisy, waveform):
                mels[index] = features(noisy[0])[0].T
    return {
        "phoneme_ids": pad_sequence(phoneme_ids, batch_first=True),
        "phoneme_mask": pad_sequence([torch.ones(len(ids), dtype=torch.bool) for ids in phoneme_ids], batch_first=True),
        "mel": pad_sequence(mels, batch_first=True).transpose(1, 2),
        "frame_mask": pad_sequence([torch.ones(len(mel), dtype=torch.bool) for mel in mels], batch_first=True),
    }


def evaluate_festival(model: NS2AlignerModel, examples: List[Dict], tolerance: int = 2) -> Dict[str, float]:
    """Boundary accuracy against the festival timings: share of inner phone boundaries within
    `tolerance` frames of the truth, and the mean absolute boundary error in frames."""
    errors = []
    for example in examples:
        mel = example["mel"].unsqueeze(0).to(model.device)
        phoneme_ids = torch.as_tensor([example["phoneme_ids"]], device=model.device)
        predicted = model.align(phoneme_ids, mel=mel)[0].cpu().numpy()
        reference = durations_from_segments(
            example["segments"], model.config.hop_length, model.config.sampling_rate, mel.shape[-1]
        )
        errors.append(boundary_errors(predicted, reference))
    errors = np.concatenate(errors)
    return {
        f"within_{tolerance}_frames": float(np.mean(errors <= tolerance)),
        "mean_abs_error_frames": float(errors.mean()),
        "num_boundaries": int(errors.size),
    }


def frame_grid_of(dataset_dir: str) -> Dict[str, int]:
    """`sampling_rate`, `hop_length` and `n_fft` of the aligner for a prepared dataset: its codec's rate and hop, and
    the smallest power of two >= 4 hops as the mel window (1024 at hop 200, the default)."""
    info = read_prepare_info(dataset_dir)
    if "hop_length" not in info:
        return {}
    hop_length = int(info["hop_length"])
    return {"sampling_rate": int(info["sampling_rate"]), "hop_length": hop_length,
            "n_fft": 2 ** math.ceil(math.log2(4 * hop_length))}


def main(argv: Optional[List[str]] = None) -> NS2AlignerModel:
    args = parse_args(argv)
    accelerator = Accelerator()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # Data: token ids and waveforms at the aligner's (= the codec's) sampling rate. A prepared dataset fixes the
    # frame grid (its codec's rate and hop: the durations count codec frames); the festival corpus: the defaults.
    frame_grid = {} if args.festival else frame_grid_of(args.dataset)
    sampling_rate = frame_grid.get("sampling_rate", NS2AlignerConfig().sampling_rate)
    if args.festival:
        examples, phones = load_festival_examples(args.corpus_dir, sampling_rate)
    else:
        examples, phones = load_dataset_examples(args.dataset, sampling_rate), None
    vocab_size = args.vocab_size or 1 + max(max(example["phoneme_ids"]) for example in examples)

    # Model.
    overrides = {"vocab_size": vocab_size, **frame_grid}
    if args.binarization_start_step is not None:
        overrides["binarization_start_step"] = args.binarization_start_step
    config = NS2AlignerConfig.tiny(**overrides) if args.size == "tiny" else NS2AlignerConfig(**overrides)
    model = NS2AlignerModel(config)
    accelerator.print(f"aligner: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(examples)} utterances")

    # Features once: log-mel on the codec frame grid.
    for example in examples:
        example["mel"] = model.features(example["waveform"])[0]
    loader = torch.utils.data.DataLoader(
        examples, batch_size=args.batch_size, shuffle=True, drop_last=len(examples) > args.batch_size,
        collate_fn=functools.partial(collate, features=model.features, sampling_rate=sampling_rate,
                                     noise_probability=args.noise_probability, noise_snr_db=tuple(args.noise_snr_db)),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    # Training loop: forward-sum loss from the start, binarization loss after the warm-up.
    model.train()
    start, step = time.monotonic(), 0
    progress = tqdm(total=args.max_steps, disable=not accelerator.is_local_main_process, desc="aligner")
    while step < args.max_steps:
        for batch in loader:
            output = model(**batch, global_step=step)
            optimizer.zero_grad()
            accelerator.backward(output.loss)
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            step += 1
            losses = {
                "loss": output.loss.item(),
                "forward_sum": output.forward_sum_loss.item(),
                "binarization": output.binarization_loss.item(),
            }
            progress.update(1)
            progress.set_postfix({name: f"{value:.3f}" for name, value in losses.items()})
            if step % args.log_every == 0 or step == 1:
                losses = mean_over_processes(accelerator, losses)  # the whole (multi-process) batch's
                accelerator.print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
            out_of_time = args.max_minutes is not None and time.monotonic() - start > 60 * args.max_minutes
            if step >= args.max_steps or out_of_time:
                break
        if out_of_time:
            accelerator.print(f"stopping after {step} steps: --max_minutes {args.max_minutes} reached")
            break
    progress.close()
    accelerator.print(f"trained {step} steps in {(time.monotonic() - start) / 60:.1f} min")

    # Save (and, on festival data, measure boundary accuracy against the synthesizer's timings).
    model = accelerator.unwrap_model(model)
    model.eval()
    if accelerator.is_main_process:
        model.save_pretrained(output_dir)
        if phones is not None:
            (output_dir / "phones.json").write_text(json.dumps(phones))
            metrics = evaluate_festival(model, examples)
            (output_dir / "festival_eval.json").write_text(json.dumps(metrics, indent=2))
            accelerator.print(f"festival boundary accuracy: {json.dumps(metrics)}")
    return model


if __name__ == "__main__":
    main()
