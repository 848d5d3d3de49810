"""Where does the Fourier decoder lose a voice's pitch: in the magnitudes it predicts, or in the phases?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/codec_phase_ablation.py --codec pretrained/ns2-tiny-en/codec \\
        [--griffin_lim 0 16 64] [--quality] [--pitch_postfilter 0.6]

For each recording of the codec evaluation lists (the ones `benchmarks/codec_pitch_by_voice.py` reads: held-out
corpus utterances, LibriVox, codec2 speakers) the decoder's STFT of the quantized latents is taken apart and
overlap-added again with the decoder's own inverse STFT:

- `decoder`: its magnitude and phase (the codec's resynthesis);
- `decoder magnitude + recording phase`: the recording's STFT phase, in the decoder's framing, instead;
- `recording magnitude + decoder phase`: the other way round;
- `decoder magnitude + Griffin-Lim N`: the decoder's phase refined by N Griffin-Lim iterations (consistent
  with the magnitude: no frame-synchronous phase pattern can survive);
- `harmonic phase`: `ns2_hf.codec.resynthesize(..., harmonic_phase=True)`, i.e. `NS2CodecModel.decode(...,
  f0=, voiced=)` with the recording's pitch (Praat at the codec hop): voiced frames take a harmonic excitation's phase below
  `harmonic_phase_max_hz` — what `NS2Pipeline` does with the pitch it predicts;
- `recording magnitude + harmonic phase`: the same phases (the decoder's above the cut-off and on unvoiced
  frames) under the recording's own magnitudes: what the harmonic phase gives with perfect magnitudes;
- `harmonic phase + pitch postfilter S` (`--pitch_postfilter S`): the harmonic phase with the codec's pitch
  postfilter at strength S (`NS2CodecConfig.pitch_postfilter`), which deepens the valleys between harmonics.

Prints per list the share of recordings whose pitch is kept (`ns2_hf.metrics.pitch_kept`, median voiced f0
within 10 %), the frame-rate buzz share and grid lock (`ns2_hf.metrics.frame_buzz`) of each variant; with
`--quality` also DNSMOS OVRL, PESQ-WB against the recording and the harmonic contrast (`harmonic_contrast`: how deep
the valleys between the harmonics are) — which of magnitude and phase caps the sound.
About 1 s per recording and variant (Praat, one thread; DNSMOS and PESQ add about as much).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from codec_pitch_by_voice import recordings  # noqa: E402

from ns2_hf.audio.io import load_audio  # noqa: E402
from ns2_hf.audio.pitch import extract_pitch  # noqa: E402
from ns2_hf.codec import NS2CodecModel, resynthesize  # noqa: E402
from ns2_hf.metrics import dnsmos, pesq_wideband, pitch_kept  # noqa: E402
from ns2_hf.metrics.frame_buzz import frame_rate_buzz  # noqa: E402


@torch.no_grad()
def variants(codec: NS2CodecModel, waveform: np.ndarray, log_f0: np.ndarray, voiced: np.ndarray, griffin_lim: list,
             postfilter: float) -> dict:
    """`{name: (samples,) waveform}` of the variants listed in the module docstring; `log_f0`, `voiced` `(frames,)`:
    the recording's pitch at the codec hop."""
    decoder = codec.decoder
    audio = torch.from_numpy(waveform)
    latents = codec.encode(audio[None, None]).quantized_latents
    frames = latents.shape[-1]
    frame_mask = torch.ones(1, frames)
    predicted = decoder.spectrum(latents)
    recording = decoder.stft(audio[None], frames)
    spectra = {
        "decoder": predicted,
        "decoder magnitude + recording phase": torch.polar(predicted.abs(), recording.angle()),
        "recording magnitude + decoder phase": torch.polar(recording.abs(), predicted.angle()),
    }
    phase, done = predicted.angle(), 0
    for iterations in sorted(griffin_lim):
        for _ in range(iterations - done):
            estimate = decoder.inverse_stft(torch.polar(predicted.abs(), phase), frame_mask)[0]
            phase = decoder.stft(estimate[None], frames).angle()
        done = iterations
        spectra[f"decoder magnitude + Griffin-Lim {iterations}"] = torch.polar(predicted.abs(), phase)
    outputs = {
        name: decoder.inverse_stft(spectrum, frame_mask).clamp(-1.0, 1.0)[0, : len(waveform)].numpy()
        for name, spectrum in spectra.items()
    }
    outputs["harmonic phase (recording's f0)"] = resynthesize(codec, waveform, harmonic_phase=True)
    recording_magnitude = torch.polar(recording.abs(), predicted.angle())
    harmonic = decoder.with_harmonic_phase(recording_magnitude, torch.from_numpy(log_f0).exp()[None], torch.from_numpy(voiced)[None])
    if postfilter > 0:
        decoder.pitch_postfilter, kept = postfilter, decoder.pitch_postfilter
        outputs[f"harmonic phase + pitch postfilter {postfilter:g}"] = resynthesize(codec, waveform, harmonic_phase=True)
        decoder.pitch_postfilter = kept
    outputs["recording magnitude + harmonic phase"] = decoder.inverse_stft(harmonic, frame_mask).clamp(-1.0, 1.0)[0, : len(waveform)].numpy()
    return outputs


