"""NS2 inference speed and memory: denoiser time per step and pipeline real-time factor.

    python benchmarks/bench_ns2.py [--sizes shipped base] [--steps 25 150] [--seconds 5] [--threads 1] [--pairs 10]
                                   [--num_candidates 3 [--candidate_steps 10]]

`shipped` is the model users get (`pretrained/ns2-tiny-en`, loaded); `tiny` and `base` are random-weight
`NS2Config.tiny()` (a 0.17M test size) and `NS2Config()` (the paper's sizes) — speed and memory do not
depend on the weights. Each size runs in its own subprocess so its peak resident memory (ru_maxrss of the
child) and real-time factor are its own. The pipeline is fed fixed phoneme durations (uniform, summing to
`--seconds` of audio), so every size generates the same length. RTF = wall time / audio time. With
`--num_candidates N` the sizes that have an aligner (the shipped one) are also timed drawing N candidates per
waveform and keeping the one the aligner scores best (`NS2Pipeline(num_candidates=N)`), alternating with one take
run by run in the same process, and the ratio of the two RTFs is printed; with `--candidate_steps K` also the N
candidates chosen on K-step drafts, the chosen one then sampled in full (`NS2Pipeline(candidate_steps=K)`).

The per-step comparison of the sizes is paired in one process: the denoisers of all sizes are built side by
side and timed alternately (A B A B ..., `--pairs` rounds, the order flipped every round), and each round
gives a ratio to the first size; the median and range of those ratios are printed. Timing the sizes in
separate processes one after the other lets the machine's load change between them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Optional

TEXT = "The birch canoe slid on the smooth planks, glued the sheet to the dark blue background."


def build(size: str):
    """The pipeline of `size`: "shipped" (loaded), or a random-weight "tiny" / "base"."""
    from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline

    pipe = NS2Pipeline.from_pretrained() if size == "shipped" else build_untrained_pipeline(size)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def denoiser_inputs(pipe, seconds: float):
    """Fixed uniform durations for `seconds` of audio and the denoiser's inputs for them."""
    import numpy as np
    import torch

    rate, hop = pipe.sampling_rate, pipe.hop_length
    prompt = (0.3 * np.sin(2 * np.pi * 140 * np.arange(3 * rate) / rate)).astype(np.float32)
    num_phonemes = len(pipe.tokenizer(TEXT)["input_ids"])
    total_frames = int(seconds * rate / hop)
    durations = [total_frames // num_phonemes + (1 if i < total_frames % num_phonemes else 0) for i in range(num_phonemes)]
    with torch.no_grad():
        phoneme_ids, phoneme_mask = pipe.encode_text([TEXT])
        phoneme_hidden = pipe.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden, prompt_mask = pipe.encode_prompt(pipe.load_prompt(prompt, rate), 1)
        frame_hidden, frame_mask = pipe.model.length_regulate(phoneme_hidden, torch.tensor([durations]))
        log_f0 = pipe.model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask)
        condition = pipe.model.build_condition(frame_hidden, log_f0)
    noisy = torch.randn(1, pipe.model.config.latent_dim, total_frames)
    step_inputs = (noisy, torch.full((1,), 0.5), condition, frame_mask, prompt_hidden, prompt_mask)
    return prompt, durations, total_frames * hop / rate, step_inputs


