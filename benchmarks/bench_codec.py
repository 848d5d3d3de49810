"""Speed and memory of the NS2 codec (tiny and base) against transformers' DAC of similar size, on CPU.

    .venv/bin/python benchmarks/bench_codec.py [--seconds 10] [--repeats 3] [--threads 1]

For each model and each of encode / decode, a fresh subprocess builds the model (random weights, eval mode)
and its input, then
  * peak memory: `resource.getrusage(RUSAGE_SELF).ru_maxrss` after one cold call minus before it, i.e. how
    much the process's high-water mark rose for that call (activations and temporaries; the weights and the
    input are already counted before). tracemalloc does not see torch's allocator, hence this choice; one
    process per measurement so that an earlier call's peak cannot hide a later one.
  * time: median of `--repeats` warm calls, reported as seconds of compute per second of audio.
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


def worker(name: str, operation: str, seconds: float, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
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
    call = calls[operation]
    with torch.inference_mode():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        call()
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            durations.append(time.perf_counter() - start)
    return {
        "model": name,
        "operation": operation,
        "parameters": n_parameters,
        "seconds_per_audio_second": statistics.median(durations) / seconds,
        "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="input length in seconds")
    parser.add_argument("--repeats", type=int, default=3, help="timed warm calls (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "OPERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.seconds, args.repeats, args.threads)))
        return

    repo_root = Path(__file__).resolve().parents[1]
    results = {}
    for name in MODELS:
        for operation in OPERATIONS:
            completed = subprocess.run(
                [sys.executable, __file__, "--worker", name, operation, "--seconds", str(args.seconds),
                 "--repeats", str(args.repeats), "--threads", str(args.threads)],
                check=True, capture_output=True, text=True, cwd=repo_root,
                env={**os.environ, "PYTHONPATH": str(repo_root)},
            )
            results[name, operation] = json.loads(completed.stdout.strip().splitlines()[-1])

    print(f"CPU, {args.threads} thread(s), {args.seconds:g} s input, median of {args.repeats} warm calls; "
          "time = compute seconds per audio second; peak = ru_maxrss rise during one cold call")
    header = (f"{'model':<10}{'params':>9}{'enc s/s':>10}{'dec s/s':>10}{'enc MiB':>10}{'dec MiB':>10}"
              f"{'enc/DAC':>9}{'dec/DAC':>9}{'encMiB/DAC':>12}{'decMiB/DAC':>12}")
    print(header)
    print("-" * len(header))
    dac_enc, dac_dec = results["dac-16k", "encode"], results["dac-16k", "decode"]
    for name in MODELS:
        enc, dec = results[name, "encode"], results[name, "decode"]
        print(
            f"{name:<10}{enc['parameters'] / 1e6:>8.2f}M"
            f"{enc['seconds_per_audio_second']:>10.4f}{dec['seconds_per_audio_second']:>10.4f}"
            f"{enc['peak_mib']:>10.1f}{dec['peak_mib']:>10.1f}"
            f"{enc['seconds_per_audio_second'] / dac_enc['seconds_per_audio_second']:>9.2f}"
            f"{dec['seconds_per_audio_second'] / dac_dec['seconds_per_audio_second']:>9.2f}"
            f"{enc['peak_mib'] / max(dac_enc['peak_mib'], 1e-9):>12.2f}"
            f"{dec['peak_mib'] / max(dac_dec['peak_mib'], 1e-9):>12.2f}"
        )


if __name__ == "__main__":
    main()
