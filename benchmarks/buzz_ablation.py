"""Where does the codec's 80 Hz buzz come from? An ablation over the decoder's inputs and kinds.

    .venv/bin/python benchmarks/buzz_ablation.py --codec pretrained/ns2-tiny-en/codec [--codec OTHER ...] \\
        --audio data/real_speech/test/librivox data/real_speech/test/codec2 [--max_files 12]

For every codec and recording it computes the frame-grid locking ratio and the frame-rate buzz share
(`ns2_hf.metrics.frame_rate_buzz`: ≈ 1 / the recording's own share when nothing is imprinted) of
  * the recording itself (the floor),
  * `quantized`: the codec's resynthesis (encoder -> RVQ -> decoder), what NS2 is trained to generate,
  * `unquantized`: the decoder fed the encoder's continuous latents, bypassing the RVQ,
  * `1 quantizer`: the decoder fed the first quantizer's codes alone (a coarse, blurred latent),
and the mean over recordings. If the buzz is as strong without the RVQ and grows as the latent gets
blurrier, the decoder itself imprints the frame grid; if it vanishes without the RVQ, quantization is
to blame. Run with one thread (`OMP_NUM_THREADS=1`); ~1 s per recording and codec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ns2_hf.audio.io import load_audio  # noqa: E402
from ns2_hf.codec import NS2CodecModel  # noqa: E402
from ns2_hf.metrics import frame_rate_buzz  # noqa: E402

AUDIO_EXTENSIONS = (".wav", ".flac")
CONDITIONS = ("recording", "quantized", "unquantized", "1 quantizer")


@torch.no_grad()
def conditions(codec: NS2CodecModel, waveform: np.ndarray) -> dict:
    """The waveforms compared, `(samples,)` each, keyed by `CONDITIONS`."""
    audio = torch.from_numpy(waveform)[None]
    encoded = codec.encode(audio)
    n_samples = waveform.shape[0]
    first_codes = encoded.audio_codes[:, :1]
    return {
        "recording": waveform,
        "quantized": codec.decode(encoded.quantized_latents).audio_values[0, :n_samples].numpy(),
        "unquantized": codec.decode(encoded.latents).audio_values[0, :n_samples].numpy(),
        "1 quantizer": codec.decode(audio_codes=first_codes).audio_values[0, :n_samples].numpy(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", action="append", required=True, help="NS2CodecModel folder (repeatable)")
    parser.add_argument("--audio", nargs="+", required=True, help="folders of recordings")
    parser.add_argument("--max_files", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    paths = sorted(p for folder in args.audio for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    paths = paths[: args.max_files] if args.max_files else paths
    if not paths:
        raise SystemExit(f"no recordings under {args.audio}")
    print(f"{len(paths)} recordings; grid lock ≈ 1 = no frame-grid imprint; buzz share = voiced frames with f0 "
          "within ±2.5 % of the frame rate; means over recordings")
    print(f"{'codec':<40} " + " ".join(f"{name:>12}" for name in CONDITIONS))
    for folder in args.codec:
        codec = NS2CodecModel.from_pretrained(folder).eval()
        rate, frame_rate = codec.config.sampling_rate, codec.config.frame_rate
        shares = {name: [] for name in CONDITIONS}
        for path in paths:
            waveform = load_audio(str(path), target_sampling_rate=rate, name=str(path)).astype(np.float32)
            for name, audio in conditions(codec, waveform).items():
                try:
                    measured = frame_rate_buzz(audio, rate, frame_rate)
                except ValueError:  # nothing voiced
                    continue
                shares[name].append((measured["grid_lock"], measured["buzz_share"]))
        label = f"{Path(folder).name or folder} ({codec.config.decoder_type})"
        for column, measure in enumerate(("grid lock", "buzz share")):
            cells = " ".join(f"{np.mean([v[column] for v in shares[name]]):>12.3f}" for name in CONDITIONS)
            print(f"{(label + ' ' + measure)[-40:]:<40} {cells}")


if __name__ == "__main__":
    main()