def paired_steps(sizes: list, seconds: float, threads: int, pairs: int) -> dict:
    """Denoiser step times of all `sizes` in this process, alternating; per-round ratios to `sizes[0]`."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    models = {size: build(size) for size in sizes}
    inputs = {size: denoiser_inputs(pipe, seconds)[3] for size, pipe in models.items()}
    times = {size: [] for size in sizes}
    with torch.no_grad():
        for size in sizes:
            models[size].model.denoise(*inputs[size])  # warm-up
        for round_ in range(pairs):
            for size in sizes if round_ % 2 == 0 else sizes[::-1]:
                start = time.perf_counter()
                models[size].model.denoise(*inputs[size])
                times[size].append(time.perf_counter() - start)
    reference = np.array(times[sizes[0]])
    return {size: {"ms_per_step": 1000 * float(np.median(times[size])),
                   "ratio_median": float(np.median(np.array(times[size]) / reference)),
                   "ratio_min": float(np.min(np.array(times[size]) / reference)),
                   "ratio_max": float(np.max(np.array(times[size]) / reference))} for size in sizes}


def worker(size: str, steps: list, seconds: float, threads: int, repeats: int, num_candidates: int,
           candidate_steps: Optional[int] = None) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    pipe = build(size)
    rate = pipe.sampling_rate
    prompt, durations, audio_seconds, step_inputs = denoiser_inputs(pipe, seconds)
    with torch.no_grad():
        pipe.model.denoise(*step_inputs)  # warm-up
        timings = []
        for _ in range(max(repeats, 3)):
            start = time.perf_counter()
            pipe.model.denoise(*step_inputs)
            timings.append(time.perf_counter() - start)
    result = {
        "size": size,
        "params_model_M": sum(p.numel() for p in pipe.model.parameters()) / 1e6,
        "params_codec_M": sum(p.numel() for p in pipe.codec.parameters()) / 1e6,
        "denoiser_ms_per_step": 1000 * float(np.median(timings)),
        "audio_seconds": audio_seconds,
    }
    for num_steps in steps:
        # result key -> (num_candidates, candidate_steps): one take; N sampled in full; N chosen on drafts
        takes = {f"rtf_{num_steps}": (1, None)}
        if num_candidates > 1 and pipe.aligner is not None:
            takes[f"rtf_{num_steps}_best_of_{num_candidates}"] = (num_candidates, num_steps)
            if candidate_steps is not None:
                takes[f"rtf_{num_steps}_best_of_{num_candidates}_drafts_{candidate_steps}"] = (num_candidates, candidate_steps)
        walls = {key: [] for key in takes}
        for round_ in range(repeats):  # the variants alternate (A B C, C B A, ...): load changes hit all
            for key in list(takes) if round_ % 2 == 0 else list(takes)[::-1]:
                candidates, drafts = takes[key]
                start = time.perf_counter()
                pipe(TEXT, prompt_audio=prompt, prompt_sampling_rate=rate, num_inference_steps=num_steps, durations=[durations],
                     num_candidates=candidates, candidate_steps=drafts)
                walls[key].append(time.perf_counter() - start)
        for key, times in walls.items():
            result[key] = float(np.median(times)) / result["audio_seconds"]
    result["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["shipped", "base"], choices=["shipped", "tiny", "base"])
    parser.add_argument("--steps", nargs="+", type=int, default=[25, 150])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the generated audio")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: ns2_hf.threads' default, 1)")
    parser.add_argument("--pairs", type=int, default=10, help="alternating rounds of the paired per-step comparison")
    parser.add_argument("--repeats", type=int, default=1, help="pipeline runs per step count (median)")
    parser.add_argument("--num_candidates", type=int, default=1,
                        help="also time drawing this many candidates per waveform (sizes with an aligner)")
    parser.add_argument("--candidate_steps", type=int, default=None,
                        help="with --num_candidates: also time choosing among them on drafts of this many steps")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from ns2_hf.threads import resolve_num_threads

    args.threads = resolve_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.seconds, args.threads, args.repeats, args.num_candidates,
                                args.candidate_steps)))
        return

    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--worker", size, "--seconds", str(args.seconds), "--threads", str(args.threads),
                   "--repeats", str(args.repeats), "--num_candidates", str(args.num_candidates), "--steps", *map(str, args.steps)]
        if args.candidate_steps is not None:
            command += ["--candidate_steps", str(args.candidate_steps)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise SystemExit(f"the {size} worker failed:\n{completed.stderr[-3000:]}")
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    import torch

    print(f"NS2 inference on CPU ({args.threads} threads, torch {torch.__version__}), {args.seconds:.1f} s of generated audio, {' / '.join(args.sizes)}")
    header = ["size", "model M", "codec M", "denoiser ms/step"] + [f"RTF @{s}" for s in args.steps] + ["peak RSS MB"]
    print(" | ".join(f"{h:>16}" for h in header))
    for row in rows:
        values = [row["size"], f"{row['params_model_M']:.2f}", f"{row['params_codec_M']:.2f}", f"{row['denoiser_ms_per_step']:.1f}"]
        values += [f"{row[f'rtf_{s}']:.3f}" for s in args.steps] + [f"{row['peak_rss_MB']:.0f}"]
        print(" | ".join(f"{v:>16}" for v in values))
    for row in rows:
        for num_steps in args.steps:
            key = f"rtf_{num_steps}_best_of_{args.num_candidates}"
            for variant, how in ((key, "sampled in full"), (f"{key}_drafts_{args.candidate_steps}",
                                                           f"chosen on {args.candidate_steps}-step drafts")):
                if variant in row:
                    print(f"{row['size']}, {num_steps} steps, best of {args.num_candidates} candidates {how}: RTF "
                          f"{row[variant]:.3f} ({row[variant] / row[f'rtf_{num_steps}']:.2f}x one candidate's)")
    if len(rows) > 1:
        paired = paired_steps(args.sizes, args.seconds, args.threads, args.pairs)
        print(f"denoiser step, paired in one process ({args.pairs} alternating rounds): time / {args.sizes[0]}'s, median (min-max)")
        for size, row in paired.items():
            print(f"  {size:>8}: {row['ms_per_step']:.1f} ms/step, {row['ratio_median']:.2f}x ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})")
    print("Reference (paper family, GPU): NS2 retrained by the NS3 authors RTF 0.366 at 150 NFE; F5-TTS RTF 0.15 at 16 NFE (RTX 3090).")


if __name__ == "__main__":
    main()
