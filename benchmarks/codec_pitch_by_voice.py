"""Does the codec keep a voice's pitch, and how does that depend on how low the voice is?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/codec_pitch_by_voice.py --codec pretrained/ns2-tiny-en/codec \\
        [--codec OTHER ...] [--split_hz 110]

Resynthesises the recordings of the codec evaluation lists (the 32 held-out corpus utterances of
`runs/eval/heldout.jsonl`, the 5 LibriVox sentences of `data/real_speech/test_list.jsonl` and the 7 codec2
speakers of `data/real_speech/test/codec2`; `python scripts/fetch_real_speech.py` fetches the real ones) and
scores each with `ns2_hf.metrics.pitch_kept` (median voiced f0 of the resynthesis over the recording's, Praat,
10 ms hop). Prints one line per recording, sorted by its median f0, and per codec the share of recordings whose
pitch is kept (within 10 %) and the voiced-frame ratio, below and above `--split_hz`. A codec at 80 frames/s
has one frame per pitch period near 80 Hz: the low voices are where it loses the pulse. ~1 s per recording.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ns2_hf.audio.io import load_audio  # noqa: E402
from ns2_hf.codec import NS2CodecModel  # noqa: E402
from ns2_hf.metrics import pitch_contour, pitch_kept  # noqa: E402

LISTS = (REPO_ROOT / "runs/eval/heldout.jsonl", REPO_ROOT / "data/real_speech/test_list.jsonl")
CODEC2_DIR = REPO_ROOT / "data/real_speech/test/codec2"


def recordings() -> list:
    """`(kind, path)` of every recording the lists name, then the codec2 folder's."""
    found = []
    for list_path in LISTS:
        if not list_path.is_file():
            print(f"skipping {list_path} (not there)")
            continue
        for line in list_path.read_text().splitlines():
            found.append((list_path.stem, list_path.parent / json.loads(line)["audio"]))
    found += [("codec2", path) for path in sorted(CODEC2_DIR.glob("*.wav"))]
    return found


@torch.no_grad()
def resynthesise(codec: NS2CodecModel, waveform: np.ndarray) -> np.ndarray:
    output = codec.decode(codec.encode(torch.from_numpy(waveform)[None, None]).quantized_latents)
    return output.audio_values.reshape(-1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codec", action="append", required=True, help="an NS2CodecModel folder (repeatable)")
    parser.add_argument("--split_hz", type=float, default=110.0, help="low / high voice boundary (median f0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    items = []
    for kind, path in recordings():
        waveform = load_audio(str(path), target_sampling_rate=16000, name=str(path))
        f0, voiced = pitch_contour(waveform, 16000)
        items.append((float(np.median(f0[voiced])), kind, path.name, waveform))
    items.sort(key=lambda item: item[0])
    for codec_dir in args.codec:
        codec = NS2CodecModel.from_pretrained(codec_dir).eval()
        print(f"\n{codec_dir}")
        rows = []
        for median_f0, kind, name, waveform in items:
            kept = pitch_kept(resynthesise(codec, waveform), waveform, 16000)
            rows.append((median_f0, kept))
            print(f"  {median_f0:5.0f} Hz  f0 ratio {kept['f0_ratio']:.2f}  voiced ratio {kept['voiced_ratio']:.2f}  {kind} {name}")
        for label, band in ((f"below {args.split_hz:.0f} Hz", [k for f, k in rows if f < args.split_hz]),
                            (f"from {args.split_hz:.0f} Hz", [k for f, k in rows if f >= args.split_hz])):
            if band:
                print(f"  {label}: {len(band)} recordings, pitch kept {np.mean([k['f0_kept'] for k in band]):.2f}, "
                      f"voiced ratio {np.mean([k['voiced_ratio'] for k in band]):.2f}")


if __name__ == "__main__":
    main()
