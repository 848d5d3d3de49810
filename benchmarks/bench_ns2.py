"""NS2 inference speed and memory: denoiser time per step and pipeline real-time factor.

    python benchmarks/bench_ns2.py [--sizes tiny base] [--steps 25 150] [--seconds 5] [--threads 2]

Each size runs in its own subprocess so its peak resident memory (ru_maxrss of the child) is its own.
The pipeline is fed fixed phoneme durations (uniform, summing to `--seconds` of audio), so every size
generates the same length regardless of its (random) duration predictor. RTF = wall time / audio time.
Weights are random: speed and memory do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TEXT = "The birch canoe slid on the smooth planks, glued the sheet to the dark blue background."


def worker(size: str, steps: list, seconds: float, threads: int, repeats: int) -> dict:
    import numpy as np
    import torch

    from ns2_hf.pipelines import build_untrained_pipeline

    torch.set_num_threads(threads)
    pipe = build_untrained_pipeline(size)
    pipe.set_progress_bar_config(disable=True)
    rate, hop = pipe.sampling_rate, pipe.hop_length
    prompt = (0.3 * np.sin(2 * np.pi * 140 * np.arange(3 * rate) / rate)).astype(np.float32)

    num_phonemes = len(pipe.tokenizer(TEXT)["input_ids"])
    total_frames = int(seconds * rate / hop)
    durations = [total_frames // num_phonemes + (1 if i < total_frames % num_phonemes else 0) for i in range(num_phonemes)]

    # denoiser alone: one step on (1, latent_dim, frames)
    with torch.no_grad():
        frames = torch.tensor([durations])
        phoneme_ids, phoneme_mask = pipe.encode_text([TEXT])
        phoneme_hidden = pipe.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden, prompt_mask = pipe.encode_prompt(pipe.load_prompt(prompt, rate), 1)
        frame_hidden, frame_mask = pipe.model.length_regulate(phoneme_hidden, frames)
        log_f0 = pipe.model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask)
        condition = pipe.model.build_condition(frame_hidden, log_f0)
        noisy = torch.randn(1, pipe.model.config.latent_dim, total_frames)
        t = torch.full((1,), 0.5)
        pipe.model.denoise(noisy, t, condition, frame_mask, prompt_hidden, prompt_mask)  # warm-up
        timings = []
        for _ in range(max(repeats, 3)):
            start = time.perf_counter()
            pipe.model.denoise(noisy, t, condition, frame_mask, prompt_hidden, prompt_mask)
            timings.append(time.perf_counter() - start)
    result = {
        "size": size,
        "params_model_M": sum(p.numel() for p in pipe.model.parameters()) / 1e6,
        "params_codec_M": sum(p.numel() for p in pipe.codec.parameters()) / 1e6,
        "denoiser_ms_per_step": 1000 * float(np.median(timings)),
        "audio_seconds": total_frames * hop / rate,
    }
    for num_steps in steps:
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            pipe(TEXT, prompt_audio=prompt, prompt_sampling_rate=rate, num_inference_steps=num_steps, durations=[durations])
            walls.append(time.perf_counter() - start)
        result[f"rtf_{num_steps}"] = float(np.median(walls)) / result["audio_seconds"]
    result["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    parser.add_argument("--steps", nargs="+", type=int, default=[25, 150])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the generated audio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="pipeline runs per step count (median)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.seconds, args.threads, args.repeats)))
        return

    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--worker", size, "--seconds", str(args.seconds), "--threads", str(args.threads),
                   "--repeats", str(args.repeats), "--steps", *map(str, args.steps)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise SystemExit(f"the {size} worker failed:\n{completed.stderr[-3000:]}")
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    import torch

    print(f"NS2 inference on CPU ({args.threads} threads, torch {torch.__version__}), {args.seconds:.1f} s of generated audio, random weights")
    header = ["size", "model M", "codec M", "denoiser ms/step"] + [f"RTF @{s}" for s in args.steps] + ["peak RSS MB"]
    print(" | ".join(f"{h:>16}" for h in header))
    for row in rows:
        values = [row["size"], f"{row['params_model_M']:.2f}", f"{row['params_codec_M']:.2f}", f"{row['denoiser_ms_per_step']:.1f}"]
        values += [f"{row[f'rtf_{s}']:.3f}" for s in args.steps] + [f"{row['peak_rss_MB']:.0f}"]
        print(" | ".join(f"{v:>16}" for v in values))
    if len(rows) == 2:
        tiny, base = rows
        print(f"base/tiny denoiser time per step: {base['denoiser_ms_per_step'] / tiny['denoiser_ms_per_step']:.1f}x")
    print("Reference (paper family, GPU): NS2 retrained by the NS3 authors RTF 0.366 at 150 NFE; F5-TTS RTF 0.15 at 16 NFE (RTX 3090).")


if __name__ == "__main__":
    main()
