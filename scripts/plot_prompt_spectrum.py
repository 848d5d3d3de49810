"""Picture of `spectrum_matching`: the long-term average spectra of a prompt, of the model's speech in its voice, and
of the same speech equalised towards the prompt (`NS2Pipeline(spectrum_matching=1)`).

    python scripts/plot_prompt_spectrum.py --prompt examples/real/librivox_austen_0920.wav \
        --out examples/samples/spectrum_matching.png

Prints the similarity of each output to the prompt (Resemblyzer) and the mean distance of its spectrum from the prompt's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ns2_hf import NS2Pipeline  # noqa: E402
from ns2_hf.audio import load_audio  # noqa: E402
from ns2_hf.audio.spectrum import FMIN, long_term_spectrum  # noqa: E402
from ns2_hf.metrics import speaker_similarity  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a pipeline folder (default: the shipped model)")
    parser.add_argument("--prompt", default="examples/real/librivox_austen_0920.wav")
    parser.add_argument("--text", default="Today it is drastically different, because of the social milieu.")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="examples/samples/spectrum_matching.png")
    args = parser.parse_args(argv)

    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    torch.set_num_threads(1)
    pipe = NS2Pipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    rate = pipe.sampling_rate
    prompt = load_audio(args.prompt, target_sampling_rate=rate)
    spectra = {"prompt (a real recording)": long_term_spectrum(torch.from_numpy(prompt), rate)}
    for label, strength in (("the model's speech", 0.0), ("the same, spectrum_matching=1", 1.0)):
        audio = pipe(args.text, prompt_audio=prompt, prompt_sampling_rate=rate, num_inference_steps=args.steps,
                     generator=torch.Generator().manual_seed(args.seed), spectrum_matching=strength).audios[0]
        spectra[label] = long_term_spectrum(torch.from_numpy(audio), rate)
        distance = float((spectra[label] - spectra["prompt (a real recording)"]).abs().mean())
        print(f"{label}: SIM to the prompt {speaker_similarity(audio, prompt, rate):.3f}, "
              f"spectrum {distance:.2f} dB from the prompt's (mean over bands)")

    num_bands = len(spectra["prompt (a real recording)"])
    centres = librosa.mel_frequencies(n_mels=num_bands + 2, fmin=FMIN, fmax=rate / 2)[1:-1]
    figure, axis = plt.subplots(figsize=(7, 3.6))
    for (label, spectrum), style in zip(spectra.items(), ("k-", "C0--", "C1-")):
        axis.plot(centres, spectrum.numpy(), style, label=label, linewidth=1.8)
    axis.set_xscale("log")
    ticks = [125, 250, 500, 1000, 2000, 4000, 8000]
    axis.set_xticks(ticks, [f"{tick // 1000} k" if tick >= 1000 else str(tick) for tick in ticks])
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("frequency (Hz), mel band centres")
    axis.set_ylabel("share of the speech's power (dB)")
    axis.set_title(f"Long-term average spectrum, prompt {Path(args.prompt).name}")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
