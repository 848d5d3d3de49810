"""Speed and memory of the NS2 codec (tiny and base) against transformers' DAC of similar size, on CPU.

    .venv/bin/python benchmarks/bench_codec.py [--seconds 10] [--pairs 9] [--threads 1]

  * time, paired in one process: all models are built side by side and, for each of encode / decode, called
    alternately (A B C, then C B A, ... for `--pairs` rounds after a warm-up call each); every round gives
    each model's time relative to DAC's in the same round, and the median and range of those ratios are
    printed, with the median seconds of compute per second of audio. (Timing the models in separate
    processes one after the other let the machine's load change between them: the decode ratio read 2.12 in
    one run and 0.97 in the next.)
  * peak memory: for each model and operation, a fresh subprocess builds the model (random weights, eval
    mode) and its input and reads `resource.getrusage(RUSAGE_SELF).ru_maxrss` after one cold call minus
    before it, i.e. how much the process's high-water mark rose for that call (activations and temporaries;
    the weights and the input are already counted before). tracemalloc does not see torch's allocator, hence
    this choice; one process per measurement so that an earlier call's peak cannot hide a later one.
The input is the same seeded noise for every model. Encode maps audio -> codes (and quantized latents); decode
maps quantized latents -> audio (random latents of the right shape: decoding cost does not depend on values).

DAC is `DacModel(DacConfig(sampling_rate=16000, downsampling_ratios=[2, 4, 5, 5], n_codebooks=16,
codebook_size=1024, encoder_hidden_size=40, decoder_hidden_size=1024))`: the same hop (200), quantizers and
codebook size as the NS2 base codec and the same channel widths (27.3M parameters vs 27.7M).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("ns2-tiny", "ns2-base", "dac-16k")
OPERATIONS = ("encode", "decode")


def build(name: str):
    """Returns (model, sampling_rate, parameter count including codebooks)."""
    import torch

    torch.manual_seed(0)
    if name.startswith("ns2"):
        from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

        config = NS2CodecConfig.tiny() if name == "ns2-tiny" else NS2CodecConfig()
        model = NS2CodecModel(config)
        n_parameters = sum(p.numel() for p in model.parameters()) + model.get_codebooks().numel()
    else:
        from transformers import DacConfig, DacModel

        config = DacConfig(
            sampling_rate=16000, downsampling_ratios=[2, 4, 5, 5], n_codebooks=16, codebook_size=1024,
            encoder_hidden_size=40, decoder_hidden_size=1024,
        )
        model = DacModel(config)
        n_parameters = sum(p.numel() for p in model.parameters())
    return model.eval(), config, n_parameters


def codec_calls(name: str, seconds: float):
    """`{"encode": fn, "decode": fn}` for `name` on seeded noise of `seconds`, and its parameter count."""
    import torch

    model, config, n_parameters = build(name)
    n_samples = int(seconds * config.sampling_rate)
    audio = 0.1 * torch.randn(1, n_samples, generator=torch.Generator().manual_seed(1))
    n_frames = -(-n_samples // config.hop_length)
    if name.startswith("ns2"):
        latents = torch.randn(1, config.latent_dim, n_frames)
        calls = {
            "encode": lambda: model.encode(audio).audio_codes,
            "decode": lambda: model.decode(quantized_latents=latents).audio_values,
        }
    else:
        latents = torch.randn(1, config.hidden_size, n_frames)
        calls = {
            "encode": lambda: model.encode(audio.unsqueeze(1)).audio_codes,
            "decode": lambda: model.decode(quantized_representation=latents).audio_values,
        }
    return calls, n_parameters


def memory_worker(name: str, operation: str, seconds: float, threads: int) -> dict:
    """Peak memory rise of one cold call (run in a fresh process)."""
    import torch

    torch.set_num_threads(threads)
    calls, n_parameters = codec_calls(name, seconds)
    with torch.inference_mode():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        calls[operation]()
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"parameters": n_parameters, "peak_mib": peak_mib}


def paired_times(seconds: float, pairs: int, threads: int) -> dict:
    """`{(model, operation): {"seconds_per_audio_second", "ratio_median", "ratio_min", "ratio_max"}}`, ratios
    to DAC's time in the same round."""
    import torch

    torch.set_num_threads(threads)
    calls = {name: codec_calls(name, seconds)[0] for name in MODELS}
    results = {}
    with torch.inference_mode():
        for operation in OPERATIONS:
            times = {name: [] for name in MODELS}
            for name in MODELS:
                calls[name][operation]()  # warm-up
            for round_ in range(pairs):
                for name in MODELS if round_ % 2 == 0 else MODELS[::-1]:
                    start = time.perf_counter()
                    calls[name][operation]()
                    times[name].append(time.perf_counter() - start)
            for name in MODELS:
                ratios = [mine / dac for mine, dac in zip(times[name], times["dac-16k"])]
                results[name, operation] = {"seconds_per_audio_second": statistics.median(times[name]) / seconds,
                                            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length in seconds")
    parser.add_argument("--pairs", type=int, default=9, help="alternating rounds (median and range of the ratios)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "OPERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(memory_worker(*args.worker, args.seconds, args.threads)))
        return

    repo_root = Path(__file__).resolve().parents[1]
    memory = {}
    for name in MODELS:
        for operation in OPERATIONS:
            completed = subprocess.run(
                [sys.executable, __file__, "--worker", name, operation, "--seconds", str(args.seconds), "--threads", str(args.threads)],
                check=True, capture_output=True, text=True, cwd=repo_root, env={**os.environ, "PYTHONPATH": str(repo_root)},
            )
            memory[name, operation] = json.loads(completed.stdout.strip().splitlines()[-1])
    times = paired_times(args.seconds, args.pairs, args.threads)

    print(f"CPU, {args.threads} thread(s), {args.seconds:g} s input; time = compute s per audio s (median of {args.pairs} "
          "alternating rounds), /DAC = ratio to DAC in the same round, median [min-max]; peak = ru_maxrss rise of one cold call")
    header = f"{'model':<10}{'params':>9}{'enc s/s':>10}{'dec s/s':>10}{'enc/DAC':>20}{'dec/DAC':>20}{'enc MiB':>9}{'dec MiB':>9}"
    print(header)
    print("-" * len(header))
    for name in MODELS:
        enc, dec = times[name, "encode"], times[name, "decode"]
        spread = lambda row: f"{row['ratio_median']:.2f} [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
        print(
            f"{name:<10}{memory[name, 'encode']['parameters'] / 1e6:>8.2f}M"
            f"{enc['seconds_per_audio_second']:>10.4f}{dec['seconds_per_audio_second']:>10.4f}"
            f"{spread(enc):>20}{spread(dec):>20}"
            f"{memory[name, 'encode']['peak_mib']:>9.1f}{memory[name, 'decode']['peak_mib']:>9.1f}"
        )


if __name__ == "__main__":
    main()