def harmonic_contrast(decoder, output: np.ndarray, f0: np.ndarray, voiced: np.ndarray) -> float:
    """Mean over voiced frames and harmonics of f0 below 2 kHz of log(magnitude at the harmonic / magnitude half-way
    to the next one), in the decoder's STFT framing: how deep the valleys between the harmonics are (0: none)."""
    magnitude = decoder.stft(torch.from_numpy(output)[None], len(f0))[0].abs().numpy() + 1e-5
    bin_hz = decoder.sampling_rate / decoder.n_fft
    contrasts = [
        np.log(magnitude[round(k * f0[frame] / bin_hz), frame]) - np.log(magnitude[round((k + 0.5) * f0[frame] / bin_hz), frame])
        for frame in np.flatnonzero(voiced) for k in range(1, int(2000.0 / f0[frame]))
    ]
    return float(np.mean(contrasts)) if contrasts else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codec", default=str(REPO_ROOT / "pretrained/ns2-tiny-en/codec"),
                        help="an NS2CodecModel folder with the Fourier decoder")
    parser.add_argument("--griffin_lim", type=int, nargs="*", default=[16, 64], help="iteration counts to try")
    parser.add_argument("--pitch_postfilter", type=float, default=0.0,
                        help="also the harmonic phase with this pitch postfilter (NS2CodecConfig.pitch_postfilter)")
    parser.add_argument("--quality", action="store_true", help="also DNSMOS OVRL and PESQ-WB of every variant")
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = NS2CodecModel.from_pretrained(args.codec).eval()
    if codec.config.decoder_type != "fourier":
        raise SystemExit(f"{args.codec} has a {codec.config.decoder_type} decoder; this ablation needs the Fourier one.")
    rate = codec.config.sampling_rate
    scores = {}  # (list, variant) -> [(kept, buzz share, grid lock[, DNSMOS, PESQ])]
    for kind, path in recordings():
        waveform = load_audio(str(path), target_sampling_rate=rate, name=str(path))
        log_f0, voiced = extract_pitch(waveform, rate, codec.config.hop_length)
        for name, output in variants(codec, waveform, log_f0, voiced, args.griffin_lim, args.pitch_postfilter).items():
            kept = pitch_kept(output, waveform, rate)["f0_kept"]
            buzz = frame_rate_buzz(output, rate, codec.config.frame_rate)
            row = (kept, buzz["buzz_share"], buzz["grid_lock"])
            if args.quality:
                row += (dnsmos(output, rate)["dnsmos_ovrl"], pesq_wideband(output, waveform, rate),
                        harmonic_contrast(codec.decoder, output, np.exp(log_f0), voiced))
            scores.setdefault((kind, name), []).append(row)
    quality_header = f" {'DNSMOS':>6s} {'PESQ-WB':>7s} {'harmonic contrast':>17s}" if args.quality else ""
    print(f"{'list':10s} {'variant':42s} {'pitch kept':>10s} {'buzz share':>10s} {'grid lock':>9s}{quality_header}")
    for (kind, name), rows in scores.items():
        kept, buzz, lock, *quality = np.mean(rows, axis=0)
        quality_columns = f" {quality[0]:6.2f} {quality[1]:7.2f} {quality[2]:17.2f}" if quality else ""
        print(f"{kind:10s} {name:42s} {kept:10.2f} {buzz:10.3f} {lock:9.2f}{quality_columns}")


if __name__ == "__main__":
    main()
