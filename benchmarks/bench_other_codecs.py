"""Encode and decode time of transformers' DAC, EnCodec and Mimi as NS2 latent spaces beside ns2-hf's own codec.

    .venv/bin/python benchmarks/bench_other_codecs.py [--seconds 10] [--rounds 5] [--threads 1] [--device cpu]

Every codec runs through the interface NS2 uses (`ns2_hf.latent_codecs`): `encode(audio)` → codes and quantized
latents, `decode(quantized_latents=...)` → audio. The size is matched by the audio: each codec gets `--seconds` of
the same seeded noise at its own sampling rate, and decodes random latents of the frame count that audio gives
(decoding cost does not depend on the values). Each codec is built, with random weights, in the architecture of its
released checkpoint (nothing downloads): `descript/dac_16khz`, `descript/dac_24khz`, `facebook/encodec_24khz` (all
32 codebooks), `kyutai/mimi` (all 32) — beside ns2-hf's shipped codec (`pretrained/ns2-tiny-en/codec`) and its
paper-sized base codec. All codecs live in one process and, per operation, are called in alternating order (forward,
then reversed) for `--rounds` rounds after a warm-up call each; the median seconds of compute per second of audio
and the median ratio to ns2-hf's base codec in the same round are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CODECS = ("ns2-tiny-en", "ns2-base", "dac_16khz", "dac_24khz", "encodec_24khz", "mimi")
REFERENCE = "ns2-base"
OPERATIONS = ("encode", "decode")


def build(name: str):
    """`name`'s codec as an NS2 latent space, random weights (the shipped one: its own), in eval mode."""
    import torch
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel
    from ns2_hf.latent_codecs import NS2DacCodecModel, NS2EncodecCodecModel, NS2MimiCodecModel

    torch.manual_seed(0)
    if name == "ns2-tiny-en":
        return NS2CodecModel.from_pretrained(REPO_ROOT / "pretrained" / "ns2-tiny-en" / "codec").eval()
    if name == "ns2-base":
        return NS2CodecModel(NS2CodecConfig()).eval()
    if name.startswith("dac"):
        rate, codebooks = (16000, 12) if name == "dac_16khz" else (24000, 32)
        codec = DacModel(DacConfig(sampling_rate=rate, downsampling_ratios=[2, 4, 5, 8], n_codebooks=codebooks))
        return NS2DacCodecModel.from_codec(codec.eval(), source=f"descript/{name} (random weights)")
    if name == "encodec_24khz":
        return NS2EncodecCodecModel.from_codec(EncodecModel(EncodecConfig()).eval(), source="random weights")
    return NS2MimiCodecModel.from_codec(MimiModel(MimiConfig()).eval(), source="random weights")


def codec_calls(name: str, seconds: float, device: str):
    """`({"encode": fn, "decode": fn}, codec)` on seeded noise of `seconds` at the codec's rate."""
    import torch

    codec = build(name).to(device)
    config = codec.config
    num_samples = int(seconds * config.sampling_rate)
    audio = (0.1 * torch.randn(1, num_samples, generator=torch.Generator().manual_seed(1))).to(device)
    latents = torch.randn(1, config.latent_dim, -(-num_samples // config.hop_length)).to(device)
    return {"encode": lambda: codec.encode(audio).audio_codes,
            "decode": lambda: codec.decode(quantized_latents=latents).audio_values}, codec


def paired_times(seconds: float, rounds: int, device: str):
    """`{(codec, operation): {"seconds_per_audio_second", "ratio"}}`, medians over the rounds (`ratio` to
    `REFERENCE`'s time in the same round), and `{codec: the model}`."""
    import torch

    calls, codecs = {}, {}
    for name in CODECS:
        calls[name], codecs[name] = codec_calls(name, seconds, device)
    results = {}
    with torch.inference_mode():
        for operation in OPERATIONS:
            times = {name: [] for name in CODECS}
            for name in CODECS:
                calls[name][operation]()  # warm-up
            for round_ in range(rounds):
                for name in CODECS if round_ % 2 == 0 else CODECS[::-1]:
                    if device == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    calls[name][operation]()
                    if device == "cuda":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - start)
            for name in CODECS:
                ratios = [mine / reference for mine, reference in zip(times[name], times[REFERENCE])]
                results[name, operation] = {"seconds_per_audio_second": statistics.median(times[name]) / seconds,
                                            "ratio": statistics.median(ratios)}
    return results, codecs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per call, at each codec's own rate")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    times, codecs = paired_times(args.seconds, args.rounds, args.device)
    print(f"{args.device}, {args.threads} thread(s), {args.seconds:g} s of audio per call; s/s = compute seconds per "
          f"audio second (median of {args.rounds} alternating rounds); /{REFERENCE} = median ratio in the same round")
    header = (f"{'codec':<15}{'rate':>7}{'frames/s':>9}{'n_q x K':>10}{'dim':>6}{'params':>9}"
              f"{'enc s/s':>10}{'dec s/s':>10}{'enc/ref':>9}{'dec/ref':>9}")
    print(header)
    print("-" * len(header))
    for name in CODECS:
        codec = codecs[name]
        config = codec.config
        encode, decode = times[name, "encode"], times[name, "decode"]
        print(f"{name:<15}{config.sampling_rate:>7}{config.frame_rate:>9.1f}"
              f"{f'{config.num_quantizers}x{config.codebook_size}':>10}{config.latent_dim:>6}"
              f"{sum(p.numel() for p in codec.parameters()) / 1e6:>8.1f}M"
              f"{encode['seconds_per_audio_second']:>10.4f}{decode['seconds_per_audio_second']:>10.4f}"
              f"{encode['ratio']:>9.2f}{decode['ratio']:>9.2f}")


if __name__ == "__main__":
    main()
